"""Turn an HTTP request into a contract request, call the service, answer its reply."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from libs.common.bus import Bus
from libs.common.errors import (
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMedia,
    invalid_from_validation,
)
from libs.common.runtime import BUS
from services.gateway.keys import AUTHENTICATOR, REQUEST_ID, SETTINGS
from services.gateway.routes import Route


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """Return the request's JSON object body ({} when empty), refusing anything else."""
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    raw = await request.read()
    if not raw.strip():
        return {}
    if request.content_type != "application/json":
        raise UnsupportedMedia("send the body as JSON (Content-Type: application/json)")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", code="malformed_json")
    return body


def _query(request: web.Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        out[key] = values if len(values) > 1 else values[0]
    return out


def make_handler(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Return the aiohttp handler that serves ``route``."""
    need = route.auth.value

    async def handle(request: web.Request) -> web.Response:
        request_id = request[REQUEST_ID]
        ctx = await request.app[AUTHENTICATOR].context(request, need, request_id)
        fields: dict[str, Any] = (
            await read_json_object(request) if route.takes_body else _query(request)
        )
        if "ctx" in fields:
            raise InvalidInput("ctx is not a field you can set", details=[{"field": "ctx"}])
        fields.update(request.match_info)
        try:
            payload = route.op.request.model_validate({**fields, "ctx": ctx})
        except ValidationError as exc:
            raise invalid_from_validation(exc) from exc
        bus: Bus = request.app[BUS]
        reply = await bus.call(route.op, payload)
        if route.status == 204:
            return web.Response(status=204)
        return web.Response(
            text=reply.model_dump_json(), status=route.status, content_type="application/json"
        )

    return handle
