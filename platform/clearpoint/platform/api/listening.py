"""Where the server listens, checked before it starts: the address, the port's owner, TLS files.

gRPC lets every server of one user share a port (SO_REUSEPORT), and the kernel then splits new
connections between them: a second platform started on a port one already serves would start
fine and take half the calls, against whatever database it was given. So a `serve` first binds the
port alone (which fails while anyone holds it), then keeps it with a socket that lets only
sockets that also ask to share join in: its own workers. A stranger's exclusive check then fails.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import grpc
from clearpoint.addresses import Address


class ListenError(Exception):
    """The server cannot listen where it was asked to; the message names the fix."""


def _sockets_for(address: Address) -> list[tuple[int, tuple[object, ...]]]:
    try:
        found = socket.getaddrinfo(address.host or None, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {address}: unknown host ({exc.strerror}); correct --listen") from None
    unique = {(family, sockaddr) for family, _, _, _, sockaddr in found}
    return sorted(unique, key=lambda item: item[0])


def claim(address: Address, *, hold: bool) -> list[socket.socket]:
    """Check that no one holds `address`; with `hold`, then hold it so that only sockets that share
    it (this serve's own workers) can bind it too. Keep what this returns open while serving. (A
    single process binds alone, so it needs no holder: its own bind fails if a stranger came first.)"""
    held: list[socket.socket] = []
    try:
        for family, sockaddr in _sockets_for(address):
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                _bind(probe, sockaddr, address)
            if not hold:
                continue
            keep = socket.socket(family, socket.SOCK_STREAM)
            held.append(keep)
            keep.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            keep.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            _bind(keep, sockaddr, address)
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return held


def _bind(sock: socket.socket, sockaddr: tuple[object, ...], address: Address) -> None:
    try:
        sock.bind(sockaddr)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(
                f"{address} is already in use (another platform, or another program, listens there): "
                "stop it or choose another --listen"
            ) from None
        if exc.errno == errno.EACCES:
            raise ListenError(
                f"not allowed to listen on {address} (ports below 1024 need privileges): choose another --listen"
            ) from None
        raise ListenError(f"cannot listen on {address} ({exc.strerror}): correct --listen") from None


def tls_credentials(cert_file: str, key_file: str) -> grpc.ServerCredentials:
    """Server TLS from PEM files, checked first (readable, PEM, the key belongs to the certificate),
    so a mistake is named rather than reported by gRPC as a failure to bind."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_pem = _read(cert_file, "--tls-cert")
    key_pem = _read(key_file, "--tls-key")
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise ListenError(f"--tls-cert {cert_file} holds no PEM certificate: give the certificate chain file") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ListenError(
            f"--tls-key {key_file} holds no unencrypted PEM private key ({exc}): give the certificate's key"
        ) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if chain[0].public_key().public_bytes(der, public) != key.public_key().public_bytes(der, public):
        raise ListenError(f"--tls-key {key_file} is not the key of the certificate in --tls-cert {cert_file}")
    return grpc.ssl_server_credentials([(key_pem, cert_pem)])


def _read(path: str, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ListenError(f"cannot read {flag} {path} ({exc.strerror})") from None
