"""Customers: created from tokens, fields validated, the API, isolation on every route."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import jwt
import pytest

from tests.conftest import (
    Stack,
    WorkspaceFactory,
    WorkspaceHandle,
    bearer,
    customer_events,
    eventually,
)

SCHEMA = {
    "type": "object",
    "properties": {"plan": {"enum": ["free", "pro"]}, "seats": {"type": "integer", "minimum": 1}},
    "required": ["plan"],
}


def _token(ws: WorkspaceHandle, **claims: Any) -> str:
    return jwt.encode(
        {"iss": ws.key, "exp": int(time.time()) + 600, **claims}, ws.secret, algorithm="HS256"
    )


async def _set_schema(
    http: aiohttp.ClientSession, ws: WorkspaceHandle, schema: dict[str, Any]
) -> None:
    admin = bearer(await ws.admin_token())
    async with http.patch(
        ws.url("/workspace"), json={"settings": {"customerFieldsSchema": schema}}, headers=admin
    ) as resp:
        assert resp.status == 200, await resp.text()


async def test_customer_created_once_by_50_concurrent_first_requests(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    tokens = [
        _token(workspace, id="new-1", iat=int(time.time()) - i) for i in range(50)
    ]  # 50 distinct tokens

    async def call(token: str) -> int:
        async with http.get(workspace.url("/customers/me"), headers=bearer(token)) as resp:
            return resp.status

    assert await asyncio.gather(*(call(t) for t in tokens)) == [200] * 50
    assert await customer_events(stack, workspace, "created", "new-1") == 1
    admin = bearer(await workspace.admin_token())
    async with http.get(workspace.url("/customers"), headers=admin) as resp:
        assert [c["id"] for c in (await resp.json())["items"]] == ["new-1", "test-customer"]


async def test_customer_token_fields_are_validated_and_saved(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    await _set_schema(http, workspace, SCHEMA)
    bad = _token(workspace, id="f-1", fields={"plan": "gold", "seats": 0})
    async with http.get(workspace.url("/customers/me"), headers=bearer(bad)) as resp:
        assert resp.status == 422
        error = (await resp.json())["error"]
    assert error["code"] == "invalid_fields"
    assert {d["field"] for d in error["details"]} == {"fields.plan", "fields.seats"}
    assert await customer_events(stack, workspace, "created", "f-1") == 0  # nothing half-written
    good = _token(workspace, id="f-1", name="Firm", fields={"plan": "pro", "seats": 3})
    async with http.get(workspace.url("/customers/me"), headers=bearer(good)) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["fields"] == {"plan": "pro", "seats": 3}
    newer = _token(
        workspace, id="f-1", fields={"plan": "free"}
    )  # the token's set replaces the stored set
    async with http.get(workspace.url("/customers/me"), headers=bearer(newer)) as resp:
        body = await resp.json()
    assert (body["fields"], body["name"]) == ({"plan": "free"}, "Firm")
    assert await customer_events(stack, workspace, "updated", "f-1") == 1


async def test_customer_patch_merges_fields_as_json_merge_patch(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """Nested objects merge, null deletes at any depth, lists and scalars are replaced."""
    admin = bearer(await workspace.admin_token())
    fields = {"address": {"city": "Oslo", "zip": "0150"}, "tags": ["a"], "plan": "pro"}
    async with http.post(
        workspace.url("/customers"), json={"id": "m-1", "fields": fields}, headers=admin
    ) as resp:
        assert resp.status == 201, await resp.text()
    patch = {"fields": {"address": {"zip": None, "street": "Karl Johan"}, "tags": ["b"]}}
    async with http.patch(workspace.url("/customers/m-1"), json=patch, headers=admin) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["fields"] == {
            "address": {"city": "Oslo", "street": "Karl Johan"},
            "tags": ["b"],
            "plan": "pro",
        }


async def test_customer_api_crud_and_users_alias(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = bearer(await workspace.admin_token())
    async with http.post(
        workspace.url("/customers"),
        json={"id": "c-1", "name": "Acme", "fields": {"a": 1, "b": 2}},
        headers=admin,
    ) as resp:
        assert resp.status == 201, await resp.text()
    async with http.post(workspace.url("/customers"), json={"id": "c-1"}, headers=admin) as resp:
        assert resp.status == 409
    async with http.patch(
        workspace.url("/users/c-1"), json={"fields": {"a": None, "c": 3}}, headers=admin
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["fields"] == {"b": 2, "c": 3}
    async with http.put(
        workspace.url("/customers/c-1"),
        json={"name": "Acme Ltd", "fields": {"z": 1}},
        headers=admin,
    ) as resp:
        body = await resp.json()
        assert (body["name"], body["fields"]) == ("Acme Ltd", {"z": 1})
    async with http.get(workspace.url("/users/c-1"), headers=admin) as resp:
        assert (await resp.json())["name"] == "Acme Ltd"
    async with http.delete(workspace.url("/customers/c-1"), headers=admin) as resp:
        assert (await resp.json())["archived"] is True
    async with http.get(workspace.url("/customers"), headers=admin) as resp:
        assert [c["id"] for c in (await resp.json())["items"]] == ["test-customer"]
    async with http.post(workspace.url("/customers/c-1/restore"), headers=admin) as resp:
        assert (await resp.json())["archived"] is False


async def test_customer_list_search_and_paging(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = bearer(await workspace.admin_token())
    for i in range(7):
        async with http.post(
            workspace.url("/customers"), json={"id": f"p-{i}", "name": f"Name {i}"}, headers=admin
        ) as resp:
            assert resp.status == 201
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        async with http.get(workspace.url("/customers"), params=params, headers=admin) as resp:
            page = await resp.json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == [*(f"p-{i}" for i in range(7)), "test-customer"]
    async with http.get(
        workspace.url("/customers"), params={"search": "name 3"}, headers=admin
    ) as resp:
        assert [c["id"] for c in (await resp.json())["items"]] == ["p-3"]
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"cursor": "!!"}, {"colour": "red"}):
        async with http.get(workspace.url("/customers"), params=bad, headers=admin) as resp:
            assert resp.status == 422, bad


async def test_customer_fields_valid_flag_after_schema_change(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = bearer(await workspace.admin_token())
    async with http.post(
        workspace.url("/customers"), json={"id": "s-1", "fields": {"plan": "pro"}}, headers=admin
    ) as resp:
        assert resp.status == 201
    await _set_schema(
        http, workspace, {"type": "object", "properties": {"plan": {"enum": ["free"]}}}
    )
    async with http.get(workspace.url("/customers/s-1"), headers=admin) as resp:
        body = await resp.json()
    assert body["fields"] == {"plan": "pro"}  # stored data is not rewritten
    assert body["fieldsValid"] is False
    assert body["fieldsErrors"][0]["field"] == "fields.plan"
    async with http.patch(
        workspace.url("/customers/s-1"), json={"fields": {"plan": "nope"}}, headers=admin
    ) as resp:
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == "invalid_fields"


async def test_customer_invalid_fields_schema_is_rejected(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = bearer(await workspace.admin_token())
    body = {"settings": {"customerFieldsSchema": {"type": "objekt"}}}
    async with http.patch(workspace.url("/workspace"), json=body, headers=admin) as resp:
        assert resp.status == 422
        error = (await resp.json())["error"]
    assert error["code"] == "invalid_schema"
    assert "customerFieldsSchema" in error["message"]


async def test_customer_archived_token_gets_403(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    token = await workspace.customer_token("arch-1")
    async with http.get(workspace.url("/customers/me"), headers=bearer(token)) as resp:
        assert resp.status == 200  # now cached in the gateway
    admin = bearer(await workspace.admin_token())
    async with http.delete(workspace.url("/customers/arch-1"), headers=admin) as resp:
        assert resp.status == 200

    async def refused() -> bool:
        async with http.get(workspace.url("/customers/me"), headers=bearer(token)) as resp:
            return (
                resp.status == 403 and (await resp.json())["error"]["code"] == "customer_archived"
            )

    await eventually(refused, timeout=5)


async def test_customer_test_customer_token(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = bearer(await workspace.admin_token())
    settings = {"testCustomer": {"id": "tester", "name": "Tess", "fields": {"x": 1}}}
    async with http.patch(
        workspace.url("/workspace"), json={"settings": settings}, headers=admin
    ) as resp:
        assert resp.status == 200
    async with http.post(workspace.url("/workspace/test-customer/token"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()
        minted = await resp.json()
    assert minted["customer"]["id"] == "tester"
    async with http.get(workspace.url("/customers/me"), headers=bearer(minted["token"])) as resp:
        me = await resp.json()
    assert (me["id"], me["name"], me["fields"]) == ("tester", "Tess", {"x": 1})


ROUTES = [
    ("GET", "/customers/{id}", None),
    ("PATCH", "/customers/{id}", {"name": "x"}),
    ("PUT", "/customers/{id}", {"name": "x"}),
    ("DELETE", "/customers/{id}", None),
    ("POST", "/customers/{id}/restore", None),
    ("GET", "/users/{id}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_customer_routes_isolate_workspaces_and_customers(
    make_workspace: WorkspaceFactory,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    a, b = await make_workspace(), await make_workspace()
    admin_a = bearer(await a.admin_token())
    async with http.post(a.url("/customers"), json={"id": "secret-co"}, headers=admin_a) as resp:
        assert resp.status == 201
    url = path.format(id="secret-co")
    # Another workspace's admin: not found, as if it did not exist.
    async with http.request(
        method, b.url(url), json=body, headers=bearer(await b.admin_token())
    ) as resp:
        assert resp.status == 404, await resp.text()
    # Another customer of the same workspace: 404 for reads, 403 for admin-only routes.
    other = bearer(await a.customer_token("someone-else"))
    async with http.request(method, a.url(url), json=body, headers=other) as resp:
        assert resp.status == (404 if method == "GET" else 403), await resp.text()


async def test_customer_list_and_create_isolation(
    make_workspace: WorkspaceFactory, http: aiohttp.ClientSession
) -> None:
    a, b = await make_workspace(), await make_workspace()
    async with http.post(
        a.url("/customers"), json={"id": "only-a"}, headers=bearer(await a.admin_token())
    ) as resp:
        assert resp.status == 201
    async with http.get(b.url("/customers"), headers=bearer(await b.admin_token())) as resp:
        assert [c["id"] for c in (await resp.json())["items"]] == ["test-customer"]
    customer = bearer(await a.customer_token("cust"))
    for method, path in (
        ("GET", "/customers"),
        ("POST", "/customers"),
        ("GET", "/workspace"),
        ("PATCH", "/workspace"),
    ):
        async with http.request(
            method, a.url(path), json={"id": "x"} if method != "GET" else None, headers=customer
        ) as resp:
            assert resp.status == 403, (method, path)
    async with http.get(a.url("/customers/me"), headers=bearer(await a.admin_token())) as resp:
        assert resp.status == 403


async def test_customer_bad_input(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, stack: Stack
) -> None:
    admin = bearer(await workspace.admin_token())
    for body in ({}, {"id": ""}, {"id": "x" * 300}, {"id": "ok", "fields": []}):
        async with http.post(workspace.url("/customers"), json=body, headers=admin) as resp:
            assert resp.status == 422, body
