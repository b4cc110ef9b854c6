"""A real HTTP server standing in for Chatwoot's API: it records every call it gets.

``fail_next`` makes the next N calls answer ``fail_status`` (503 by default: to exercise
retries); ``stall_s`` holds the answer to each call whose path ends with a key for that many
seconds (a slow or hanging Chatwoot). ``calls`` is in order of arrival, ``finished`` the
paths in the order they were answered.
"""

from __future__ import annotations

import json
import threading
import time
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
        self.finished: list[str] = []
        self.fail_next = 0
        self.fail_status = 503
        self.stall_s: dict[str, float] = {}
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with recorder._lock:
                    if recorder.fail_next > 0:
                        recorder.fail_next -= 1
                        status = recorder.fail_status
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
                stall = next((s for p, s in recorder.stall_s.items() if self.path.endswith(p)), 0)
                time.sleep(stall)  # a Chatwoot that is slow to answer (the call is recorded)
                with recorder._lock:
                    recorder.finished.append(self.path)
                answer = json.dumps({"id": len(recorder.calls)}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (its timeout)

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
