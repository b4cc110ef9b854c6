"""OpenTelemetry tracing with an in-memory exporter: the trace of one personalize request
with its stage spans, and of one event from ingestion to the feature write (run with -s to
see them printed)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytest.importorskip("opentelemetry.sdk", reason="the tracing extra (installed by dev)")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from tailorbot.api.app import create_app  # noqa: E402
from tailorbot.api.middleware import TracingMiddleware  # noqa: E402
from tailorbot.events.codec import now_iso  # noqa: E402
from tailorbot.telemetry.tracing import Tracing, TracingUnavailable  # noqa: E402
from tests.helpers import REDIS_URL, redis_namespace, wait_until  # noqa: E402
from tests.services.decisions.conftest import save_model, settings_for  # noqa: E402

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    save_model(tmp_path)
    exporter = InMemorySpanExporter()
    tracing = Tracing.to(exporter)
    app = create_app(settings_for(tmp_path), tracing=tracing)
    with TestClient(app) as client:
        yield client, exporter
    tracing.shutdown()


def tree(spans: Any, root: Any) -> str:
    """The spans under ``root`` as an indented outline with durations and links."""
    children: dict[int, list[Any]] = {}
    for span in spans:
        if span.parent is not None:
            children.setdefault(span.parent.span_id, []).append(span)
    lines = []

    def walk(span: Any, depth: int) -> None:
        ms = (span.end_time - span.start_time) / 1e6
        links = "".join(
            f" → link to {link.context.trace_id:032x}/{link.context.span_id:016x}"
            for link in span.links
        )
        lines.append(f"{'  ' * depth}{span.name} ({ms:.2f} ms){links}")
        for child in sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time):
            walk(child, depth + 1)

    walk(root, 0)
    return "\n".join(lines)


def named(spans: Any, name: str) -> list[Any]:
    return [s for s in spans if s.name == name]


def linked_applies(exporter: InMemorySpanExporter, server: Any) -> list[Any]:
    """The worker's ``stream apply`` spans that link into the trace of request ``server``
    (to the span that logged the event: the request span, or its ``record`` stage)."""
    return [
        span
        for span in named(exporter.get_finished_spans(), "stream apply")
        if any(link.context.trace_id == server.context.trace_id for link in span.links)
    ]


def wait_for_link(exporter: InMemorySpanExporter, server: Any) -> Any:
    wait_until(lambda: bool(linked_applies(exporter, server)), "a worker span linked to it")
    (apply,) = linked_applies(exporter, server)
    return apply


def test_a_personalize_request_is_one_trace_with_a_span_per_stage(traced: Any) -> None:
    client, exporter = traced
    response = client.post(
        "/v1/personalize",
        json={"user_id": "u_secret", "session_id": "s1", "message": "my card has not arrived"},
        headers={"traceparent": TRACEPARENT},
    )
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    (server,) = named(spans, "POST /v1/personalize")
    print("\n" + tree(spans, server))
    assert f"{server.context.trace_id:032x}" == TRACE  # continues the caller's trace
    assert f"{server.parent.span_id:016x}" == PARENT
    attributes = dict(server.attributes)
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.route"] == "/v1/personalize"
    assert attributes["http.response.status_code"] == 200
    by_name = {s.name: s for s in spans if s.context.trace_id == server.context.trace_id}
    for stage in ("intent", "features", "recommend", "bandit", "record"):
        assert by_name[stage].parent.span_id == server.context.span_id, stage
    # The recorder appends the message event later, from its thread; the event carries the
    # request's trace, so the worker's span that applies it links back to the request.
    apply = wait_for_link(exporter, server)
    spans = exporter.get_finished_spans()
    print(tree(spans, apply))
    assert named(spans, "feature write")[-1].parent.span_id == apply.context.span_id


def test_the_read_made_ahead_on_redis_is_a_stage_of_its_own(tmp_path: Path) -> None:
    save_model(tmp_path)
    exporter = InMemorySpanExporter()
    tracing = Tracing.to(exporter)
    with redis_namespace() as prefix:
        settings = settings_for(
            tmp_path,
            bandit_sync_s=1.0,  # a choice never reloads the statistics on the event loop
            decision_threads=0,
            run_worker_in_server=False,
            store_url=f"{REDIS_URL}?prefix={prefix}",
        )
        app = create_app(settings, tracing=tracing)
        with TestClient(app) as client:
            stores = app.state.runtime.stores
            read = stores.async_user_reader

            async def slow_read(user_id: str) -> Any:
                await asyncio.sleep(0.2)
                return await read(user_id)

            # Stores is frozen for the application; the test slows its reader down.
            object.__setattr__(stores, "async_user_reader", slow_read)
            try:
                response = client.post(
                    "/v1/personalize",
                    json={
                        "user_id": "u1",
                        "session_id": "s1",
                        "message": "my card has not arrived",
                    },
                )
            finally:
                object.__setattr__(stores, "async_user_reader", read)
    tracing.shutdown()
    assert response.status_code == 200, response.text
    spans = exporter.get_finished_spans()
    (server,) = named(spans, "POST /v1/personalize")
    print("\n" + tree(spans, server))
    (span,) = named(spans, "user read")
    assert span.parent.span_id == server.context.span_id
    assert span.end_time - span.start_time >= 200_000_000  # open until the read was awaited
    assert span.end_time <= named(spans, "intent")[0].start_time  # before the decision


def test_on_the_embedded_store_nothing_is_read_ahead(tmp_path: Path) -> None:
    save_model(tmp_path)
    exporter = InMemorySpanExporter()
    tracing = Tracing.to(exporter)
    app = create_app(settings_for(tmp_path, decision_threads=0), tracing=tracing)
    with TestClient(app) as client:
        response = client.post(
            "/v1/personalize",
            json={"user_id": "u1", "session_id": "s1", "message": "my card has not arrived"},
        )
    tracing.shutdown()
    assert response.status_code == 200, response.text
    names = {span.name for span in exporter.get_finished_spans()}
    assert "features" in names and "user read" not in names  # the read is in ``features``


def test_an_event_is_traced_from_ingestion_to_the_feature_write(traced: Any) -> None:
    client, exporter = traced
    event = {
        "type": "session_started",
        "user_id": "u_secret",
        "session_id": "s9",
        "timestamp": now_iso(),
    }
    assert client.post("/v1/events", json=event).status_code == 202
    (server,) = named(exporter.get_finished_spans(), "POST /v1/events")
    apply = wait_for_link(exporter, server)
    spans = exporter.get_finished_spans()
    print("\n" + tree(spans, server) + "\n" + tree(spans, apply))
    (append,) = [s for s in named(spans, "log append") if s.parent == server.context]
    (write,) = [s for s in named(spans, "feature write") if s.parent == apply.context]
    assert append.end_time <= apply.start_time <= write.start_time
    assert dict(apply.attributes)["messaging.batch.message_count"] >= 1


def test_a_feedback_is_traced_to_the_worker_that_applies_its_events(traced: Any) -> None:
    """Its batch is applied on the feedback thread, outside the request's trace; its events
    carry the request's trace from when they were checked, in the request's context."""
    client, exporter = traced
    message = {"user_id": "u_fb", "session_id": "s1", "message": "my card has not arrived"}
    decided = client.post("/v1/personalize", json=message).json()
    feedback = {"decision_id": decided["decision_id"], "rating": 5}
    response = client.post("/v1/feedback", json=feedback, headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200 and response.json()["applied"] is True
    (server,) = named(exporter.get_finished_spans(), "POST /v1/feedback")
    assert f"{server.context.trace_id:032x}" == TRACE
    apply = wait_for_link(exporter, server)
    print("\n" + tree(exporter.get_finished_spans(), apply))


def test_no_user_id_reaches_a_span(traced: Any) -> None:
    client, exporter = traced
    client.get("/v1/users/u_secret/features")
    client.get("/v1/nowhere/u_secret")
    spans = exporter.get_finished_spans()
    assert {s.name for s in spans} >= {"GET /v1/users/{user_id}/features", "GET"}
    for span in spans:
        text = span.name + repr(dict(span.attributes or {}))
        assert "u_secret" not in text, span.name


def test_off_by_default_nothing_is_wrapped(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    save_model(tmp_path)
    app = create_app(settings_for(tmp_path))
    assert all(m.cls is not TracingMiddleware for m in app.user_middleware)
    with TestClient(app) as client:
        runtime = app.state.runtime
        decided = client.post(
            "/v1/personalize", json={"user_id": "u1", "session_id": "s", "message": "top up failed"}
        )
        assert decided.status_code == 200
        assert "append" not in vars(runtime.log)  # the class's method, unwrapped
        assert runtime.ingestion.stamp_trace is None
        assert "predict_one" not in vars(app.state.decider.models.intent)


def test_the_exporter_comes_from_the_standard_variable(capsys: Any) -> None:
    assert Tracing.from_env({}) is None
    assert Tracing.from_env({"OTEL_TRACES_EXPORTER": "none"}) is None
    with pytest.raises(TracingUnavailable, match="zipkin"):
        Tracing.from_env({"OTEL_TRACES_EXPORTER": "zipkin"})
    console = Tracing.from_env({"OTEL_TRACES_EXPORTER": "console"})
    assert console is not None
    with console.span("hello"):
        pass
    console.shutdown()
    assert '"name": "hello"' in capsys.readouterr().out
