"""What a decision returns and logs: the personalize response and the message event.

Split from :mod:`tailorbot.services.decisions.service` so that the service keeps the flow.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tailorbot.compiled import native
from tailorbot.events.codec import now_iso
from tailorbot.events.profile import consents_to_personalization
from tailorbot.events.schema import EVENT_ADAPTER, Message, checked_event, new_event_id
from tailorbot.kb.model import KnowledgeBase


def decision_record(
    user_id: str,
    session_id: str,
    channel: str,
    template_id: str,
    choice: tuple[str, float, dict[str, float]],
    arm: str,
    personalized: bool,
    versions: Mapping[str, str],
    message: Mapping[str, Any],
    *,
    created_at: str,
    experiment: str | None = None,
) -> dict[str, Any]:
    """A decision as stored for its feedback: a new id, who, the template and the chosen
    ``(variant, propensity, context)``, the A/B arm and model versions; ``message`` holds
    what was read from the customer's message (intent, articles, ...), when there was one.
    (A mapping, not keyword arguments: each keyword a function does not name costs a string
    comparison with every parameter it does, some 10 k instructions a decision.)
    ``created_at`` is when the request came, before the user was read: the store refuses a
    decision made before an erasure of its user (``DecisionStore.put_many``). ``experiment``
    names the A/B test whose ``arm`` served it: only that test's readout counts its outcome."""
    variant, propensity, context = choice
    return {
        "decision_id": new_event_id(),
        "user_id": user_id,
        "session_id": session_id,
        "channel": channel,
        **message,
        "template_id": template_id,
        "variant": variant,
        "propensity": propensity,
        "context": context,
        "arm": arm,
        "experiment": experiment,
        "personalized": personalized,
        "model_versions": dict(versions),
        "created_at": created_at,
    }


def personalize_payload(
    decision: dict[str, Any],
    prediction: Any,
    articles: list[tuple[Any, str | None, str]],
    view: Mapping[str, Any] | None,
    profile: Mapping[str, Any] | None,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The answer in :class:`PersonalizeResponse`'s JSON shape, built as plain data: the hot
    route writes it as it is (a dozen nested pydantic models cost more than the bandit);
    :meth:`DecisionService.personalize` validates it into the model for every other caller.
    Made in one compiled call where the extension is built (``csrc/payload.c``)."""
    compiled = getattr(native(), "answer_payload", None)  # None: not built, or before
    if compiled is not None:
        segment = view["segment"] if view is not None else None
        consent = consents_to_personalization(profile)
        found = compiled(decision, prediction, articles, segment, consent, timings)
        if found is not None:  # None: a part of another shape, which Python reads
            # Annotated, not cast(): cast(dict[str, Any], ...) builds the alias at every
            # call, some 1,600 instructions.
            payload: dict[str, Any] = found
            return payload
    return payload_in_python(decision, prediction, articles, view, profile, timings)


def payload_in_python(
    decision: dict[str, Any],
    prediction: Any,
    articles: list[tuple[Any, str | None, str]],
    view: Mapping[str, Any] | None,
    profile: Mapping[str, Any] | None,
    timings: dict[str, float],
) -> dict[str, Any]:
    """:func:`personalize_payload` in Python: the reference the compiled ``answer_payload``
    is tested against, and the path for what it does not read."""
    record = decision["record"]
    return {
        "decision_id": record["decision_id"],
        "intent": {
            "name": prediction.name,
            "confidence": float(prediction.confidence),
            "ranking": [{"name": n, "confidence": float(p)} for n, p in prediction.ranking],
            "language": prediction.language,
            "follow_up": prediction.follow_up,
        },
        "fallback": {
            "triggered": bool(prediction.fallback.triggered),
            "reason": prediction.fallback.reason,
        },
        "articles": [
            {
                "id": a.article_id,
                "title": a.title,
                "score": float(a.score),
                "reasons": list(a.reasons),
                "url": url,
                "snippet": snippet,
            }
            for a, url, snippet in articles
        ],
        "response": {
            "template_id": record["template_id"],
            "variant": record["variant"],
            "text": decision["text"],
            "propensity": float(record["propensity"]),
        },
        "user": {
            "segment": view["segment"] if view is not None else None,
            "consent": consents_to_personalization(profile),
            "personalized": record["personalized"],
        },
        "experiment_arm": record["arm"],
        "model_versions": record["model_versions"],
        "timings_ms": timings,
    }


def cited(articles: list[Any], kb: KnowledgeBase) -> list[tuple[Any, str | None, str]]:
    """Each recommended article with its url and snippet, for the bot to link or cite."""
    out: list[tuple[Any, str | None, str]] = []
    for recommendation in articles:
        url, snippet = kb.citation(recommendation.article_id) or (None, "")
        out.append((recommendation, url, snippet))
    return out


def message_event(
    decision_id: str,
    user_id: str,
    session_id: str,
    channel: str,
    text: str,
    prediction: Any,
    received_at: str,
) -> dict:
    """The customer message a decision logs (the request's fields), dated ``received_at``:
    when the request came, before the decision read the user, so that an erasure of the user
    after that read drops the event even if it reaches the log after the erasure."""
    return {
        "type": "message",
        "event_id": f"{decision_id}-message",
        "user_id": user_id,
        "session_id": session_id,
        "timestamp": received_at,
        "channel": channel,
        "role": "customer",
        "text": text,
        "intent": prediction.name,
        "confidence": round(float(prediction.confidence), 6),
        "metadata": {"decision_id": decision_id},
    }


def checked_message(event: dict[str, Any]) -> Message | None:
    """``event``, a :func:`message_event` under its own id, as the :class:`Message` the door's
    validation makes of it, built without validating it again; None where a value is one
    this cannot vouch for (the door then validates the dict): a channel or an intent name
    the event schema refuses, an intent that is not an exact ``str``, a confidence outside
    [0, 1]. The bounds the settings set (metadata, time) are the door's to check
    (``IngestionService.accept_checked``).

    The rest is checked already: the ids and the text by :class:`PersonalizeRequest` (its ids
    are the events' own type; its text is not empty without U+0000, and the service bounds
    its length), the event and decision ids made by ``new_event_id``, the time now. The
    text loses its U+0000, as the door's validation removes it.
    """
    confidence, intent = event["confidence"], event["intent"]
    if intent is not None and type(intent) is not str:  # the door makes a str of a subclass
        return None
    if not 0.0 <= confidence <= 1.0 or not _schema_takes(event["channel"], intent):
        return None
    text = event["text"]
    return checked_event(
        Message,
        {
            "event_id": event["event_id"],
            "user_id": event["user_id"],
            "session_id": event["session_id"],
            "timestamp": datetime.fromisoformat(event["timestamp"]),
            "channel": event["channel"],
            "metadata": event["metadata"],
            "type": "message",
            "role": event["role"],
            "text": text.replace("\x00", "") if "\x00" in text else text,
            "intent": intent,
            "confidence": confidence,
        },
    )


@functools.lru_cache(maxsize=1024)  # a model's intent names, a bot's few channels
def _schema_takes(channel: str, intent: str | None) -> bool:
    """Whether the event schema takes ``channel`` and ``intent`` in a message event: its own
    rules, run once per pair on a message that is otherwise valid."""
    sample = {
        "type": "message", "user_id": "u", "session_id": "s", "timestamp": now_iso(),
        "role": "customer", "text": "x", "channel": channel, "intent": intent,
    }  # fmt: skip
    try:
        EVENT_ADAPTER.validate_python(sample)
    except ValidationError:
        return False
    return True
