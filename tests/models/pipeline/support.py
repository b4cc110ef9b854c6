"""A small bilingual support log for the pipeline tests: English and German customers asking
about four intents, some messages labelled by an agent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

PHRASES = {
    "en": {
        "card_arrival": ["where is my card", "my card has not arrived", "when will my card come",
                         "card still not delivered", "how long until my card arrives",
                         "has my new card been sent"],
        "top_up": ["how do i top up", "add money to my account", "top up with my bank card",
                   "load funds into the wallet", "i want to put money in", "top up limit"],
        "exchange_rate": ["what is the exchange rate", "euro to dollar rate",
                          "how much is the conversion fee", "rate for pounds",
                          "currency exchange rates today", "why was the rate so bad"],
        "change_pin": ["how do i change my pin", "reset my pin", "i forgot my pin",
                       "set a new pin code", "pin change at an atm", "my pin is blocked"],
    },
    "de": {
        "card_arrival": ["wo ist meine karte", "meine karte ist nicht angekommen",
                         "wann kommt meine karte", "karte noch nicht geliefert",
                         "wie lange dauert die zustellung der karte",
                         "wurde meine neue karte verschickt"],
        "top_up": ["wie lade ich geld auf", "geld auf mein konto einzahlen",
                   "aufladen mit meiner bankkarte", "guthaben in die geldbörse laden",
                   "ich möchte geld einzahlen", "aufladegrenze"],
        "exchange_rate": ["wie ist der wechselkurs", "kurs euro zu dollar",
                          "wie hoch ist die umrechnungsgebühr", "kurs für pfund",
                          "devisenkurse heute", "warum war der kurs so schlecht"],
        "change_pin": ["wie ändere ich meine geheimzahl", "geheimzahl zurücksetzen",
                       "ich habe meine geheimzahl vergessen", "neue geheimzahl festlegen",
                       "geheimzahl am automaten ändern", "meine geheimzahl ist gesperrt"],
    },
}  # fmt: skip
PREFIXES = {"en": ["", "hi, ", "hello ", "please tell me "],
            "de": ["", "hallo, ", "guten tag ", "bitte sagen sie mir "]}  # fmt: skip
SUFFIXES = {"en": ["", " please", "?", " thanks"], "de": ["", " bitte", "?", " danke"]}
INTENTS = tuple(sorted(PHRASES["en"]))
START = datetime(2026, 1, 1, tzinfo=UTC)


def text_for(rng: np.random.Generator, language: str, intent: str) -> str:
    phrases = PHRASES[language][intent]
    return (
        PREFIXES[language][int(rng.integers(4))]
        + phrases[int(rng.integers(len(phrases)))]
        + SUFFIXES[language][int(rng.integers(4))]
    )


AMBIGUOUS = {"en": "hi, it is about the same thing again", "de": "hallo, es geht wieder darum"}


def support_log(
    users: int = 40, contacts: int = 6, label_share: float = 1.0, seed: int = 0,
    languages: tuple[str, ...] = ("en", "de"), ambiguous_share: float = 0.0,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:  # fmt: skip
    """Events (time-ordered) and profiles: each contact is a session with one customer
    message (a decision id in its metadata), a rating and, for ``label_share`` of them, an
    agent's intent_label an hour later. With ``ambiguous_share``, each customer has one
    recurring intent and that share of their follow-up messages says only "it is about the
    same thing again": ambiguous alone, clear with the customer's history."""
    rng = np.random.default_rng(seed)
    events: list[dict[str, Any]] = []
    profiles = {}
    for u in range(users):
        user = f"u{u}"
        language = languages[u % len(languages)]
        profiles[user] = {"tier": "gold" if u % 3 == 0 else "standard", "language": language}
        recurring = INTENTS[int(rng.integers(len(INTENTS)))]
        days = sorted(int(d) for d in rng.integers(20, size=contacts))
        for c in range(contacts):
            at = START + timedelta(days=days[c], minutes=int(rng.integers(1440)))
            session, decision = f"{user}-s{c}", f"d-{user}-{c}"
            intent = INTENTS[int(rng.integers(len(INTENTS)))]
            text = text_for(rng, language, intent)
            if ambiguous_share > 0:
                intent = recurring
                text = text_for(rng, language, intent)
                if c > 0 and rng.random() < ambiguous_share:
                    text = AMBIGUOUS[language]
            base = {"user_id": user, "session_id": session}
            events.append({**base, "type": "session_started", "event_id": f"{session}-start",
                           "timestamp": at.isoformat()})  # fmt: skip
            events.append({**base, "type": "message", "event_id": f"{decision}-message",
                           "timestamp": (at + timedelta(seconds=5)).isoformat(),
                           "role": "customer", "text": text,
                           "intent": intent, "confidence": float(rng.uniform(0.2, 1.0)),
                           "metadata": {"decision_id": decision}})  # fmt: skip
            events.append({**base, "type": "rating", "event_id": f"{decision}-rating",
                           "timestamp": (at + timedelta(seconds=60)).isoformat(),
                           "score": int(rng.integers(1, 6)),
                           "metadata": {"decision_id": decision}})  # fmt: skip
            if rng.random() < label_share:
                events.append({**base, "type": "intent_label", "event_id": f"{decision}-label",
                               "timestamp": (at + timedelta(hours=1)).isoformat(),
                               "intent": intent, "decision_id": decision})  # fmt: skip
    events.sort(key=lambda e: (e["timestamp"], e["event_id"]))
    return events, profiles


def write_support_log(data_dir: Path, label_share: float, **settings: Any) -> dict[str, str]:
    """A data dir whose log and profile store hold the bilingual support log (60 customers,
    5 contacts each); returns message event id → intent. ``settings`` as the server's."""
    from tailorbot.config import Settings
    from tailorbot.events.codec import encode_event
    from tailorbot.events.schema import EVENT_ADAPTER
    from tailorbot.runtime import Runtime

    events, profiles = support_log(users=60, contacts=5, label_share=label_share, seed=4)
    config = Settings.load(data_dir=data_dir, run_worker_in_server=False, **settings)
    runtime = Runtime(config)
    try:
        for user, profile in profiles.items():
            runtime.stores.profiles.put(user, profile)
        runtime.log.append(
            [(e["user_id"], encode_event(EVENT_ADAPTER.validate_python(e))) for e in events]
        )
    finally:
        runtime.stop()
    return {e["event_id"]: e["intent"] for e in events if e["type"] == "message"}
