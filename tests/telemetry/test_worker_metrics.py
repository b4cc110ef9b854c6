"""Reading the stream worker process's exposition (telemetry/worker_metrics.py)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest

from tailorbot.telemetry.worker_metrics import worker_exposition


@pytest.fixture
def exposition_server() -> Iterator[tuple[str, list[int]]]:
    """A metrics endpoint answering with the statuses the test puts in the list."""
    statuses = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"tailorbot_events_applied_total 3.0\n"
            self.send_response(statuses[0])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", statuses
    finally:
        server.shutdown()
        server.server_close()


def test_the_exposition_is_read_and_a_failing_status_raises(
    exposition_server: tuple[str, list[int]],
) -> None:
    url, statuses = exposition_server
    assert "tailorbot_events_applied_total 3.0" in worker_exposition(url, 5.0)
    statuses[0] = 500  # a worker answering an error is not a worker whose metrics we have
    with pytest.raises(httpx.HTTPStatusError):
        worker_exposition(url, 5.0)
