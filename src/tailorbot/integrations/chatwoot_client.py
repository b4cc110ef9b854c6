"""Calls to Chatwoot's API, made from a background thread with retries.

The webhook answers Chatwoot at once; the reply (``POST /api/v1/accounts/{account_id}/
conversations/{conversation_id}/messages``) and the hand-over (``POST .../toggle_status``
with ``{"status": "open"}``) are queued here and sent by one thread, in order, with the
bot's ``api_access_token`` header. A failed call (connection error, 429 or 5xx) is retried
after a growing pause, up to ``max_attempts``; a 4xx other than 429 is final. The queue is
bounded: when it is full the call is dropped and counted (the webhook path never blocks).

>>> client = ChatwootClient("https://chatwoot.example", "token")  # doctest: +SKIP
>>> client.start()  # doctest: +SKIP
>>> client.send_message(1, 10, "Hi Ada!")  # doctest: +SKIP
True
>>> client.close()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

logger = logging.getLogger(__name__)

TOKEN_HEADER = "api_access_token"
RETRIABLE = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Call:
    """One API call: a path below the base URL and its JSON body."""

    path: str
    body: dict[str, Any]


class ChatwootClient:
    """Queue Chatwoot API calls and send them from a thread.

    Parameters
    ----------
    base_url
        The Chatwoot installation, e.g. ``https://app.chatwoot.com``.
    token
        The agent bot's access token (sent as ``api_access_token``).
    max_pending
        Calls queued at most; past it a call is dropped (and counted in ``dropped``).
    max_attempts
        Tries per call before giving up (counted in ``failed``).
    backoff_s
        First pause between tries; it doubles each time, up to 5 s.
    timeout_s
        Per-request timeout.
    autostart
        Start the sending thread with the first call (else call :meth:`start`).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        max_pending: int = 1000,
        max_attempts: int = 5,
        backoff_s: float = 0.2,
        timeout_s: float = 5.0,
        autostart: bool = True,
    ) -> None:
        if max_pending < 1 or max_attempts < 1:
            raise ValueError("max_pending and max_attempts must be >= 1")
        self.base_url = base_url
        self.token = token
        self.max_pending = max_pending
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.autostart = autostart
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[Call] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- what the webhook asks for ----------------------------------------------------
    def send_message(self, account_id: int, conversation_id: int, content: str) -> bool:
        """Queue an outgoing (public) message; False when the queue is full."""
        body = {"content": content, "message_type": "outgoing", "private": False}
        return self._put(Call(f"{_conversation(account_id, conversation_id)}/messages", body))

    def toggle_status(self, account_id: int, conversation_id: int, status: str = "open") -> bool:
        """Queue a status change (``open`` hands the conversation to the agents)."""
        path = f"{_conversation(account_id, conversation_id)}/toggle_status"
        return self._put(Call(path, {"status": status}))

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Start the sending thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="chatwoot-client", daemon=True)
            self._thread.start()

    def join(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued call is done (sent or given up); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (within ``timeout_s``), then stop the thread."""
        if self._thread is None:
            return
        self.join(timeout_s)
        self._stopping.set()
        self._thread.join(timeout_s)
        self._thread = None
        self._stopping.clear()

    # --- the thread -------------------------------------------------------------------
    def _put(self, call: Call) -> bool:
        if self.autostart:
            self.start()  # with the first call, not when the runtime is built
        try:
            self._queue.put_nowait(call)
        except queue.Full:
            self.dropped += 1
            logger.warning(
                "chatwoot: queue full (%d calls), dropped %s", self.max_pending, call.path
            )
            return False
        return True

    def _run(self) -> None:
        headers = {TOKEN_HEADER: self.token, "Content-Type": "application/json"}
        with httpx.Client(
            base_url=self.base_url.rstrip("/"), headers=headers, timeout=self.timeout_s
        ) as http:
            while True:
                try:
                    call = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if self._stopping.is_set():
                        return
                    continue
                try:
                    self._deliver(http, call)
                finally:
                    self._queue.task_done()

    def _deliver(self, http: httpx.Client, call: Call) -> None:
        pause = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = http.post(call.path, json=call.body)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    self.sent += 1
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code not in RETRIABLE:
                    break
            if attempt < self.max_attempts and not self._stopping.is_set():
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
        self.failed += 1
        logger.error("chatwoot: %s failed (%s); giving up", call.path, problem)


def _conversation(account_id: int, conversation_id: int) -> str:
    return f"/api/v1/accounts/{int(account_id)}/conversations/{int(conversation_id)}"
