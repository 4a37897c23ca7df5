"""Flow instances: created by deployment per level, customised, upgraded three-way, reset."""

from __future__ import annotations

from typing import Any

from tests.conftest import WorkspaceFactory, bearer
from tests.flows.conftest import flow_body
from tests.instances.conftest import Crm


async def _flow(crm: Crm, key: str, level: str = "universal", **extra: Any) -> dict[str, Any]:
    status, flow = await crm.request("POST", "/flows", flow_body(key, level, **extra))
    assert status == 201, flow
    return dict(flow)


async def _instances(crm: Crm, connection_id: str) -> dict[str, dict[str, Any]]:
    status, page = await crm.request("GET", f"/flow-instances?connectionId={connection_id}")
    assert status == 200, page
    return {i["flowId"]: i for i in page["items"]}


async def test_deployment_creates_instances_by_level_idempotently(crm: Crm) -> None:
    for customer in ("cust-a", "cust-b"):
        await crm.request("POST", "/customers", {"id": customer})
    universal = await _flow(crm, "u", autoDeploy=True)
    app = await _flow(crm, "a", "app", integrationKey="crm", autoDeploy=True)
    mine = await _flow(crm, "m", "customer", customerId="cust-a", autoDeploy=True)
    await _flow(crm, "manual")  # not autoDeploy
    await _flow(
        crm, "other", "customer", customerId="cust-b", integrationKey="crm", autoDeploy=True
    )
    a_conn = await crm.connect("cust-a")
    await crm.settled(a_conn)
    assert set(await _instances(crm, a_conn)) == {universal["id"], app["id"], mine["id"]}
    status, _ = await crm.request("POST", f"/connections/{a_conn}/deploy")
    assert status == 201
    await crm.settled(a_conn, count=2)
    assert len(await _instances(crm, a_conn)) == 3  # redeploying creates nothing new
    b_conn = await crm.connect("cust-b")
    await crm.settled(b_conn)
    b_flows = set(await _instances(crm, b_conn))
    assert universal["id"] in b_flows
    assert app["id"] in b_flows
    assert mine["id"] not in b_flows
    assert len(b_flows) == 3  # universal, app and cust-b's own


async def test_archived_connection_archives_its_instances(crm: Crm) -> None:
    await _flow(crm, "u", autoDeploy=True)
    connection_id = await crm.connect("gone")
    await crm.settled(connection_id)
    assert len(await _instances(crm, connection_id)) == 1
    await crm.request("DELETE", f"/connections/{connection_id}")
    await crm.settled(connection_id, count=2)
    assert await _instances(crm, connection_id) == {}


async def _instance(crm: Crm, customer: str = "cust") -> tuple[dict[str, Any], str]:
    flow = await _flow(crm, f"f-{customer}")
    connection_id = await crm.connect(customer)
    await crm.settled(connection_id)
    status, instance = await crm.request(
        "POST", "/flow-instances", {"flowId": flow["id"], "connectionId": connection_id}
    )
    assert status == 201, instance
    return flow, str(instance["id"])


