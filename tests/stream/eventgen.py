"""Event builders and hypothesis strategies shared by the stream tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from tailorbot.features.state import apply_event, new_state
from tailorbot.store.base import FeatureRecord

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86400.0
INTENTS = ("card_arrival", "lost_card", "top_up_failed", "exchange_rate")
ARTICLES = ("kb-1", "kb-2", "kb-3", "kb-4")
CHANNELS = ("chat", "email", "app")
VARIANTS = ("concise", "step_by_step", "empathetic")
# What the decision service writes into feedback events: the variant and the reply's article.
_DECISION_METADATA = st.just({}) | st.fixed_dictionaries(
    {"decision_id": st.just("d"), "variant": st.sampled_from(VARIANTS)},
    optional={"article": st.sampled_from(ARTICLES)},
)


def state_of(events: list[dict]) -> dict[str, Any]:
    """One user's feature state after the stream worker applied ``events`` in order."""
    state = new_state()
    for event in events:
        apply_event(state, event, None)
    return state


def state_with(**values: Any) -> dict[str, Any]:
    """A new state with ``values`` in place of its own (a state the tests make by hand)."""
    state = new_state()
    state.update(values)
    return state


def record_of(events: list[dict]) -> FeatureRecord:
    """:func:`state_of` ``events`` as a feature record of user ``u1`` (what a view reads)."""
    return FeatureRecord(
        "u1", state_of(events), partition=0, offset=0, event_time=T0, updated_at=T0
    )


def iso(ts: float) -> str:
    """Epoch seconds as the log stores them (UTC, ``Z``, microseconds kept)."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def make_event(
    kind: str,
    ts: float,
    *,
    event_id: str,
    user_id: str = "u1",
    session_id: str = "s1",
    **fields: Any,
) -> dict[str, Any]:
    """A decoded event dict of type ``kind`` at epoch ``ts`` (fields default sensibly)."""
    defaults: dict[str, dict[str, Any]] = {
        "message": {"role": "customer", "text": "hello", "intent": None},
        "article_viewed": {"article_id": "kb-1"},
        "article_feedback": {"article_id": "kb-1", "helpful": True},
        "rating": {"score": 5},
        "resolution": {"resolved": True, "article_id": None},
        "handoff": {"reason": ""},
    }
    event = {
        "type": kind,
        "event_id": event_id,
        "user_id": user_id,
        "session_id": session_id,
        "timestamp": iso(ts),
        "channel": "chat",
        "metadata": {},
    }
    event.update(defaults.get(kind, {}))
    event.update(fields)
    return event


_FIELDS = {
    "session_started": st.just({}),
    "session_ended": st.just({}),
    "message": st.fixed_dictionaries(
        {
            "role": st.sampled_from(("customer", "customer", "bot", "agent")),
            "intent": st.none() | st.sampled_from(INTENTS),
            # the newest bot message is a feature: ties in time are broken by its text
            "text": st.sampled_from(("hello", "Has it arrived yet?", "Done.")),
        }
    ),
    "article_viewed": st.fixed_dictionaries({"article_id": st.sampled_from(ARTICLES)}),
    "article_feedback": st.fixed_dictionaries(
        {"article_id": st.sampled_from(ARTICLES), "helpful": st.booleans()}
    ),
    "rating": st.fixed_dictionaries({"score": st.integers(1, 5), "metadata": _DECISION_METADATA}),
    "resolution": st.fixed_dictionaries(
        {
            "resolved": st.booleans(),
            "article_id": st.none() | st.sampled_from(ARTICLES),
            "metadata": _DECISION_METADATA,
        }
    ),
    "handoff": st.just({}),
}


@st.composite
def event_streams(draw: st.DrawFn, span_days: float = 45.0, max_users: int = 3) -> list[dict]:
    """Events of a few users, each in sessions of up to two hours spread over ``span_days``.

    Times are whole milliseconds; a few share one timestamp (ties matter for ordering).
    """
    events: list[dict] = []
    n_users = draw(st.integers(1, max_users))
    for u in range(n_users):
        n_sessions = draw(st.integers(1, 6))
        for s in range(n_sessions):
            start = T0 + draw(st.integers(0, int(span_days * DAY * 1000) - 7_200_000)) / 1000
            n_events = draw(st.integers(1, 8))
            for _ in range(n_events):
                kind = draw(st.sampled_from(sorted(_FIELDS)))
                offset = draw(st.sampled_from((0, 0, 1000)) | st.integers(0, 7_200_000)) / 1000
                events.append(
                    make_event(
                        kind,
                        start + offset,
                        event_id=f"e{len(events)}",
                        user_id=f"u{u}",
                        session_id=f"u{u}-s{s}",
                        channel=draw(st.sampled_from(CHANNELS)),
                        **draw(_FIELDS[kind]),
                    )
                )
    return events
