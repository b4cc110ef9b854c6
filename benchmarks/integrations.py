"""Latency of the chatbot integrations over real HTTP, one request at a time (closed loop).

Starts `tailorbot serve` (a trained Banking77 model, embedded backends, the stream worker in
its own process) with a Chatwoot
stand-in: an HTTP server in this process that records the bot's API calls. Then, for each
of ``--requests`` customer messages:

* **chatwoot webhook**: a signed `message_created` until tailorbot answers, and until its
  reply reaches the stand-in (the reply goes out from a background thread);
* **rasa nlg**: Rasa's NLG request until the personalized text comes back;
* **rasa events**: a Rasa tracker turn (user, action, bot: 3 events) until 202.

    .venv/bin/python benchmarks/integrations.py --requests 300
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from _harness import machine, tailorbot_server
from personalize import ensure_model

from tailorbot.integrations.chatwoot import sign
from tailorbot.models.intent import default_dataset

SECRET = "bench-secret"


class ChatwootStandIn:
    """Records the time each reply arrives, by conversation id."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.split("/")
                if self.path.endswith("/messages"):
                    stand_in.arrived[int(parts[-2])] = time.perf_counter()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


def webhook(client: httpx.Client, i: int, text: str) -> tuple[float, int]:
    payload = {
        "event": "message_created",
        "id": i,
        "content": text,
        "message_type": "incoming",
        "private": False,
        "account": {"id": 1},
        "sender": {"id": 1000 + i % 50, "name": "Ada", "type": "contact"},
        "conversation": {"id": i, "inbox_id": 1},
    }
    body = json.dumps(payload).encode()
    ts = str(int(time.time()))
    headers = {
        "X-Chatwoot-Timestamp": ts,
        "X-Chatwoot-Signature": sign(SECRET, body, ts),
        "Content-Type": "application/json",
    }
    start = time.perf_counter()
    answer = client.post("/v1/integrations/chatwoot/webhook", content=body, headers=headers)
    answer.raise_for_status()
    return start, i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--model-dir", default="/tmp/tailorbot-bench-model")
    args = ap.parse_args()
    ensure_model(Path(args.model_dir))
    texts = list(default_dataset("test").texts)
    stand_in = ChatwootStandIn()
    env = {
        "TAILORBOT_CHATWOOT_URL": stand_in.url,
        "TAILORBOT_CHATWOOT_TOKEN": "t",
        "TAILORBOT_CHATWOOT_SECRET": SECRET,
    }
    acked: list[float] = []
    replied: list[float] = []
    nlg: list[float] = []
    events: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tb-bench-integ-") as data_dir:
        shutil.copytree(Path(args.model_dir) / "models", Path(data_dir) / "models")
        with (
            tailorbot_server(env=env, data_dir=data_dir) as (url, _, _),
            httpx.Client(base_url=url, timeout=30) as client,
        ):
            for i in range(20):  # warm-up: lazy imports, caches
                webhook(client, 100_000 + i, texts[i])
            for i in range(args.requests):
                text = texts[i % len(texts)]
                start, conversation = webhook(client, i, text)
                acked.append(time.perf_counter() - start)
                while conversation not in stand_in.arrived:
                    time.sleep(0.0005)
                replied.append(stand_in.arrived[conversation] - start)

                now = time.time()
                request = {
                    "response": "utter_answer",
                    "arguments": {},
                    "channel": {"name": "rest"},
                    "tracker": {
                        "sender_id": f"r-{i % 50}",
                        "slots": {},
                        "latest_message": {"text": text},
                        "events": [],
                    },
                }
                start = time.perf_counter()
                client.post("/v1/integrations/rasa/nlg", json=request).raise_for_status()
                nlg.append(time.perf_counter() - start)

                turn = [
                    {
                        "sender_id": f"r-{i % 50}",
                        "event": "user",
                        "timestamp": now,
                        "text": text,
                        "parse_data": {"intent": {"name": "card_arrival", "confidence": 0.8}},
                    },
                    {
                        "sender_id": f"r-{i % 50}",
                        "event": "action",
                        "timestamp": now + 0.01,
                        "name": "utter_answer",
                    },
                    {
                        "sender_id": f"r-{i % 50}",
                        "event": "bot",
                        "timestamp": now + 0.02,
                        "text": "an answer",
                    },
                ]
                start = time.perf_counter()
                client.post("/v1/integrations/rasa/events", json=turn).raise_for_status()
                events.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "benchmark": "integrations",
                "machine": machine(),
                "chatwoot_webhook_answered": percentiles(acked),
                "chatwoot_reply_at_chatwoot": percentiles(replied),
                "rasa_nlg": percentiles(nlg),
                "rasa_events_3_per_request": percentiles(events),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
