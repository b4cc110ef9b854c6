"""OpenTelemetry tracing, off unless ``OTEL_TRACES_EXPORTER`` is set.

``OTEL_TRACES_EXPORTER=otlp`` (OTLP over HTTP; ``OTEL_EXPORTER_OTLP_ENDPOINT`` and the other
standard ``OTEL_*`` variables configure it) or ``console`` (spans printed to stdout), or both
(``otlp,console``). ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``
and ``OTEL_BSP_*`` work as everywhere. The ``opentelemetry-*`` packages are the optional
``tracing`` extra; they are imported only when tracing is on.

Off, tracing costs nothing: no middleware is installed and nothing is wrapped. On, the
composition root instruments the running objects (the way OpenTelemetry's instrumentors do):
a server span per request (``TracingMiddleware`` in the API), and child spans around each
stage of a decision, around the log append and the feature write, plus a ``stream apply``
span per worker batch that links to the spans of the requests that logged its events. The
link travels in the event itself: the ingestion stamps the W3C ``traceparent`` of the
current span into the event's ``metadata``.

>>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
>>> exporter = InMemorySpanExporter()
>>> tracing = Tracing.to(exporter)
>>> class Model:
...     def predict(self, x): return x * 2
>>> model = Model()
>>> tracing.wrap(model, "predict", "intent")
>>> with tracing.span("POST /v1/personalize"):
...     model.predict(21)
42
>>> [(s.name, s.parent is not None) for s in exporter.get_finished_spans()]
[('intent', True), ('POST /v1/personalize', False)]
>>> tracing.shutdown()
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tailorbot.telemetry import logs

EXPORTER_VARIABLE = "OTEL_TRACES_EXPORTER"
MAX_LINKS = 128  # links per stream batch span (one per event's request, at most)


class TracingUnavailable(RuntimeError):
    """Tracing was asked for but cannot start (the extra is missing, an unknown exporter)."""


def requested(environ: Mapping[str, str] | None = None) -> bool:
    value = (environ if environ is not None else os.environ).get(EXPORTER_VARIABLE, "")
    return value.strip().lower() not in ("", "none")


class Tracing:
    """A tracer and the helpers tailorbot instruments itself with."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import propagate, trace

        self.provider = provider
        self.tracer = provider.get_tracer("tailorbot")
        self._trace = trace
        self._propagator = propagate.get_global_textmap()
        logs.span_trace_id = self.current_trace_id

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tracing | None:
        """Tracing configured by the ``OTEL_*`` variables, or None when it is off."""
        env = environ if environ is not None else os.environ
        if not requested(env):
            return None
        names = [n.strip().lower() for n in env[EXPORTER_VARIABLE].split(",") if n.strip()]
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        except ImportError as exc:
            raise TracingUnavailable(
                f"{EXPORTER_VARIABLE} is set but OpenTelemetry is not installed: "
                "pip install 'tailorbot[tracing]'"
            ) from exc
        attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "tailorbot"}
        provider = TracerProvider(resource=Resource.create(attributes))
        for name in names:
            if name == "none":
                continue
            exporter = _exporter(name)
            batch = name != "console"  # the console shows each span as it ends
            provider.add_span_processor(
                BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
            )
        return cls(provider)

    @classmethod
    def to(cls, exporter: Any) -> Tracing:
        """Tracing into ``exporter``, each span exported as it ends (tests, benchmarks)."""
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return cls(provider)

    def shutdown(self) -> None:
        """Export what is buffered and stop."""
        logs.span_trace_id = _no_trace_id
        self.provider.shutdown()

    # --- spans ------------------------------------------------------------------------------
    def span(self, name: str, **kwargs: Any) -> Any:
        """A context manager: a span named ``name``, current while it is open."""
        return self.tracer.start_as_current_span(name, **kwargs)

    def wrap(
        self,
        obj: Any,
        method: str,
        span_name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        only_in_trace: bool = False,
    ) -> None:
        """Replace ``obj.method`` (on this instance only) by a version run in a span; with
        ``only_in_trace``, only when called inside a span (a background thread's calls, such
        as the decision recorder's batched appends, then make no root span each)."""
        original = getattr(obj, method)
        start = self.tracer.start_as_current_span
        current = self._trace.get_current_span
        attrs = dict(attributes or {})

        @functools.wraps(original)
        def traced(*args: Any, **kwargs: Any) -> Any:
            if only_in_trace and not current().get_span_context().is_valid:
                return original(*args, **kwargs)
            with start(span_name, attributes=attrs):
                return original(*args, **kwargs)

        @functools.wraps(original)
        async def traced_async(*args: Any, **kwargs: Any) -> Any:
            # A coroutine's span lasts until it is awaited to the end, not until it is made.
            if only_in_trace and not current().get_span_context().is_valid:
                return await original(*args, **kwargs)
            with start(span_name, attributes=attrs):
                return await original(*args, **kwargs)

        setattr(obj, method, traced_async if inspect.iscoroutinefunction(original) else traced)

    def current_trace_id(self) -> str | None:
        context = self._trace.get_current_span().get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None

    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` of the current span (None outside a span)."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return carrier.get("traceparent")

    def extract(self, headers: Mapping[str, str]) -> Any:
        """The remote parent context a request's headers carry (``traceparent``...)."""
        return self._propagator.extract(headers)

    # --- propagation through the log ------------------------------------------------------
    def stamp_dicts(self, events: Iterable[dict[str, Any]]) -> None:
        """:meth:`stamp_events` for events still as dicts (the decision's message event)."""
        traceparent = self.traceparent()
        if traceparent is None:
            return
        for event in events:
            event.setdefault("metadata", {}).setdefault("traceparent", traceparent)

    def stamp_events(self, events: Iterable[Any]) -> None:
        """Write the current ``traceparent`` into each event's metadata (kept if already
        there), so that the worker that applies the event can link to this trace."""
        traceparent = self.traceparent()
        if traceparent is None:
            return
        for event in events:
            event.metadata.setdefault("traceparent", traceparent)

    @contextlib.contextmanager
    def batch_span(self, events: Iterable[Mapping[str, Any]], count: int) -> Iterator[None]:
        """The ``stream apply`` span of one worker batch, linked to the requests that
        logged its events (at most ``MAX_LINKS`` distinct ones)."""
        from opentelemetry.trace import Link, SpanKind

        links: list[Any] = []
        seen: set[str] = set()
        for event in events:
            traceparent = (event.get("metadata") or {}).get("traceparent")
            if not traceparent or traceparent in seen or len(links) >= MAX_LINKS:
                continue
            seen.add(traceparent)
            context = self._trace.get_current_span(self.extract({"traceparent": traceparent}))
            links.append(Link(context.get_span_context()))
        attributes = {"messaging.batch.message_count": count, "messaging.operation.type": "process"}
        with self.tracer.start_as_current_span(
            "stream apply", kind=SpanKind.CONSUMER, links=links, attributes=attributes
        ):
            yield


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stdout)  # the stdout of now, not of import time
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise TracingUnavailable(
                "the OTLP exporter is not installed: pip install 'tailorbot[tracing]'"
            ) from exc
        return OTLPSpanExporter()
    raise TracingUnavailable(
        f"{EXPORTER_VARIABLE}={name!r} is not supported: use otlp, console or none"
    )


def _no_trace_id() -> str | None:
    return None
