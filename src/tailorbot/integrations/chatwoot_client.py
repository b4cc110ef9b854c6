"""Calls to Chatwoot's API, made from background threads with retries.

The webhook answers Chatwoot without waiting for them; the reply (``POST /api/v1/accounts/
{account_id}/conversations/{conversation_id}/messages``) and the hand-over (``POST
.../toggle_status`` with ``{"status": "open"}``) are queued here and sent with the bot's
``api_access_token`` header by ``senders`` threads, each conversation by one of them (so its
calls keep their order, and a slow call holds up only the conversations of its thread).

A failed call is retried after a growing pause, up to ``max_attempts``; a 4xx other than
408 and 429 is final. A status change is idempotent, so it is retried on any connection
error or retriable status. A message is not: Chatwoot has no idempotency key, and a message
whose request timed out or was answered 500/502/504 may have been posted, so it is retried
only when it surely was not (the connection failed, or 429 and 503, which refuse before
anything is written); better a lost reply than a customer reading it twice. Calls waiting
are bounded (``max_pending``): past it a call is dropped and counted (the webhook path never
blocks). They are in memory: calls still queued when the process stops are lost.

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
NOT_WRITTEN = frozenset({429, 503})  # refused before the request was processed
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout)  # the request never reached Chatwoot


@dataclass(frozen=True)
class Call:
    """One API call: a path below the base URL, its JSON body, and whether sending it twice
    does no harm (see the module doc for what is retried)."""

    path: str
    body: dict[str, Any]
    idempotent: bool = True


class ChatwootClient:
    """Queue Chatwoot API calls and send them from a thread.

    Parameters
    ----------
    base_url
        The Chatwoot installation, e.g. ``https://app.chatwoot.com``.
    token
        The agent bot's access token (sent as ``api_access_token``).
    max_pending
        Calls waiting at most, over all threads; past it a call is dropped (and counted in
        ``dropped``).
    max_attempts
        Tries per call before giving up (counted in ``failed``).
    backoff_s
        First pause between tries; it doubles each time, up to 5 s.
    timeout_s
        Per-request timeout.
    autostart
        Start the sending threads with the first call (else call :meth:`start`).
    senders
        Sending threads; a conversation's calls all go through the same one.
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
        senders: int = 4,
    ) -> None:
        if max_pending < 1 or max_attempts < 1 or senders < 1:
            raise ValueError("max_pending, max_attempts and senders must be >= 1")
        self.base_url = base_url
        self.token = token
        self.max_pending = max_pending
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.autostart = autostart
        self.senders = senders
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queues: list[queue.SimpleQueue[Call]] = [queue.SimpleQueue() for _ in range(senders)]
        self._pending = 0  # calls queued or being sent
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # --- what the webhook asks for ----------------------------------------------------
    def send_message(self, account_id: int, conversation_id: int, content: str) -> bool:
        """Queue an outgoing (public) message; False when the queue is full."""
        body = {"content": content, "message_type": "outgoing", "private": False}
        path = f"{_conversation(account_id, conversation_id)}/messages"
        return self._put(conversation_id, Call(path, body, idempotent=False))

    def toggle_status(self, account_id: int, conversation_id: int, status: str = "open") -> bool:
        """Queue a status change (``open`` hands the conversation to the agents)."""
        path = f"{_conversation(account_id, conversation_id)}/toggle_status"
        return self._put(conversation_id, Call(path, {"status": status}))

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Start the sending threads (idempotent)."""
        with self._lock:
            if self._threads:
                return
            for i, calls in enumerate(self._queues):
                thread = threading.Thread(
                    target=self._run, args=(calls,), name=f"chatwoot-client-{i}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def join(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued call is done (sent or given up); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._pending

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (within ``timeout_s``), then stop the threads."""
        if not self._threads:
            return
        self.join(timeout_s)
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads.clear()
        self._stopping.clear()

    # --- the threads ------------------------------------------------------------------
    def _put(self, conversation_id: int, call: Call) -> bool:
        if self.autostart:
            self.start()  # with the first call, not when the runtime is built
        with self._lock:
            if self._pending >= self.max_pending:
                self.dropped += 1
                full = True
            else:
                self._pending += 1
                full = False
        if full:
            logger.warning("chatwoot: %d calls waiting, dropped %s", self.max_pending, call.path)
            return False
        self._queues[int(conversation_id) % self.senders].put(call)
        return True

    def _run(self, calls: queue.SimpleQueue[Call]) -> None:
        headers = {TOKEN_HEADER: self.token, "Content-Type": "application/json"}
        with httpx.Client(
            base_url=self.base_url.rstrip("/"), headers=headers, timeout=self.timeout_s
        ) as http:
            while True:
                try:
                    call = calls.get(timeout=0.1)
                except queue.Empty:
                    if self._stopping.is_set():
                        return
                    continue
                try:
                    self._deliver(http, call)
                finally:
                    with self._lock:
                        self._pending -= 1

    def _deliver(self, http: httpx.Client, call: Call) -> None:
        pause = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = http.post(call.path, json=call.body)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                if not call.idempotent and not isinstance(exc, _UNSENT):
                    break  # it may have been written: sending it again could post it twice
            else:
                if response.status_code < 300:
                    with self._lock:
                        self.sent += 1
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code not in RETRIABLE:
                    break
                if not call.idempotent and response.status_code not in NOT_WRITTEN:
                    break
            if attempt < self.max_attempts and not self._stopping.is_set():
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
        with self._lock:
            self.failed += 1
        logger.error("chatwoot: %s failed (%s); giving up", call.path, problem)


def _conversation(account_id: int, conversation_id: int) -> str:
    return f"/api/v1/accounts/{int(account_id)}/conversations/{int(conversation_id)}"
