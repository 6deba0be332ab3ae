"""A loopback TCP proxy that can lose the platform's answers: the network failure in which the
platform applied a scan and the agent never heard back."""

from __future__ import annotations

import socket
import threading


class Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.drop_downstream = False  # True: bytes from the platform are read and thrown away
        self.refuse = False  # True: the platform is unreachable (connections are closed as they come)
        self._closed = False
        self._live: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refuse:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self._live += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if downstream and self.drop_downstream:
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self) -> None:
        """The link goes down: open connections are cut and new ones refused until restore()."""
        self.refuse = True
        for sock in self._live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._live.clear()

    def restore(self) -> None:
        self.refuse = False

    def close(self) -> None:
        self._closed = True
        self.listener.close()
