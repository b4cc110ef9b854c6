"""A real HTTP server standing in for Chatwoot's API: it records every call it gets.

``fail_next`` makes the next N calls answer 503 (to exercise retries).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str
    token: str | None
    body: Any


class RecordingChatwoot:
    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.fail_next = 0
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with recorder._lock:
                    if recorder.fail_next > 0:
                        recorder.fail_next -= 1
                        status = 503
                    else:
                        status = 200
                        recorder.calls.append(
                            RecordedCall(
                                "POST",
                                self.path,
                                self.headers.get("api_access_token"),
                                json.loads(raw or b"null"),
                            )
                        )
                answer = json.dumps({"id": len(recorder.calls)}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> RecordingChatwoot:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
