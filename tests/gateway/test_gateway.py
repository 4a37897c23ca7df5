"""The gateway: bad input, auth, isolation, request ids, CORS, OpenAPI, the path to every service."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from libs.common.config import SERVICES
from tests.conftest import Stack, WorkspaceFactory, WorkspaceHandle, bearer


async def test_gateway_healthz(stack: Stack, http: aiohttp.ClientSession) -> None:
    async with http.get(stack.gateway_url + "/healthz") as resp:
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"status": "ok"}


async def test_gateway_reaches_every_service(stack: Stack, http: aiohttp.ClientSession) -> None:
    async with http.get(stack.gateway_url + "/system/ping") as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["ok"] is True
    assert set(body["services"]) == set(SERVICES)
    for name, result in body["services"].items():
        assert result["ok"] is True
        assert result["service"] == name
        assert result["instance"]


async def test_gateway_unknown_route_is_json_404(stack: Stack, http: aiohttp.ClientSession) -> None:
    async with http.get(stack.gateway_url + "/no/such/thing") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "route_not_found"


async def test_gateway_wrong_method_is_json_405(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    async with http.delete(workspace.url("/workspace")) as resp:
        assert resp.status == 405
        assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_gateway_missing_and_garbled_tokens(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    async with http.get(workspace.url("/workspace")) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "token_missing"
    for header in ("Basic abc", "Bearer ", "Bearer not-a-jwt"):
        async with http.get(workspace.url("/workspace"), headers={"Authorization": header}) as resp:
            assert resp.status == 401, header
            assert (await resp.json())["error"]["code"] == "token_malformed", header


async def test_gateway_customer_token_cannot_use_admin_route(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    token = await workspace.customer_token("c-1")
    async with http.get(workspace.url("/workspace"), headers=bearer(token)) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "admin_required"


async def test_gateway_admin_sees_only_own_workspace(
    make_workspace: WorkspaceFactory, http: aiohttp.ClientSession
) -> None:
    a, b = await make_workspace(), await make_workspace()
    for ws in (a, b):
        async with http.get(ws.url("/workspace"), headers=bearer(await ws.admin_token())) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        assert body["id"] == ws.id
        assert body["key"] == ws.key
        assert ws.secret not in str(body)


async def test_gateway_request_id_is_kept_or_made(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    async with http.get(workspace.url("/healthz"), headers={"X-Request-Id": "abc-123"}) as resp:
        assert resp.headers["X-Request-Id"] == "abc-123"
    async with http.get(
        workspace.url("/healthz"), headers={"X-Request-Id": "bad id with spaces"}
    ) as resp:
        assert resp.headers["X-Request-Id"] != "bad id with spaces"
        assert len(resp.headers["X-Request-Id"]) == 32


async def test_gateway_cors_preflight(stack: Stack, http: aiohttp.ClientSession) -> None:
    headers = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    async with http.options(stack.gateway_url + "/workspace", headers=headers) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]


async def test_gateway_openapi_lists_every_route(stack: Stack, http: aiohttp.ClientSession) -> None:
    from services.gateway.routes import ROUTES

    async with http.get(stack.gateway_url + "/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    for route in ROUTES:
        op = doc["paths"][route.openapi_path][route.method.lower()]
        assert op["x-nats-subject"] == route.op.subject
    refs = {r.split("/")[-1] for r in _refs(doc)}
    assert refs <= set(doc["components"]["schemas"])


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_gateway_openapi_describes_what_routes_read() -> None:
    """Pages declare their query and form, the proxy its body; a URL parameter is never null."""
    from services.gateway.openapi import build_openapi
    from services.gateway.routes import ROUTES

    doc = build_openapi(ROUTES)
    callback = doc["paths"]["/oauth/callback"]["get"]
    assert {p["name"] for p in callback["parameters"]} >= {"state", "code", "error"}
    page = doc["paths"]["/connect/{token}"]["post"]
    assert "application/x-www-form-urlencoded" in page["requestBody"]["content"]
    proxy = doc["paths"]["/connections/{id}/proxy/{path}"]["put"]
    assert "application/octet-stream" in proxy["requestBody"]["content"]
    params = [p for op in _operations(doc) for p in op.get("parameters", [])]
    assert params
    assert not [p["name"] for p in params if "null" in json.dumps(p["schema"])]


def _operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for path in doc["paths"].values() for op in path.values()]


async def test_request_ids_are_trace_ids_and_in_every_error_reply(
    http: aiohttp.ClientSession, workspace: WorkspaceHandle
) -> None:
    """An error reply names the request's id; a caller's traceparent gives the id."""
    async with http.get(workspace.url("/customers/me")) as resp:
        assert resp.status == 401
        body = await resp.json()
        assert body["error"]["requestId"] == resp.headers["X-Request-Id"]
        assert len(body["error"]["requestId"]) == 32
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with http.get(
        workspace.url("/customers/me"), headers={"traceparent": traceparent}
    ) as resp:
        assert resp.headers["X-Request-Id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert (await resp.json())["error"]["requestId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    async with http.get(
        workspace.url("/customers/me"),
        headers={"traceparent": traceparent, "X-Request-Id": "mine-1"},
    ) as resp:
        assert (await resp.json())["error"]["requestId"] == "mine-1"  # the caller's id wins
    async with http.get(workspace.url("/customers/me"), headers={"traceparent": "00-bad"}) as resp:
        assert resp.headers["X-Request-Id"] != "00-bad"
        assert len(resp.headers["X-Request-Id"]) == 32
