"""HOST:PORT addresses as operators write them, checked once for every command that takes one:
the platform's --listen, an agent's `platform`, the ops CLI's --platform."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, *, any_port: bool = False) -> Address:
    """HOST:PORT (an IPv6 host in brackets); with `any_port`, port 0 (pick a free one to listen on)."""
    if "://" in text or "/" in text:
        raise ValueError(f"{text!r} is not HOST:PORT (no scheme, no path), e.g. 127.0.0.1:50051")
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:50051, [::]:50051)")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"{text!r}: an IPv6 host goes in brackets, e.g. [::1]:50051")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: an IPv6 host goes in brackets, e.g. [::1]:50051")
    lowest = 0 if any_port else 1
    if not port.isdigit() or not lowest <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from {lowest} to 65535")
    return Address(host, int(port))
