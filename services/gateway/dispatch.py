"""Turn an HTTP request into a contract request, call the service, answer its reply."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import orjson
from aiohttp import web

from libs.common.bus import Bus
from libs.common.contracts.base import Context
from libs.common.errors import (
    BadRequest,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMedia,
)
from libs.common.runtime import BUS
from services.gateway import inputs
from services.gateway.kept_replies import connection_object, customer_object
from services.gateway.keys import AUTHENTICATOR, REQUEST_ID, SETTINGS
from services.gateway.metrics import GATEWAY_METRICS
from services.gateway.retry import idempotent
from services.gateway.routes import Route


async def read_body(request: web.Request) -> bytes:
    """Return the request's body bytes; one aiohttp cannot decode is the sender's fault (400)."""
    try:
        return await request.read()
    except web.RequestPayloadError as exc:  # a broken Content-Encoding or chunked framing
        raise BadRequest("the body could not be read", code="malformed_body") from exc


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """Return the request's JSON object body ({} when empty), refusing anything else."""
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    raw = await read_body(request)
    if not raw.strip():
        return {}
    if request.content_type != "application/json":
        raise UnsupportedMedia("send the body as JSON (Content-Type: application/json)")
    body = inputs.parse_json(raw)
    if not isinstance(body, dict):
        raise InvalidInput(
            "the body must be a JSON object",
            details=[{"field": "(body)", "message": "must be an object", "type": "dict_type"}],
        )
    return body


def _query(request: web.Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        out[key] = values if len(values) > 1 else values[0]
    return out


PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
}
# Never forwarded to an app: our own credentials and what only the first hop may use.
PRIVATE_HEADERS = frozenset(
    {
        "authorization",
        "cookie",
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "x-request-id",
        "origin",
        "referer",
    }
)


def wire_context(ctx: Context) -> dict[str, Any]:
    """Return the caller's context as the contracts spell it on the wire."""
    return {
        "workspaceId": str(ctx.workspace_id) if ctx.workspace_id else None,
        "principal": ctx.principal,
        "customerId": ctx.customer_id,
        "requestId": ctx.request_id,
    }


async def _caller(request: web.Request, route: Route) -> Context:
    """Return the caller's context, refusing a caller the route does not admit."""
    return await request.app[AUTHENTICATOR].context(request, route.auth.value, request[REQUEST_ID])


async def _forward(
    request: web.Request, route: Route, fields: dict[str, Any], ctx: Context | None = None
) -> bytes:
    """Add the caller's context to ``fields`` and send them to the route's service as JSON.

    The gateway checks only the input's shape (``inputs.check``: depth, sizes, numbers in
    range) and passes it on; the service validates it against the contract, once, and a
    bad field comes back as the same 422 naming it. Returns the reply's JSON bytes.
    """
    return (await _forward_kept(request, route, fields, ctx))[0]


async def _forward_kept(
    request: web.Request, route: Route, fields: dict[str, Any], ctx: Context | None = None
) -> tuple[bytes, float | None]:
    """Like :func:`_forward`; also return the seconds the service lets the reply be kept."""
    if ctx is None:
        ctx = await _caller(request, route)
    if "ctx" in fields:
        raise InvalidInput("ctx is not a field you can set", details=[{"field": "ctx"}])
    model_fields = route.op.request.model_fields
    if_match = request.headers.get("If-Match")
    if if_match and "revision" in model_fields and "revision" not in fields:
        fields["revision"] = if_match.removeprefix("W/").strip('"')  # optimistic locking by header
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None and "idempotency_key" in model_fields:
        fields.setdefault("idempotencyKey", idempotency_key)  # the same run for the same key
    fields = {**fields, **request.match_info}
    inputs.check(fields)
    fields["ctx"] = wire_context(ctx)
    data = orjson.dumps(fields)
    bus: Bus = request.app[BUS]

    def send() -> Awaitable[tuple[bytes, float | None]]:
        return bus.forward_kept(route.op, data, request_id=ctx.request_id)

    # Reads are safe to repeat when a replica or NATS node died under them; writes are not.
    return await (idempotent(send) if route.method == "GET" else send())


async def _call(request: web.Request, route: Route, fields: dict[str, Any]) -> Any:
    """Like :func:`_forward`, and return the reply validated against its contract."""
    return request.app[BUS].parse_reply(route.op, await _forward(request, route, fields))


