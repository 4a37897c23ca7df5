"""Assemble the gateway: routing table, auth, limits, errors, OpenAPI (no I/O here)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common.config import SERVICES, BusSettings, GatewaySettings, LogSettings, RuntimeSettings
from libs.common.contracts import connections, identity
from libs.common.contracts.base import Context, PingRequest, ping_operation
from libs.common.contracts.documents import asyncapi
from libs.common.errors import NotFound, TetherError
from libs.common.metrics import METRICS, Metrics
from libs.common.runtime import BUS, bus_context, subscribe_events, tether_version
from services.gateway.auth import Authenticator, TokenCache
from services.gateway.dispatch import make_handler
from services.gateway.kept_replies import KeptReplies, connection_object
from services.gateway.keys import AUTHENTICATOR, OBSERVE_HTTP, REQUEST_ID, SETTINGS
from services.gateway.known_customers import KnownCustomers
from services.gateway.metrics import GATEWAY_METRICS, GatewayMetrics, metrics_listener
from services.gateway.middleware import (
    CONSOLE_HEADERS,
    drop_server_header,
    request_middleware,
    server_logger,
)
from services.gateway.openapi import build_openapi
from services.gateway.routes import ROUTES, Route
from services.gateway.system_status import system_status, with_system_status
from services.gateway.token_keys import VerificationKeyCache

OPENAPI = web.AppKey("openapi", dict)
ASYNCAPI = web.AppKey("asyncapi", dict)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway process reads."""

    http: GatewaySettings = field(default_factory=GatewaySettings)
    bus: BusSettings = field(default_factory=lambda: BusSettings())
    log: LogSettings = field(default_factory=LogSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)


async def healthz(_: web.Request) -> web.Response:
    """Answer that the gateway process is alive."""
    return web.json_response({"status": "ok"})


async def openapi(request: web.Request) -> web.Response:
    """Serve the OpenAPI document."""
    return web.json_response(request.app[OPENAPI])


async def asyncapi_document(request: web.Request) -> web.Response:
    """Serve the AsyncAPI 3.0 document of the NATS subjects between services."""
    return web.json_response(request.app[ASYNCAPI])


async def system_ping(request: web.Request) -> web.Response:
    """Ping every service through NATS and report who answered (gateway → each service)."""
    ctx = Context(request_id=request[REQUEST_ID])
    bus = request.app[BUS]

    async def one(name: str) -> dict[str, Any]:
        try:
            reply = await bus.call(ping_operation(name), PingRequest(ctx=ctx), timeout=5)
        except TetherError as exc:
            return {"ok": False, "error": exc.to_wire()["error"]}
        return {"ok": True, **reply.model_dump(mode="json")}

    results = await asyncio.gather(*(one(name) for name in SERVICES))
    body = dict(zip(SERVICES, results, strict=True))
    healthy = all(r["ok"] for r in results)
    return web.json_response({"ok": healthy, "services": body}, status=200 if healthy else 503)


async def service_ping(request: web.Request) -> web.Response:
    """Ping one service: the shortest path gateway → NATS → service → back."""
    name = request.match_info["service"]
    if name not in SERVICES:
        raise NotFound(f"no service named {name}", code="route_not_found")
    ctx = Context(request_id=request[REQUEST_ID])
    reply = await request.app[BUS].call_raw(ping_operation(name), PingRequest(ctx=ctx), timeout=5)
    return web.Response(body=reply, content_type="application/json")


CONSOLE_DIR = Path(__file__).parent / "console"


async def console_index(_: web.Request) -> web.StreamResponse:
    """Serve the console's page (a static client of the public API)."""
    return web.FileResponse(
        CONSOLE_DIR / "index.html", headers={**CONSOLE_HEADERS, "Cache-Control": "no-cache"}
    )


async def console_redirect(_: web.Request) -> web.Response:
    """Send /console to /console/."""
    raise web.HTTPFound("/console/")


SDK_DIR = Path(__file__).resolve().parents[2] / "sdk" / "js"
SDK_FILES = {
    "tether.js": "text/javascript; charset=utf-8",
    "tether.d.ts": "application/typescript; charset=utf-8",
}
SDK_HEADERS = {
    "Cache-Control": "public, max-age=300",  # short: a new gateway's SDK reaches pages soon
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",  # imported by the workspace's own pages
}


