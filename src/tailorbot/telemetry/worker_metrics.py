"""The stream worker process's exposition: served by the worker (on a socket it inherits
from ``tailorbot serve``, or on ``--metrics-port``), read over HTTP by the server processes.

``/metrics`` merges it, ``/readyz`` probes it and the dashboard reads its lag. One client per
process serves them all: ``httpx.get`` makes a client per call, and each new client builds
a TLS context (the CA bundle loaded), about 50 ms of CPU on a busy 2-core machine for a
loopback GET of plain HTTP; a kept client makes the same read in a few milliseconds.
"""

from __future__ import annotations

import functools
import logging
import socket
import socketserver
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import httpx
from prometheus_client import CollectorRegistry, make_wsgi_app

logger = logging.getLogger(__name__)


def worker_exposition(url: str, timeout_s: float) -> str:
    """The text exposition at ``url``/metrics; an ``httpx.HTTPError`` when it cannot be read
    (a status other than 2xx included)."""
    response = _client().get(url + "/metrics", timeout=timeout_s)
    response.raise_for_status()
    return response.text


@functools.cache  # made on first use, not at import; httpx's Client is thread-safe
def _client() -> httpx.Client:
    return httpx.Client()


def inherited_listener(fd: int) -> socket.socket:
    """The TCP socket behind ``fd``, listening already (what ``tailorbot serve`` hands its
    worker); :class:`ValueError` saying why not otherwise (a socket that is not, is left
    open: it is not this process's to close)."""
    try:
        inherited = socket.socket(fileno=fd)
    except OSError as exc:
        raise ValueError(f"not an open socket: {exc.strerror or exc}") from None
    if inherited.family not in (socket.AF_INET, socket.AF_INET6):
        inherited.detach()
        raise ValueError("not a TCP socket")
    if inherited.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) != 1:
        inherited.detach()
        raise ValueError("the socket is not listening")
    return inherited


def serve_exposition(listening: socket.socket, registry: CollectorRegistry) -> WSGIServer:
    """``registry``'s exposition over HTTP on ``listening``, a TCP socket bound and listening
    already (``--metrics-port``'s, or the supervisor's, inherited through
    :func:`inherited_listener`: it holds the port across the worker's restarts, so no other
    process can take it between two of them), from a daemon thread; returns the server
    (``shutdown()`` stops it). Connections that waited in the socket's queue while no
    worker ran may be gone when answered: they are dropped without a traceback.

    >>> import httpx
    >>> from prometheus_client import Counter
    >>> registry = CollectorRegistry()
    >>> Counter("applied", "Events applied", registry=registry).inc(3)
    >>> server = serve_exposition(socket.create_server(("127.0.0.1", 0)), registry)
    >>> host, port = server.server_address[:2]
    >>> "applied_total 3.0" in httpx.get(f"http://{host}:{port}/metrics").text
    True
    >>> server.shutdown(); server.server_close()
    """
    host, port = listening.getsockname()[:2]
    server = _ExpositionServer((host, port), _QuietHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = listening
    server.server_address = (host, port)
    server.server_name, server.server_port = host, port  # what server_bind would have set
    server.setup_environ()
    server.set_app(make_wsgi_app(registry))
    threading.Thread(target=server.serve_forever, name="tailorbot-metrics", daemon=True).start()
    return server


class _ExpositionServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a scrape that gave up while no worker ran (its connection waited in the queue)
        logger.debug("a metrics request from %s failed", client_address, exc_info=True)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        return  # no access line on stderr per scrape


__all__ = ["inherited_listener", "serve_exposition", "worker_exposition"]