async def test_customisation_admin_and_customer_limits(crm: Crm) -> None:
    _, instance_id = await _instance(crm, "cust-c")
    change = {"nodes": {"send": {"config": {"url": "https://elsewhere.example/in"}}}}
    status, custom = await crm.request(
        "PATCH", f"/flow-instances/{instance_id}", {"customization": change}
    )
    assert status == 200, custom
    assert custom["flow"]["nodes"]["send"]["config"] == {
        "url": "https://elsewhere.example/in",
        "method": "POST",
    }
    assert custom["flow"]["nodes"]["shape"]["type"] == "transform"
    broken = {"nodes": {"shape": {"links": [{"to": "ghost"}]}}}
    status, error = await crm.request(
        "PATCH", f"/flow-instances/{instance_id}", {"customization": broken}
    )
    assert status == 422
    assert error["error"]["details"][0]["field"] == "flow.nodes.shape.links.0.to"
    owner = bearer(await crm.ws.customer_token("cust-c"))
    status, mine = await crm.request(
        "PATCH",
        f"/flow-instances/{instance_id}",
        {"customization": {"parameters": {"channel": "#sales"}}, "enabled": False},
        headers=owner,
    )
    assert status == 200, mine
    assert mine["parameterValues"] == {"channel": "#sales"}
    assert mine["enabled"] is False
    assert (
        mine["flow"]["nodes"]["send"]["config"]["url"] == "https://elsewhere.example/in"
    )  # admin's change kept
    status, error = await crm.request(
        "PATCH",
        f"/flow-instances/{instance_id}",
        {"customization": {"parameters": {"channel": ""}}},
        headers=owner,
    )
    assert status == 422
    assert error["error"]["details"][0]["field"] == "customization.parameters.channel"
    status, _ = await crm.request(
        "PATCH", f"/flow-instances/{instance_id}", {"customization": change}, headers=owner
    )
    assert status == 403
    intruder = bearer(await crm.ws.customer_token("intruder"))
    for method, path in (
        ("GET", f"/flow-instances/{instance_id}"),
        ("PATCH", f"/flow-instances/{instance_id}"),
    ):
        status, _ = await crm.request(
            method, path, {"enabled": True} if method == "PATCH" else None, headers=intruder
        )
        assert status == 404
    status, listed = await crm.request("GET", "/flow-instances", headers=intruder)
    assert listed["items"] == []
    status, listed = await crm.request("GET", "/flow-instances", headers=owner)
    assert [i["id"] for i in listed["items"]] == [instance_id]


async def test_upgrade_without_and_with_conflicts(crm: Crm) -> None:
    flow, instance_id = await _instance(crm, "cust-u")
    flow_id = flow["id"]
    custom = {"nodes": {"send": {"config": {"url": "https://custom.example/in"}}}}
    await crm.request("PATCH", f"/flow-instances/{instance_id}", {"customization": custom})
    # Revision 2 changes another node: the upgrade carries the customisation across.
    nodes = dict(flow["nodes"])
    nodes["shape"] = {
        **nodes["shape"],
        "config": {"expression": "{email: contact.email, id: contact.id}"},
    }
    status, _ = await crm.request("PATCH", f"/flows/{flow_id}", {"revision": 1, "nodes": nodes})
    assert status == 200
    status, before = await crm.request("GET", f"/flow-instances/{instance_id}")
    assert (before["outdated"], before["baseRevision"], before["latestRevision"]) == (True, 1, 2)
    status, upgraded = await crm.request("POST", f"/flow-instances/{instance_id}/upgrade")
    assert status == 200, upgraded
    assert (upgraded["outdated"], upgraded["baseRevision"]) == (False, 2)
    assert upgraded["flow"]["nodes"]["send"]["config"]["url"] == "https://custom.example/in"
    assert "id: contact.id" in upgraded["flow"]["nodes"]["shape"]["config"]["expression"]
    # Revision 3 changes the customised value itself: refused, nothing changes.
    nodes["send"] = {
        **nodes["send"],
        "config": {"url": "https://new-base.example/in", "method": "POST"},
    }
    await crm.request("PATCH", f"/flows/{flow_id}", {"revision": 2, "nodes": nodes})
    status, error = await crm.request("POST", f"/flow-instances/{instance_id}/upgrade")
    assert status == 409, error
    assert error["error"]["code"] == "upgrade_conflict"
    assert [c["path"] for c in error["error"]["details"]] == ["nodes.send.config.url"]
    _, same = await crm.request("GET", f"/flow-instances/{instance_id}")
    assert (same["baseRevision"], same["customization"]) == (2, custom)
    # Revision 4 removes the customised node: also a conflict.
    del nodes["send"]
    nodes["shape"] = {**nodes["shape"], "links": []}
    await crm.request("PATCH", f"/flows/{flow_id}", {"revision": 3, "nodes": nodes})
    status, error = await crm.request("POST", f"/flow-instances/{instance_id}/upgrade")
    assert status == 409
    assert "removed" in error["error"]["details"][0]["reason"]
    status, reset = await crm.request("POST", f"/flow-instances/{instance_id}/reset")
    assert (status, reset["customization"]) == (200, {})
    assert (reset["baseRevision"], list(reset["flow"]["nodes"])) == (4, ["shape"])
    status, upgraded = await crm.request("POST", f"/flow-instances/{instance_id}/upgrade")
    assert status == 200, upgraded
    assert (upgraded["baseRevision"], upgraded["outdated"]) == (4, False)  # nothing left to do


