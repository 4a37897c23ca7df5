"""Flows: validation naming node and field, levels, references, revisions and locking."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import WorkspaceFactory, bearer
from tests.flows.conftest import flow_body
from tests.instances.conftest import Crm


async def _create(crm: Crm, body: dict[str, Any]) -> tuple[int, Any]:
    return await crm.request("POST", "/flows", body)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"nodes": {"a": {"type": "teleport"}}}, "nodes.a.type"),
        (
            {"nodes": {"a": {"type": "http-request", "config": {"method": "GET"}}}},
            "nodes.a.config.url",
        ),
        ({"nodes": {"a": {"type": "delay", "config": {"seconds": 0}}}}, "nodes.a.config.seconds"),
        (
            {"nodes": {"a": {"type": "transform", "config": {"expression": "[[bad"}}}},
            "nodes.a.config.expression",
        ),
        (
            {
                "nodes": {
                    "a": {"type": "delay", "config": {"seconds": 5}, "links": [{"to": "ghost"}]}
                }
            },
            "nodes.a.links.0.to",
        ),
        (
            {
                "nodes": {
                    "a": {"type": "delay", "config": {"seconds": 5}, "links": [{"to": "b"}]},
                    "b": {"type": "delay", "config": {"seconds": 5}, "links": [{"to": "a"}]},
                }
            },
            "nodes.a.links",
        ),
        ({"trigger": {"type": "schedule", "cron": "every tuesday"}}, "trigger.cron"),
        ({"trigger": {"type": "teleport"}}, "trigger"),
        ({"parameters": {"type": "strang"}}, "parameters"),
        ({"integrationKey": "crm"}, "level"),
        ({"trigger": {"type": "app-event", "appEventTypeKey": "contact-created"}}, "trigger.type"),
        ({"level": "app"}, "integrationKey"),
        ({"level": "customer"}, "customerId"),
        ({"level": "customer", "customerId": "nobody"}, "customerId"),
        ({"level": "app", "integrationKey": "nope"}, "integrationKey"),
        (
            {
                "level": "app",
                "integrationKey": "crm",
                "trigger": {"type": "app-event", "appEventTypeKey": "ghost"},
            },
            "trigger.appEventTypeKey",
        ),
        (
            {
                "level": "app",
                "integrationKey": "crm",
                "trigger": {"type": "data-record-created", "dataSourceKey": "ghost"},
            },
            "trigger.dataSourceKey",
        ),
    ],
)
async def test_flow_validation_names_node_and_field(
    crm: Crm, change: dict[str, Any], field: str
) -> None:
    status, body = await _create(crm, {**flow_body("bad"), **change})
    assert status == 422, body
    fields = [d.get("field", "") for d in body["error"].get("details") or []]
    assert (
        any(f == field or f.startswith(field) for f in fields) or field in body["error"]["message"]
    ), body


async def test_flow_levels_and_references_accepted(crm: Crm) -> None:
    status, _ = await crm.request("POST", "/customers", {"id": "cust-a"})
    assert status == 201
    bodies = [
        flow_body("uni"),
        flow_body(
            "app",
            "app",
            integrationKey="crm",
            trigger={"type": "app-event", "appEventTypeKey": "contact-created"},
        ),
        flow_body(
            "rec",
            "app",
            integrationKey="crm",
            trigger={"type": "data-record-updated", "dataSourceKey": "contacts"},
        ),
        flow_body(
            "mine",
            "customer",
            customerId="cust-a",
            trigger={"type": "schedule", "cron": "*/5 * * * *"},
        ),
    ]
    for body in bodies:
        status, created = await _create(crm, body)
        assert status == 201, created
        assert created["revision"] == 1
    status, page = await crm.request("GET", "/flows?level=app")
    assert {f["key"] for f in page["items"]} == {"app", "rec"}
    status, page = await crm.request("GET", "/flows?customerId=cust-a")
    assert [f["key"] for f in page["items"]] == ["mine"]
    status, _ = await _create(crm, flow_body("uni"))
    assert status == 409


async def test_flow_revisions_need_the_current_revision(crm: Crm) -> None:
    status, flow = await _create(crm, flow_body("rev"))
    flow_id = flow["id"]
    body = {k: v for k, v in flow_body("rev").items() if k not in ("key", "level")}
    status, error = await crm.request("PUT", f"/flows/{flow_id}", body)
    assert (status, error["error"]["code"]) == (422, "revision_required")
    async with crm.http.put(
        crm.ws.url(f"/flows/{flow_id}"),
        json={**body, "name": "Renamed"},
        headers={**crm.admin, "If-Match": '"1"'},
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["revision"] == 2
    status, error = await crm.request(
        "PATCH", f"/flows/{flow_id}", {"revision": 1, "name": "Stale"}
    )
    assert (status, error["error"]["code"]) == (409, "revision_conflict")
    assert error["error"]["details"]["currentRevision"] == 2
    status, patched = await crm.request(
        "PATCH", f"/flows/{flow_id}", {"revision": 2, "autoDeploy": True}
    )
    assert (status, patched["revision"], patched["name"], patched["autoDeploy"]) == (
        200,
        3,
        "Renamed",
        True,
    )
    status, history = await crm.request("GET", f"/flows/{flow_id}/revisions")
    assert [r["revision"] for r in history["items"]] == [3, 2, 1]
    status, first = await crm.request("GET", f"/flows/{flow_id}/revisions/1")
    assert (status, first["definition"]["name"]) == (200, "Flow rev")
    status, _ = await crm.request("GET", f"/flows/{flow_id}/revisions/9")
    assert status == 404


async def test_flow_concurrent_writers_one_wins(crm: Crm) -> None:
    _, flow = await _create(crm, flow_body("race"))
    results = await asyncio.gather(
        *(
            crm.request("PATCH", f"/flows/{flow['id']}", {"revision": 1, "name": f"writer {i}"})
            for i in range(5)
        )
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409, 409, 409, 409]
    _, now = await crm.request("GET", f"/flows/{flow['id']}")
    assert now["revision"] == 2


async def test_flow_delete_or_archive(crm: Crm) -> None:
    _, lonely = await _create(crm, flow_body("lonely"))
    status, gone = await crm.request("DELETE", f"/flows/{lonely['id']}")
    assert (status, gone) == (200, {"deleted": True, "archived": False})
    status, _ = await crm.request("GET", f"/flows/{lonely['id']}")
    assert status == 404
    _, used = await _create(crm, flow_body("used"))
    connection_id = await crm.connect("arch")
    await crm.settled(connection_id)
    status, _ = await crm.request(
        "POST", "/flow-instances", {"flowId": used["id"], "connectionId": connection_id}
    )
    assert status == 201
    status, kept = await crm.request("DELETE", f"/flows/{used['id']}")
    assert (status, kept) == (200, {"deleted": False, "archived": True})
    status, _ = await crm.request("PATCH", f"/flows/{used['id']}", {"revision": 1, "name": "x"})
    assert status == 409


async def test_flows_are_admin_only_and_workspace_scoped(
    crm: Crm, make_workspace: WorkspaceFactory
) -> None:
    _, flow = await _create(crm, flow_body("scoped"))
    customer = bearer(await crm.ws.customer_token("c"))
    for method, path in (("GET", "/flows"), ("GET", f"/flows/{flow['id']}"), ("POST", "/flows")):
        status, _ = await crm.request(
            method, path, {} if method == "POST" else None, headers=customer
        )
        assert status == 403, path
    other = await make_workspace()
    admin = bearer(await other.admin_token())
    for method, path in (
        ("GET", f"/flows/{flow['id']}"),
        ("PATCH", f"/flows/{flow['id']}"),
        ("DELETE", f"/flows/{flow['id']}"),
        ("GET", f"/flows/{flow['id']}/revisions"),
    ):
        async with crm.http.request(
            method,
            other.url(path),
            json={"revision": 1} if method == "PATCH" else None,
            headers=admin,
        ) as resp:
            assert resp.status == 404, path
    async with crm.http.get(other.url("/flows"), headers=admin) as resp:
        assert (await resp.json())["items"] == []
