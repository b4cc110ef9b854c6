"""Synthetic but realistic event batches for the data-plane benchmarks (pre-encoded)."""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime

import orjson

from tailorbot.kb.loader import default_kb_dir, load_kb

INTENTS = ["card_arrival", "lost_or_stolen_card", "top_up_failed", "exchange_rate", "pin_blocked"]


@functools.cache
def kb_articles() -> list[str]:
    """Articles of the bundled KB (the door refuses article ids the knowledge base lacks)."""
    return [article.id for article in load_kb(default_kb_dir()).articles][:40]


TEXTS = [
    "I am still waiting on my card, it has been a week",
    "my top up did not go through, what happened?",
    "how do I unblock my pin",
    "what exchange rate will I get",
    "someone stole my card",
]


def make_events(n: int, users: int, seed: int = 7, prefix: str = "bench") -> list[dict]:
    """n events spread over ``users`` users, as a chatbot would send them."""
    rng = random.Random(seed)
    now = datetime.now(UTC).isoformat()
    out = []
    for i in range(n):
        u = rng.randrange(users)
        kind = rng.random()
        base = {
            "event_id": f"{prefix}-{i}",
            "user_id": f"user-{u}",
            "session_id": f"s-{u}-{i // 50}",
            "timestamp": now,
            "channel": rng.choice(["chat", "chat", "email", "app"]),
        }
        if kind < 0.55:
            j = rng.randrange(len(TEXTS))
            base |= {
                "type": "message",
                "role": rng.choice(["customer", "bot"]),
                "text": TEXTS[j],
                "intent": INTENTS[j],
            }
        elif kind < 0.65:
            base |= {"type": "article_viewed", "article_id": rng.choice(kb_articles())}
        elif kind < 0.75:
            base |= {"type": "rating", "score": rng.randint(1, 5)}
        elif kind < 0.85:
            base |= {"type": "resolution", "resolved": rng.random() < 0.7}
        elif kind < 0.93:
            base |= {"type": "session_started"}
        else:
            base |= {"type": "session_ended"}
        out.append(base)
    return out


def batches(events: list[dict], size: int) -> list[bytes]:
    return [orjson.dumps({"events": events[i : i + size]}) for i in range(0, len(events), size)]
