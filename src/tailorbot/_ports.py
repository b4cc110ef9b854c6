"""A TCP port kept for a server that will listen on it: the one place tailorbot binds one.

>>> holder = held_port()
>>> port = holder.getsockname()[1]
>>> with socket.socket() as other:  # no SO_REUSEADDR: refused
...     other.bind(("127.0.0.1", port))
Traceback (most recent call last):
OSError: [Errno 98] Address already in use
>>> server = socket.create_server(("127.0.0.1", port))
>>> holder.close(); server.close()
"""

from __future__ import annotations

import socket


def held_port(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A socket bound to ``host:port`` (its first address; a free port when 0) that keeps the
    port for a server started next: close it once that server listens. While it is open the
    kernel gives the port to no other socket, neither a bind to port 0 nor an outgoing
    connection's local port (a port found free and released was taken so, by another
    process or by ``tailorbot serve``'s own sockets, before the server bound it). It does
    not listen, and a server that binds with ``SO_REUSEADDR`` as uvicorn does (and
    ``socket.create_server`` on Unix) listens beside it. :class:`OSError` when it cannot be
    bound."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    holder = socket.socket(family, kind, proto)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(address)
    except OSError:
        holder.close()
        raise
    return holder
