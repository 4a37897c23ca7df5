"""Request ids and traces, CORS, one log line per request, domain errors as JSON HTTP answers, and
what the HTTP server itself says (no ``Server`` header, no quoted request in its logs)."""

from __future__ import annotations

import logging
import re
import time

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from opentelemetry.trace import SpanKind

from libs.common import tracing
from libs.common.errors import (
    BadRequest,
    Internal,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    TetherError,
)
from libs.common.logging import bind_request
from services.gateway.keys import OBSERVE_HTTP, REQUEST_ID, SETTINGS

log = structlog.get_logger(__name__)

CONSOLE_STATIC = "/console/static/"
CONSOLE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-Match, X-Request-Id"


def error_response(exc: TetherError, request_id: str) -> web.Response:
    """Render a domain error in its wire form with its HTTP status and the request's id."""
    body = exc.to_wire()
    body["error"]["requestId"] = request_id
    resp = web.json_response(body, status=exc.status)
    resp.headers["X-Request-Id"] = request_id
    return resp


def _from_http(exc: web.HTTPException) -> TetherError:
    """Translate aiohttp's own HTTP errors (unknown route, wrong method, body too big)."""
    if exc.status == 404:
        return NotFound("no such route", code="route_not_found")
    if exc.status == 405:
        return MethodNotAllowed(f"{exc.reason}: this route does not take that method")
    if exc.status == 413:
        return PayloadTooLarge("the request body is too large")
    return BadRequest(exc.reason or "bad request")


def request_id_for(request: web.Request) -> str:
    """Return the request's id: the caller's ``X-Request-Id``, else its trace id.

    A caller's well-formed ``X-Request-Id`` is kept (and echoed); otherwise the id is the
    trace id of the caller's W3C ``traceparent`` or a fresh one, which the gateway's span
    then carries: log lines, error replies and traces share one id.
    """
    incoming = request.headers.get("X-Request-Id", "")
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    return tracing.trace_id_of(request.headers.get(tracing.TRACEPARENT)) or tracing.new_trace_id()


def route_name(request: web.Request) -> str:
    """Return the route template that matched (``/flow-runs/{id}``), never the raw path."""
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Assign the request id, trace, apply CORS, map errors, log one line per request."""
    if not tracing.enabled():
        return await _serve(request, handler, request_id_for(request))
    parent = request.headers.get(tracing.TRACEPARENT)
    route = route_name(request)
    with tracing.span(
        f"{request.method} {route}",
        parent=parent if tracing.trace_id_of(parent) else None,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": route},
    ) as current:
        incoming = request.headers.get("X-Request-Id", "")
        request_id = (
            incoming if incoming and _REQUEST_ID.match(incoming) else tracing.current_trace_id()
        )
        resp = await _serve(request, handler, request_id or tracing.new_trace_id())
        tracing.set_status(current, resp.status)
        return resp


async def _serve(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    started = time.perf_counter()
    request[REQUEST_ID] = request_id
    # aiohttp serves a keep-alive connection's requests in one task: start each afresh.
    structlog.contextvars.clear_contextvars()
    bind_request(service="gateway", request_id=request_id)
    origin = request.headers.get("Origin")
    cors = _cors_origin(request, origin) if origin else None
    if (
        request.method == "OPTIONS"
        and origin
        and request.headers.get("Access-Control-Request-Method")
    ):
        resp: web.StreamResponse = web.Response(status=204)
    else:
        try:
            resp = await handler(request)
        except TetherError as exc:
            resp = error_response(exc, request_id)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = error_response(_from_http(exc), request_id)
        except Exception:
            log.exception("request_crashed", method=request.method, path=request.path)
            resp = error_response(Internal("internal error"), request_id)
    headers = resp.headers
    headers["X-Request-Id"] = request_id
    if cors:
        headers["Access-Control-Allow-Origin"] = cors
        headers["Vary"] = "Origin"
        headers["Access-Control-Expose-Headers"] = "X-Request-Id"
        if request.method == "OPTIONS":
            headers["Access-Control-Allow-Methods"] = CORS_METHODS
            headers["Access-Control-Allow-Headers"] = CORS_HEADERS
            headers["Access-Control-Max-Age"] = "600"
    if request.path.startswith(CONSOLE_STATIC):
        headers.update(CONSOLE_HEADERS)
    seconds = time.perf_counter() - started
    observe = request.app.get(OBSERVE_HTTP)
    if observe is not None:
        observe(route_name(request), request.method, resp.status, seconds)
    log.info(
        "http_request",
        method=request.method,
        path=request.path,
        status=resp.status,
        duration_ms=round(seconds * 1000, 2),
    )
    return resp


def _cors_origin(request: web.Request, origin: str) -> str | None:
    allowed = request.app[SETTINGS].cors_origins
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


async def drop_server_header(_: web.Request, response: web.StreamResponse) -> None:
    """Say nothing about our software: aiohttp's ``Server`` names Python's and its version."""
    response.headers.popall("Server", None)


class _NoEcho(logging.Filter):
    """Keep the kind of a request aiohttp's parser refused, drop its text.

    aiohttp answers such a request (a header field over the limit, garbage on the port)
    before any middleware runs, and logs the exception, whose message quotes the start of
    the offending bytes: the start of a token, say. Only the status and kind are kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = "bad_http_request status=%s kind=%s"
            record.args = (exc.code, type(exc).__name__)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def server_logger() -> logging.Logger:
    """Return the logger for aiohttp's protocol handler (``handler_args``): it never quotes a request.

    Idempotent: the filter is added once however many gateways a process builds.
    """
    logger = logging.getLogger("tether.gateway.http")
    if not any(isinstance(f, _NoEcho) for f in logger.filters):
        logger.addFilter(_NoEcho())
    return logger
