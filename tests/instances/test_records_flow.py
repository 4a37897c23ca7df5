"""The data-record nodes in a flow run: create, find, update, list and delete through a connection."""

from __future__ import annotations

from typing import Any

from tests.conftest import Stack, eventually
from tests.fakes.fake_crm import FakeCrm
from tests.flows.runs_stack import RunsEnv, make_env, runs_stack

__all__ = ["runs_stack"]


async def crm_connection(env: RunsEnv, crm: FakeCrm) -> str:
    """Add the fake CRM's integration and data source; connect a customer; return it."""
    for path, body in (("/integrations", crm.integration()), ("/data-sources", crm.data_source())):
        status, created = await env.request("POST", path, body)
        assert status == 201, created
    status, connection = await env.request(
        "POST",
        "/connections",
        {
            "customerId": "flow-cust",
            "integrationKey": "crm",
            "credentials": {"apiKey": crm.api_key},
        },
    )
    assert status == 201, connection

    async def ready() -> bool:
        status, page = await env.request(
            "GET", f"/data-source-instances?connectionId={connection['id']}"
        )
        return status == 200 and any(i["status"] == "ready" for i in page["items"])

    await eventually(ready, timeout=20)
    return str(connection["id"])


def node(kind: str, config: dict[str, Any], then: str | None = None) -> dict[str, Any]:
    """Return one node of a flow (linked to ``then``)."""
    body: dict[str, Any] = {
        "type": kind,
        "config": {"dataSourceKey": "contacts", **config},
        "links": [{"to": then}] if then else [],
    }
    return body


async def test_records_nodes_run_in_a_flow(runs_stack: Stack) -> None:
    async with make_env(runs_stack) as env, FakeCrm() as crm:
        crm.add(3)
        connection_id = await crm_connection(env, crm)
        created_id = "{{ nodes.create.id }}"
        instance_id = await env.instance(
            {
                "create": node(
                    "create-data-record",
                    {"record": {"email": "{{ input.email }}", "name": "From a flow"}},
                    "find",
                ),
                "find": node("find-data-record", {"id": created_id}, "update"),
                "update": node(
                    "update-data-record", {"id": created_id, "record": {"name": "Changed"}}, "list"
                ),
                "list": node("list-data-records", {}, "delete"),
                "delete": node("delete-data-record", {"id": created_id}, "gone"),
                "gone": node("find-data-record", {"id": created_id}),
            },
            connection_id=connection_id,
        )
        started = await env.start(instance_id, {"email": "flow@example.com"})
        run = await env.ended(started["id"])
        assert run["state"] == "completed", run
        outputs = {
            key: (await env.executions(run["id"], key))[0]["output"]
            for key in ("create", "find", "update", "list", "delete", "gone")
        }
        new_id = outputs["create"]["id"]
        assert outputs["create"]["data"]["email"] == "flow@example.com"
        assert outputs["find"]["found"] is True
        assert outputs["find"]["record"]["data"]["name"] == "From a flow"
        assert outputs["update"]["data"]["name"] == "Changed"
        assert len(outputs["list"]["records"]) == 4
        assert outputs["list"]["cursor"] is None
        assert outputs["delete"] == {"id": new_id, "deleted": True}
        assert outputs["gone"] == {"found": False, "record": None}
        assert new_id not in crm.contacts
        assert f"{run['id']}:create" in crm.idempotency_keys


async def test_records_node_app_refusal_fails_the_run(runs_stack: Stack) -> None:
    async with make_env(runs_stack) as env, FakeCrm() as crm:
        connection_id = await crm_connection(env, crm)
        instance_id = await env.instance(
            {"create": node("create-data-record", {"record": {"name": "no email"}})},
            connection_id=connection_id,
        )
        started = await env.start(instance_id, {})
        run = await env.ended(started["id"])
        assert run["state"] == "failed", run
        [execution] = await env.executions(run["id"], "create")
        assert execution["error"]["code"] == "app_rejected", execution
        assert execution["attempts"] == 1  # a 4xx is not retried
