"""Workspace settings: null resets a setting, the test customer always exists and is explained."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.conftest import Stack, WorkspaceFactory, WorkspaceHandle, bearer, customer_events

REQUIRES_PLAN = {
    "type": "object",
    "properties": {"plan": {"enum": ["free", "pro"]}},
    "required": ["plan"],
}


async def _patch(
    http: aiohttp.ClientSession, ws: WorkspaceHandle, settings: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    admin = bearer(await ws.admin_token())
    async with http.patch(ws.url("/workspace"), json={"settings": settings}, headers=admin) as resp:
        return resp.status, await resp.json()


async def _customer_ids(http: aiohttp.ClientSession, ws: WorkspaceHandle) -> list[str]:
    admin = bearer(await ws.admin_token())
    async with http.get(ws.url("/customers"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()
        return [c["id"] for c in (await resp.json())["items"]]


# --- null resets a setting to its default (JSON Merge Patch) ----------------------------

SETTINGS = [
    ("customerFieldsSchema", {"type": "object"}, None),
    ("testCustomer", {"id": "tester", "name": "Tess", "fields": {}}, None),
    ("allowedAlgorithms", ["HS256", "RS256"], None),
    ("maxTokenLifetime", 7200, 24 * 3600),
    ("clockLeeway", 5, 30),
    ("secretGrace", 60, 24 * 3600),
]


@pytest.mark.parametrize(("member", "value", "default"), SETTINGS)
async def test_workspace_settings_null_resets_to_default(
    make_workspace: WorkspaceFactory,
    http: aiohttp.ClientSession,
    member: str,
    value: Any,
    default: Any,
) -> None:
    ws, other = await make_workspace(), await make_workspace()
    for target in (ws, other):
        status, body = await _patch(http, target, {member: value})
        assert status == 200, body
        assert body["settings"][member] == value
    status, body = await _patch(http, ws, {member: None})
    assert status == 200, body
    assert body["settings"][member] == default
    admin = bearer(await ws.admin_token())
    async with http.get(ws.url("/workspace"), headers=admin) as resp:
        assert (await resp.json())["settings"][member] == default  # stored, not just answered
    async with http.get(other.url("/workspace"), headers=bearer(await other.admin_token())) as resp:
        assert (await resp.json())["settings"][member] == value  # another workspace keeps its own


async def test_workspace_settings_null_leaves_other_members(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    status, _ = await _patch(http, workspace, {"clockLeeway": 5, "secretGrace": 60})
    assert status == 200
    status, body = await _patch(http, workspace, {"clockLeeway": None})
    assert status == 200, body
    assert (body["settings"]["clockLeeway"], body["settings"]["secretGrace"]) == (30, 60)


# --- the test customer exists from the workspace's start --------------------------------


async def test_workspace_test_customer_exists_from_creation(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    assert await _customer_ids(http, workspace) == ["test-customer"]
    admin = bearer(await workspace.admin_token())
    async with http.get(workspace.url("/customers/test-customer"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["name"] == "Test Customer"
    assert await customer_events(stack, workspace, "created", "test-customer") == 1
    async with http.post(workspace.url("/workspace/test-customer/token"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()
    assert (
        await customer_events(stack, workspace, "created", "test-customer") == 1
    )  # not created twice


async def test_workspace_new_test_customer_id_exists_at_once(
    stack: Stack, make_workspace: WorkspaceFactory, http: aiohttp.ClientSession
) -> None:
    ws, other = await make_workspace(), await make_workspace()
    test = {"id": "qa-team", "name": "QA", "fields": {"plan": "pro"}}
    status, body = await _patch(http, ws, {"testCustomer": test})
    assert status == 200, body
    assert await _customer_ids(http, ws) == ["qa-team", "test-customer"]
    admin = bearer(await ws.admin_token())
    async with http.get(ws.url("/customers/qa-team"), headers=admin) as resp:
        created = await resp.json()
    assert (created["name"], created["fields"]) == ("QA", {"plan": "pro"})
    assert await customer_events(stack, ws, "created", "qa-team") == 1
    status, _ = await _patch(http, ws, {"testCustomer": test})  # the same again: nothing new
    assert status == 200
    assert await customer_events(stack, ws, "created", "qa-team") == 1
    assert await _customer_ids(http, other) == ["test-customer"]  # nothing in another workspace
    async with http.get(
        other.url("/customers/qa-team"), headers=bearer(await other.admin_token())
    ) as resp:
        assert resp.status == 404


async def test_workspace_new_test_customer_with_missing_fields_is_explained(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    status, _ = await _patch(http, workspace, {"customerFieldsSchema": REQUIRES_PLAN})
    assert status == 200
    status, body = await _patch(http, workspace, {"testCustomer": {"id": "qa-team"}})
    assert status == 422, body
    error = body["error"]
    assert error["message"] == (
        "the test customer's fields miss 'plan': set settings.testCustomer.fields.plan"
    )
    assert [d["field"] for d in error["details"]] == ["settings.testCustomer.fields.plan"]
    assert await _customer_ids(http, workspace) == ["test-customer"]  # nothing half-written
    admin = bearer(await workspace.admin_token())
    async with http.get(workspace.url("/workspace"), headers=admin) as resp:
        assert (await resp.json())["settings"]["testCustomer"] is None


# --- the test customer's token names the setting to fix ---------------------------------


async def test_workspace_test_customer_token_names_the_missing_field(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    status, _ = await _patch(http, workspace, {"customerFieldsSchema": REQUIRES_PLAN})
    assert status == 200
    admin = bearer(await workspace.admin_token())
    async with http.post(workspace.url("/workspace/test-customer/token"), headers=admin) as resp:
        assert resp.status == 422, await resp.text()
        error = (await resp.json())["error"]
    assert error["code"] == "invalid_fields"
    assert error["message"] == (
        "the test customer's fields miss 'plan': set settings.testCustomer.fields.plan"
    )
    assert error["details"] == [
        {"field": "settings.testCustomer.fields.plan", "message": "'plan' is a required property"}
    ]
    test = {"id": "test-customer", "fields": {"plan": "gold"}}
    status, _ = await _patch(http, workspace, {"testCustomer": test})
    assert status == 200
    async with http.post(workspace.url("/workspace/test-customer/token"), headers=admin) as resp:
        assert resp.status == 422
        error = (await resp.json())["error"]
    assert error["message"].startswith("the test customer's fields do not match")
    assert [d["field"] for d in error["details"]] == ["settings.testCustomer.fields.plan"]
    status, _ = await _patch(http, workspace, {"testCustomer": {**test, "fields": {"plan": "pro"}}})
    assert status == 200
    async with http.post(workspace.url("/workspace/test-customer/token"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["customer"]["fields"] == {"plan": "pro"}


async def test_workspace_test_customer_token_is_for_admins_of_its_workspace(
    make_workspace: WorkspaceFactory, http: aiohttp.ClientSession
) -> None:
    a, b = await make_workspace(), await make_workspace()
    await _patch(http, a, {"customerFieldsSchema": REQUIRES_PLAN})
    customer = bearer(await b.customer_token("someone"))
    async with http.post(b.url("/workspace/test-customer/token"), headers=customer) as resp:
        assert resp.status == 403
    # A's schema is A's alone: B's test customer token is minted as before.
    async with http.post(
        b.url("/workspace/test-customer/token"), headers=bearer(await b.admin_token())
    ) as resp:
        assert resp.status == 200, await resp.text()