async def test_flow_instances_bad_input_and_isolation(
    crm: Crm, make_workspace: WorkspaceFactory
) -> None:
    flow, instance_id = await _instance(crm, "cust-i")
    app_flow = await _flow(crm, "elsewhere", "app", integrationKey="crm")
    connection_id = await crm.connect("cust-j")
    status, _ = await crm.request(
        "POST", "/flow-instances", {"flowId": flow["id"], "connectionId": connection_id}
    )
    assert status == 201
    status, _ = await crm.request(
        "POST", "/flow-instances", {"flowId": flow["id"], "connectionId": connection_id}
    )
    assert status == 409
    status, _ = await crm.request(
        "POST", "/flow-instances", {"flowId": app_flow["id"], "connectionId": connection_id}
    )
    assert status == 201
    status, _ = await crm.request(
        "POST", "/flow-instances", {"flowId": "not-a-uuid", "connectionId": connection_id}
    )
    assert status == 422
    status, _ = await crm.request(
        "PATCH", f"/flow-instances/{instance_id}", {"customization": {"nodes": []}}
    )
    assert status == 422
    other = await make_workspace()
    admin = bearer(await other.admin_token())
    for method, path in (
        ("GET", f"/flow-instances/{instance_id}"),
        ("PATCH", f"/flow-instances/{instance_id}"),
        ("POST", f"/flow-instances/{instance_id}/upgrade"),
        ("POST", f"/flow-instances/{instance_id}/reset"),
    ):
        async with crm.http.request(
            method, other.url(path), json={} if method != "GET" else None, headers=admin
        ) as resp:
            assert resp.status == 404, path
    async with crm.http.post(
        other.url("/flow-instances"),
        json={"flowId": flow["id"], "connectionId": connection_id},
        headers=admin,
    ) as resp:
        assert resp.status == 404


async def test_reset_moves_to_the_newest_revision(crm: Crm) -> None:
    """Reset drops the customisation and leaves the instance on the flow's newest revision."""
    flow, instance_id = await _instance(crm, "cust-r")
    custom = {"nodes": {"send": {"config": {"url": "https://custom.example/in"}}}}
    status, _ = await crm.request(
        "PATCH", f"/flow-instances/{instance_id}", {"customization": custom, "enabled": False}
    )
    assert status == 200
    nodes = dict(flow["nodes"])
    nodes["send"] = {**nodes["send"], "config": {"url": "https://v2.example/in", "method": "PUT"}}
    status, _ = await crm.request("PATCH", f"/flows/{flow['id']}", {"revision": 1, "nodes": nodes})
    assert status == 200
    status, before = await crm.request("GET", f"/flow-instances/{instance_id}")
    assert (before["outdated"], before["baseRevision"]) == (True, 1)
    status, reset = await crm.request("POST", f"/flow-instances/{instance_id}/reset")
    assert status == 200, reset
    assert reset["customization"] == {}
    assert (reset["baseRevision"], reset["latestRevision"], reset["outdated"]) == (2, 2, False)
    assert reset["flow"]["nodes"]["send"]["config"] == {
        "url": "https://v2.example/in",
        "method": "PUT",
    }
    assert reset["enabled"] is False  # reset touches the flow, not whether it runs
    status, again = await crm.request("GET", f"/flow-instances/{instance_id}")
    assert (again["baseRevision"], again["outdated"], again["flow"]) == (2, False, reset["flow"])
