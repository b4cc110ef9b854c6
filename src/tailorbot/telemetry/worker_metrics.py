"""The stream worker process's exposition, read over HTTP by its server processes.

``/metrics`` merges it, ``/readyz`` probes it and the dashboard reads its lag. One client per
process serves them all: ``httpx.get`` makes a client per call, and each new client builds
a TLS context (the CA bundle loaded), about 50 ms of CPU on a busy 2-core machine for a
loopback GET of plain HTTP; a kept client makes the same read in a few milliseconds.
"""

from __future__ import annotations

import functools

import httpx


def worker_exposition(url: str, timeout_s: float) -> str:
    """The text exposition at ``url``/metrics; an ``httpx.HTTPError`` when it cannot be read
    (a status other than 2xx included)."""
    response = _client().get(url + "/metrics", timeout=timeout_s)
    response.raise_for_status()
    return response.text


@functools.cache  # made on first use, not at import; httpx's Client is thread-safe
def _client() -> httpx.Client:
    return httpx.Client()


__all__ = ["worker_exposition"]
