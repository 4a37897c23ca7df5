"""Traces that follow a request across the gateway, the bus, events, jobs and outbound HTTP.

OpenTelemetry is switched on per process by the standard variable
``OTEL_EXPORTER_OTLP_ENDPOINT`` (spans exported with OTLP over HTTP, batched;
``OTEL_SERVICE_NAME`` names the process, ``tether-<service>`` by default). Without it,
nothing here calls OpenTelemetry at all: :func:`enabled` is one ``isinstance`` check,
and the hot paths pay for no span.

What carries a trace from one place to the next:

* HTTP in: the gateway continues an incoming W3C ``traceparent`` or starts a trace.
* NATS request/reply: the caller's context travels in the ``traceparent`` header; the
  service handler's span is its child.
* Events: :func:`current_traceparent` is stored with the outbox row, published as the
  message's ``traceparent`` header, and the consumer's span is its child, so what an
  event causes belongs to the request that caused the event.
* Jobs (flow runs, syncs, deliveries): the job row keeps the context of whoever queued it.
* SQL (:func:`query_logger`, asyncpg's query loggers) and outbound HTTP
  (:func:`client_trace_config`, aiohttp's client tracing, which also sends
  ``traceparent`` to the app) become child spans of whatever is current.

Request ids are trace ids: a request without ``X-Request-Id`` gets the trace id of its
trace as its id (32 hex digits), which every log line and error reply carries.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from types import SimpleNamespace
from typing import Any

import aiohttp
import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_TRACE_ID = re.compile(r"^(?!0{32})[0-9a-f]{32}$")
_PROPAGATOR = TraceContextTextMapPropagator()
TRACER_NAME = "tether"


def configure_tracing(service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install the OTLP exporter for this process when the environment asks for it.

    Returns whether tracing is on. Called once by each process's entry point (never by
    tests that build services in-process: they share one process and its global provider).
    """
    env = os.environ if environ is None else environ
    if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    name = env.get("OTEL_SERVICE_NAME") or f"tether-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    enabled.cache_clear()
    return True


@functools.cache
def enabled() -> bool:
    """Return whether this process records spans (an SDK provider is installed).

    Asked several times per request: remembered (OpenTelemetry's own lookup reads the
    environment each time); :func:`configure_tracing` forgets the answer it changes.
    """
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def tracer() -> trace.Tracer:
    """Return Tether's tracer."""
    return trace.get_tracer(TRACER_NAME)


def new_trace_id() -> str:
    """Return a fresh id shaped like a trace id (32 lowercase hex digits, never all zero)."""
    return os.urandom(16).hex()


def trace_id_of(traceparent: str | None) -> str | None:
    """Return the trace id of a well-formed W3C ``traceparent`` header value, else None."""
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip())
    if match is None or match.group(1) == "0" * 32 or match.group(2) == "0" * 16:
        return None
    return match.group(1)


def current_trace_id() -> str | None:
    """Return the current span's trace id (hex), if a span is recording here."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def current_traceparent() -> str | None:
    """Return the ``traceparent`` of the current span, to store with work it causes.

    With tracing off, a request's id that is shaped like a trace id (the gateway makes
    them so) still travels in an unsampled ``traceparent``: the log lines of the event
    handlers and jobs the request caused carry the request's id.
    """
    if enabled():
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier.get(TRACEPARENT)
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if isinstance(request_id, str) and _TRACE_ID.match(request_id):
        return f"00-{request_id}-{os.urandom(8).hex()}-00"
    return None


def inject(headers: dict[str, str]) -> None:
    """Add the current span's ``traceparent`` to outgoing ``headers`` (when tracing)."""
    if enabled():
        _PROPAGATOR.inject(headers)


@contextmanager
def span(
    name: str,
    *,
    parent: str | Mapping[str, str] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """Run the block in a span, child of ``parent`` (a traceparent or headers) or the current.

    Yields None and does nothing when tracing is off. An exception marks the span as an
    error and propagates.
    """
    if not enabled():
        yield None
        return
    ctx = None
    if parent is not None:
        carrier = {TRACEPARENT: parent} if isinstance(parent, str) else parent
        ctx = _PROPAGATOR.extract(carrier)
    with tracer().start_as_current_span(
        name, context=ctx, kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current


@contextmanager
def continued(
    name: str,
    traceparent: str | None,
    *,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """Run background work (an event handler, a job) in the trace of what caused it.

    Its log lines carry the causing request's id; with tracing on, it is a span whose
    parent is ``traceparent``.
    """
    request_id = trace_id_of(traceparent)
    with (
        structlog.contextvars.bound_contextvars(request_id=request_id)
        if request_id
        else nullcontext(),
        span(
            name, parent=traceparent if request_id else None, kind=kind, attributes=attributes
        ) as current,
    ):
        yield current


def set_status(current: Span | None, status: int) -> None:
    """Record an HTTP-like status on a span (5xx marks it as an error)."""
    if current is None:
        return
    current.set_attribute("http.response.status_code", status)
    if status >= 500:
        current.set_status(Status(StatusCode.ERROR))


def query_logger(record: Any) -> None:
    """An asyncpg query logger: each statement becomes a finished child span of the current.

    asyncpg calls it after the statement with its elapsed time; the span is back-dated.
    Only the statement text is recorded (its parameters never: they may be secrets).
    """
    if not enabled() or not trace.get_current_span().get_span_context().is_valid:
        return
    end = time.time_ns()
    start = end - int(record.elapsed * 1e9)
    query: str = record.query
    verb = query.lstrip().split(None, 1)[0].upper() if query.strip() else "SQL"
    current = tracer().start_span(
        f"SQL {verb}",
        kind=SpanKind.CLIENT,
        start_time=start,
        attributes={"db.system": "postgresql", "db.statement": query[:2000]},
    )
    if record.exception is not None:
        current.set_status(Status(StatusCode.ERROR, type(record.exception).__name__))
    current.end(end_time=end)


async def _on_request_start(
    _: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams
) -> None:
    if not enabled():
        ctx.span = None
        return
    url = params.url
    current = tracer().start_span(
        f"HTTP {params.method}",
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": params.method,
            "server.address": url.host or "",
            "url.path": url.path,  # never the query: it may carry keys
        },
    )
    ctx.span = current
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(current))
    params.headers.update(carrier)


async def _on_request_end(
    _: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
) -> None:
    current: Span | None = getattr(ctx, "span", None)
    if current is not None:
        set_status(current, params.response.status)
        current.end()


async def _on_request_exception(
    _: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams
) -> None:
    current: Span | None = getattr(ctx, "span", None)
    if current is not None:
        current.set_status(Status(StatusCode.ERROR, type(params.exception).__name__))
        current.end()


def client_trace_config() -> aiohttp.TraceConfig:
    """Return an aiohttp client tracing config: a span per outbound request, with context."""
    config = aiohttp.TraceConfig()
    config.on_request_start.append(_on_request_start)
    config.on_request_end.append(_on_request_end)
    config.on_request_exception.append(_on_request_exception)
    return config
