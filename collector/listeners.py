"""The collector's listening sockets, bound before anything is started or acknowledged.

Every listener reuses its address (``SO_REUSEADDR``): a collector started again right after a stop binds its
ports although connections of the old one (a health check, a scrape) linger in TIME_WAIT. None shares its
port (no ``SO_REUSEPORT``, which grpc sets by default): a second collector on a port that a live one holds is
refused, instead of both listening and the kernel splitting the calls between their data directories.
"""

from __future__ import annotations

import errno
import socket


class ListenError(OSError):
    """A listener cannot be bound; the message is the one line an operator reads."""


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as host and port; a missing host is 127.0.0.1."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def bind(address: str, what: str) -> socket.socket:
    """A listening TCP socket on ``address``; ListenError naming ``address`` and ``what`` (``OTLP/HTTP``)
    when the port is taken or the address is not this machine's."""
    host, port = split_address(address)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"{address} ({what}): cannot resolve {host!r}: {exc.strerror}") from None
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(4096)
    except OSError as exc:
        sock.close()
        raise ListenError(_reason(address, what, exc)) from None
    sock.setblocking(False)
    return sock


def check_free(address: str, what: str) -> None:
    """Raise ListenError when ``address`` cannot be listened on (for a server that binds on its own, as grpc
    does: it is told not to share the port, and this turns its failure into one line beforehand)."""
    bind(address, what).close()


def _reason(address: str, what: str, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"{address} ({what}) is in use by another process"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{address} ({what}): not an address of this machine"
    if exc.errno == errno.EACCES:
        return f"{address} ({what}): permission denied (ports below 1024 need privileges)"
    return f"{address} ({what}): cannot listen: {exc.strerror or exc}"