async def sdk_file(request: web.Request) -> web.StreamResponse:
    """Serve the browser SDK (``sdk/js``) with an ETag; CORS comes from the middleware."""
    name = request.match_info["name"]
    content_type = SDK_FILES.get(name)
    if content_type is None:
        raise NotFound("no such route", code="route_not_found")
    headers = {**SDK_HEADERS, "Content-Type": content_type}
    return web.FileResponse(SDK_DIR / name, headers=headers)


async def auth_context(app: web.Application) -> AsyncIterator[None]:
    """Create the authenticator (tokens, keys, known customers, kept replies) once the bus is up.

    Every replica hears the events that make what it keeps stale and drops it.
    """
    settings = app[SETTINGS]
    auth = Authenticator(
        app[BUS],
        TokenCache(settings.token_cache_size, settings.token_cache_ttl),
        VerificationKeyCache(
            app[BUS], settings.verification_keys_cache_size, settings.verification_keys_ttl
        ),
        KnownCustomers(settings.known_customers_cache_size, settings.known_customers_ttl),
        KeptReplies(settings.kept_replies_cache_size, settings.kept_replies_ttl),
        observe=app[GATEWAY_METRICS].token_verified,
    )
    app[AUTHENTICATOR] = auth

    def connection_changed(event: connections.ConnectionEvent) -> None:
        auth.kept.drop(event.workspace_id, connection_object(event.connection_id))

    subs = [
        await subscribe_events(
            app[BUS], identity.WORKSPACE_UPDATED, lambda e: auth.drop_workspace(e.workspace_id)
        ),
        await subscribe_events(
            app[BUS],
            identity.CUSTOMER_ARCHIVED,
            lambda e: auth.drop_customer(e.workspace_id, e.customer_id),
        ),
        *[
            await subscribe_events(
                app[BUS], event, lambda e: auth.customer_changed(e.workspace_id, e.customer_id)
            )
            for event in (identity.CUSTOMER_UPDATED, identity.CUSTOMER_RESTORED)
        ],
        *[
            await subscribe_events(app[BUS], kind, connection_changed)
            for kind in connections.EVENTS
        ],
    ]
    yield
    for sub in subs:
        await sub.unsubscribe()


MAX_HEADER_FIELD = 64 * 1024
"""Longest header field the HTTP parser takes (aiohttp's default is 8 KiB).

Well above the longest token identity verifies, so that an oversized token reaches the
middleware and gets a JSON 401 instead of aiohttp's plain-text 400, which quotes it.
"""


def create_app(config: GatewayConfig, routes: tuple[Route, ...] = ROUTES) -> web.Application:
    """Build the gateway application serving ``routes``."""
    app = web.Application(
        middlewares=[request_middleware],
        client_max_size=config.http.max_body_bytes,
        handler_args={"max_field_size": MAX_HEADER_FIELD, "logger": server_logger()},
    )
    app.on_response_prepare.append(drop_server_header)
    app[SETTINGS] = config.http
    app[OPENAPI] = with_system_status(build_openapi(routes))
    app[ASYNCAPI] = asyncapi(tether_version())
    app[METRICS] = Metrics(tether_version())
    app[GATEWAY_METRICS] = GatewayMetrics(app[METRICS])
    app[OBSERVE_HTTP] = app[GATEWAY_METRICS].observe_http
    app.cleanup_ctx.append(bus_context(config.bus, "gateway", events=False))
    app.cleanup_ctx.append(auth_context)
    if config.http.metrics_port is not None:  # /metrics never on the public port
        listener = metrics_listener(config.runtime.health_host, config.http.metrics_port)
        app.cleanup_ctx.append(listener)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/asyncapi.json", asyncapi_document)
    app.router.add_get("/system/ping", system_ping)
    app.router.add_get("/system/status", system_status)
    app.router.add_get("/system/ping/{service}", service_ping)
    app.router.add_get("/console", console_redirect)
    app.router.add_get("/console/", console_index)
    app.router.add_get("/sdk/{name}", sdk_file)
    if CONSOLE_DIR.is_dir():
        app.router.add_static(
            "/console/static/", CONSOLE_DIR, show_index=False, follow_symlinks=False
        )
    for route in routes:
        app.router.add_route(route.method, route.path, make_handler(route))
    return app
