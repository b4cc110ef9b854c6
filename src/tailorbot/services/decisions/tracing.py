"""The stages of a decision as trace spans, when tracing is on (see telemetry/tracing.py).

The decision code itself has no tracing in it, so that with tracing off it pays nothing:
:func:`trace_decisions` wraps the stage methods of one running service instead. The stages:
``user read`` (on a network store with decisions on the event loop, the user's read awaited
before the decision), ``intent`` (the intent model and fallback), ``features`` (profile and
feature view), ``recommend`` (article ranking), ``bandit`` (the variant policy's choice;
personalized arm only), ``record`` (queueing the decision record and the message event for
the recorder).

The recorder writes them later, from its own thread, outside the request's trace; so the
message event gets the request's ``traceparent`` in its metadata when it is queued, and the
stream worker's span that applies it links back to the request.
"""

from __future__ import annotations

from typing import Any

from tailorbot.services.decisions.service import DecisionService

STAGES = (
    ("user read", "", "read_user_ahead"),
    ("intent", "models.intent", "predict_one"),
    ("features", "", "_read_user"),
    ("recommend", "", "_articles"),
    ("bandit", "models.policy", "choose_for"),
    ("record", "", "_record"),
)


def trace_decisions(service: DecisionService, tracing: Any) -> None:
    """Run each stage of ``service``'s decisions in a span named after it."""
    for span_name, path, method in STAGES:
        if method == "read_user_ahead" and service.stores.async_user_reader is None:
            continue  # the embedded store: its read is in ``features``, nothing is read ahead
        target: Any = service
        for part in filter(None, path.split(".")):
            target = getattr(target, part)
        tracing.wrap(target, method, span_name, {"tailorbot.stage": span_name})
    recorder = service.recorder
    queue = recorder.record

    def record(decision: dict[str, Any], message_event: Any) -> None:
        # before the door checks its metadata's bounds, as a client's traceparent is
        if isinstance(message_event, dict):
            tracing.stamp_dicts([message_event])
        else:  # built from checked values (checked_message)
            tracing.stamp_events([message_event])
        queue(decision, message_event)

    recorder.record = record  # type: ignore[method-assign, assignment]