def _page_handler(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Serve a browser page: query (GET) or form (POST) in, HTML or a redirect out."""
    known = {f.alias or name for name, f in route.op.request.model_fields.items()}

    async def handle(request: web.Request) -> web.Response:
        # Providers add their own parameters (iss, authuser, …): keep only ours.
        fields: dict[str, Any] = {k: v for k, v in _query(request).items() if k in known}
        if request.method == "POST":
            try:
                form = await request.post()
            except web.HTTPException:
                raise  # aiohttp's own answer (a body over the limit): the middleware maps it
            except Exception as exc:  # aiohttp raises assorted errors on a broken form
                raise BadRequest("the form could not be read", code="malformed_form") from exc
            fields["form"] = {k: v for k, v in form.items() if isinstance(v, str)}
        reply = await _call(request, route, fields)
        headers = dict(PAGE_HEADERS)
        if reply.location:
            headers["Location"] = reply.location
        return web.Response(
            status=reply.status,
            text=reply.body,
            headers=headers,
            content_type=reply.content_type.split(";")[0],
        )

    return handle


def _proxy_handler(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Pass a request through to the app as a connection, and its answer back."""

    async def handle(request: web.Request) -> web.Response:
        body = await read_body(request)
        fields = {
            "method": request.method,
            "query": list(request.query.items()),
            "headers": {
                str(k): v for k, v in request.headers.items() if k.lower() not in PRIVATE_HEADERS
            },
            "body": base64.b64encode(body).decode() if body else None,
        }
        reply = await _call(request, route, fields)
        return web.Response(
            status=reply.status, body=base64.b64decode(reply.body), headers=reply.headers
        )

    return handle


def _webhook_handler(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Hand an app's delivery over as raw bytes (signatures cover the exact body)."""

    async def handle(request: web.Request) -> web.Response:
        body = await read_body(request)
        fields = {
            "body": base64.b64encode(body).decode(),
            "headers": {
                str(k): v for k, v in request.headers.items() if k.lower() not in PRIVATE_HEADERS
            },
        }
        body = await _forward(request, route, fields)  # the service's JSON, passed through
        return web.Response(body=body, status=route.status, content_type="application/json")

    return handle


def make_handler(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Return the aiohttp handler that serves ``route``."""
    if route.kind == "webhook":
        return _webhook_handler(route)
    if route.kind == "page":
        return _page_handler(route)
    if route.kind == "proxy":
        return _proxy_handler(route)

    if route.keep is not None:
        return _kept_handler(route)

    async def handle(request: web.Request) -> web.Response:
        fields = await read_json_object(request) if route.takes_body else _query(request)
        ctx = await _caller(request, route)
        body = await _forward(request, route, fields, ctx)
        if route.drops is not None and ctx.workspace_id is not None:
            _drop_kept(request, route, ctx.workspace_id)
        if route.status == 204:
            return web.Response(status=204)
        return web.Response(body=body, status=route.status, content_type="application/json")

    return handle


def _drop_kept(request: web.Request, route: Route, workspace_id: UUID) -> None:
    """Forget what this replica keeps of the customer, connection or workspace a call changed."""
    auth = request.app[AUTHENTICATOR]
    if route.drops == "workspace":
        auth.drop_workspace(workspace_id)
    elif route.drops == "customer":
        auth.customer_changed(workspace_id, request.match_info["id"])
    elif route.drops == "archived_customer":
        auth.drop_customer(workspace_id, request.match_info["id"])
    else:
        obj = _path_connection(request)
        if obj is not None:
            auth.kept.drop(workspace_id, obj)


def _path_connection(request: web.Request) -> str | None:
    """Return the kept-reply object of the ``{id}`` connection, spelled as its events spell it.

    None for an id that is no UUID (the service refuses it; nothing is kept of it). An id
    in capitals or without hyphens names the same connection: one key for all spellings,
    or an event would drop one while another stayed.
    """
    try:
        return connection_object(UUID(request.match_info["id"]))
    except ValueError:
        return None


def _kept_handler(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Answer a read about one object from the reply kept of it (``kept_replies.py``).

    A hot ``GET /customers/me`` or credentials read then costs no hop: the token is
    verified here (cached) and the reply is the one the service last gave this caller,
    for as long as the service said and no change dropped it. A request with a query
    goes to the service as it is (which refuses unknown fields).
    """

    async def handle(request: web.Request) -> web.Response:
        ctx = await _caller(request, route)
        workspace_id = ctx.workspace_id
        if route.keep == "customer":
            obj: str | None = customer_object(ctx.customer_id or "")
        else:
            obj = _path_connection(request)
        if request.query or workspace_id is None or obj is None:
            body = await _forward(request, route, _query(request), ctx)
            return web.Response(body=body, status=route.status, content_type="application/json")
        kept = request.app[AUTHENTICATOR].kept
        caller = (ctx.principal, ctx.customer_id)
        body_kept = kept.get(workspace_id, obj, caller)
        request.app[GATEWAY_METRICS].kept_reply(route.path, body_kept is not None)
        if body_kept is not None:
            return web.Response(
                body=body_kept, status=route.status, content_type="application/json"
            )
        since = kept.generation
        body, seconds = await _forward_kept(request, route, {}, ctx)
        if seconds:
            secret = route.keep == "connection"  # credentials: kept sealed
            kept.keep(workspace_id, obj, caller, body, seconds, since=since, secret=secret)
        return web.Response(body=body, status=route.status, content_type="application/json")

    return handle
