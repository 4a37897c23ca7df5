"""Running actions against a fake app: levels, input errors, app failures, idempotency, the log."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import pytest

from libs.common.contracts import actions as c
from libs.common.contracts.base import Context
from libs.common.errors import Timeout
from libs.common.ssrf import UrlPolicy
from services.flows.nodes import REGISTRY
from services.flows.nodes.base import NodeCall, NodeError, NodeServices
from services.instances.action_instances import Definitions
from services.instances.action_runner import ActionRunner
from services.instances.action_runs import sweep_once
from services.instances.deployments import visible_connection
from services.instances.settings import InstancesOptions
from tests.conftest import Stack, WorkspaceFactory, bearer
from tests.flows.runs_stack import RunsEnv, runs_env, runs_stack
from tests.instances.test_actions import Actions, actions_env, app_action

__all__ = ["actions_env", "runs_env", "runs_stack"]  # fixtures shared with other modules


async def run(
    env: Actions,
    key: str,
    connection: str,
    value: Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """Run an action by key through the gateway."""
    return await env.request(
        "POST", f"/actions/{key}/run", {"connectionId": connection, "input": value}, headers
    )


async def outbox(stack: Stack, workspace_id: str, subject: str) -> list[dict[str, Any]]:
    """Return the instances outbox's events of ``subject`` in a workspace."""
    pool = await stack.pool("instances")
    try:
        rows = await pool.fetch(
            "SELECT payload FROM outbox WHERE workspace_id = $1 AND subject = $2",
            UUID(workspace_id),
            subject,
        )
    finally:
        await pool.close()
    return [dict(r["payload"]) for r in rows]


async def test_actions_run_app_level_through_the_connection(actions_env: Actions) -> None:
    env = actions_env
    await env.define(app_action())
    connection = await env.connect("cust-1")
    status, result = await run(env, "create-order", connection, {"item": "pen", "qty": 3})
    assert status == 200, result
    assert result["output"] == {"id": "pen", "count": 3, "path": "/api/orders/pen"}
    assert result["replayed"] is False
    [received] = env.app.received
    assert (received.method, received.path, received.query) == (
        "POST",
        "/api/orders/pen",
        {"source": "tether"},
    )
    assert received.body == {
        "item": "pen",
        "qty": 3,
        "customer": "cust-1",
        "connection": "counting",
    }
    assert received.headers["x-api-key"] == "secret-key"  # added by the proxy, never seen here
    assert received.idempotency_key is None

    status, logged = await env.request("GET", f"/action-runs/{result['actionRunId']}")
    assert status == 200, logged
    assert (logged["status"], logged["actionKey"], logged["connectionId"]) == (
        "success",
        "create-order",
        connection,
    )
    assert logged["input"] == {"item": "pen", "qty": 3}
    assert logged["output"] == result["output"]
    assert logged["request"] == {"method": "POST", "path": "/orders/pen", "status": 200}
    assert logged["error"] is None
    assert logged["durationMs"] >= 0
    assert "secret-key" not in json.dumps(logged)


async def test_actions_run_input_checked_before_any_call(actions_env: Actions) -> None:
    env = actions_env
    await env.define(app_action())
    connection = await env.connect("cust-1")
    for value, field in (({}, "input"), ({"item": 5}, "input.item"), ("text", "input")):
        status, refused = await run(env, "create-order", connection, value)
        assert status == 422, refused
        assert refused["error"]["details"][0]["field"] == field, refused
    assert env.app.received == []
    status, page = await env.request("GET", "/action-runs")
    assert (status, page["items"]) == (200, [])


async def test_actions_universal_run_per_integration(actions_env: Actions) -> None:
    env = actions_env
    await env.define(
        {
            "key": "find-contact",
            "level": "universal",
            "name": "Find a contact",
            "implementations": {
                "counting": {"path": "/contacts/{{ input.email }}"},
                "other": {"path": "/people", "query": {"email": "{{ input.email }}"}},
            },
            "outputMapping": "path",
        }
    )
    here, there = await env.connect("cust-1"), await env.connect("cust-1", "other")
    status, result = await run(env, "find-contact", here, {"email": "a@b.c"})
    assert (status, result["output"]) == (200, "/api/contacts/a@b.c"), result
    status, result = await run(env, "find-contact", there, {"email": "a@b.c"})
    assert (status, result["output"]) == (200, "/api/people"), result
    assert env.other.received[0].query == {"email": "a@b.c"}

    status, _ = await env.request(
        "PATCH",
        "/actions/find-contact",
        {"implementations": {"counting": {"path": "/contacts"}}},
        {**env.admin, "If-Match": "1"},
    )
    assert status == 200
    status, refused = await run(env, "find-contact", there, {"email": "a@b.c"})
    assert (status, refused["error"]["code"]) == (422, "not_implemented_for_integration"), refused
    assert len(env.other.received) == 1


async def test_actions_customer_level_runs_only_for_its_customer(actions_env: Actions) -> None:
    env = actions_env
    await env.request("POST", "/customers", {"id": "cust-1"})
    await env.define(app_action("mine", level="customer", customerId="cust-1", integrationKey=None))
    own, foreign = await env.connect("cust-1"), await env.connect("cust-2")
    customer = await env.customer("cust-1")
    status, result = await run(env, "mine", own, {"item": "a"}, customer)
    assert status == 200, result
    status, refused = await run(env, "mine", foreign, {"item": "a"})
    assert (status, refused["error"]["code"]) == (422, "action_not_for_connection"), refused
    status, refused = await run(env, "mine", foreign, {"item": "a"}, customer)
    assert status == 404, refused  # another customer's connection: not visible at all
    assert len(env.app.received) == 1


async def test_actions_app_failures_are_mapped_logged_and_evented(
    stack: Stack, actions_env: Actions
) -> None:
    env = actions_env
    await env.define(app_action())
    connection = await env.connect("cust-1")
    env.app.fail("/api/orders/bad", 400, body={"message": "item is unknown"})
    status, rejected = await run(env, "create-order", connection, {"item": "bad"})
    assert (status, rejected["error"]["code"]) == (422, "app_rejected"), rejected
    assert rejected["error"]["details"] == {"status": 400, "message": "item is unknown"}

    env.app.fail("/api/orders/busy", 429, retry_after="120")
    status, limited = await run(env, "create-order", connection, {"item": "busy"})
    assert (status, limited["error"]["details"]["retryAfter"]) == (422, 120.0), limited

    env.app.fail("/api/orders/down", 503, body={"error": "maintenance"})
    status, down = await run(env, "create-order", connection, {"item": "down"})
    assert (status, down["error"]["code"]) == (502, "app_unavailable"), down
    assert down["error"]["details"] == {"status": 503, "message": "maintenance"}

    status, page = await env.request("GET", "/action-runs?status=error")
    assert status == 200, page
    assert len(page["items"]) == 3
    assert {r["error"]["code"] for r in page["items"]} == {"app_rejected", "app_unavailable"}
    assert {r["request"]["status"] for r in page["items"]} == {400, 429, 503}
    events = await outbox(stack, env.ws.id, c.ACTION_RUN_FAILED.subject)
    assert sorted(e["error"]["code"] for e in events) == [
        "app_rejected",
        "app_rejected",
        "app_unavailable",
    ]
    assert {e["actionRunId"] for e in events} == {r["id"] for r in page["items"]}
    status, ok = await env.request("GET", "/action-runs?status=success")
    assert (status, ok["items"]) == (200, [])


async def test_actions_unreachable_app_is_502(actions_env: Actions) -> None:
    env = actions_env
    await env.define(app_action())
    connection = await env.connect("cust-1")
    await env.app.stop()
    status, down = await run(env, "create-order", connection, {"item": "a"})
    assert (status, down["error"]["code"]) == (502, "app_unavailable"), down


async def test_actions_idempotent_replays(actions_env: Actions) -> None:
    env = actions_env
    await env.define(app_action())
    connection = await env.connect("cust-1")
    keyed = {**env.admin, "Idempotency-Key": "order-1"}
    status, first = await run(env, "create-order", connection, {"item": "a"}, keyed)
    assert status == 200, first
    status, again = await run(env, "create-order", connection, {"item": "a"}, keyed)
    assert status == 200, again
    assert (again["actionRunId"], again["output"], again["replayed"]) == (
        first["actionRunId"],
        first["output"],
        True,
    )
    assert env.app.count("order-1") == 1  # passed to the app, once
    status, reused = await run(env, "create-order", connection, {"item": "b"}, keyed)
    assert (status, reused["error"]["code"]) == (409, "idempotency_key_reused"), reused

    # An error is stored too: the repeat answers it without calling the app again.
    env.app.fail("/api/orders/x", 500)
    failing = {**env.admin, "Idempotency-Key": "order-2"}
    status, failed = await run(env, "create-order", connection, {"item": "x"}, failing)
    assert (status, failed["error"]["code"]) == (502, "app_unavailable"), failed
    status, replayed = await run(env, "create-order", connection, {"item": "x"}, failing)
    same = {k: v for k, v in failed["error"].items() if k != "requestId"}  # each its own id
    assert (status, {**replayed["error"], "requestId": None}) == (502, {**same, "requestId": None})
    assert env.app.count("order-2") == 1

    # Keys are per connection: another connection's run with the same key is its own.
    elsewhere = await env.connect("cust-1")
    status, other = await run(env, "create-order", elsewhere, {"item": "a"}, keyed)
    assert (status, other["replayed"]) == (200, False), other
    assert env.app.count("order-1") == 2


async def test_action_instances_run_with_customisation(actions_env: Actions) -> None:
    env = actions_env
    await env.define(app_action())
    connection = await env.connect("cust-1")
    status, instance = await env.request(
        "POST", "/action-instances", {"actionKey": "create-order", "connectionId": connection}
    )
    assert status == 201, instance
    customer = await env.customer("cust-1")
    status, _ = await env.request(
        "PATCH",
        f"/action-instances/{instance['id']}",
        {"customization": {"parameters": {"source": "crm"}}},
        customer,
    )
    assert status == 200
    status, result = await env.request(
        "POST",
        f"/action-instances/{instance['id']}/run",
        {"input": {"item": "a"}},
        {**customer, "Idempotency-Key": "k"},
    )
    assert status == 200, result
    assert env.app.received[0].query == {"source": "crm"}
    # Running by key on that connection runs its instance too.
    status, result = await run(env, "create-order", connection, {"item": "b"})
    assert status == 200, result
    assert env.app.received[1].query == {"source": "crm"}
    status, logged = await env.request("GET", f"/action-runs/{result['actionRunId']}")
    assert logged["actionInstanceId"] == instance["id"]


async def test_action_runs_time_out(stack: Stack, actions_env: Actions) -> None:
    """A run waits TETHER_ACTION_TIMEOUT at most: 504 action_timeout, logged as an error."""
    env = actions_env
    await env.define(app_action())
    connection = await env.connect("cust-1")
    env.app.slow("/api/orders/slow", 30)
    pool = await stack.pool("instances")
    try:
        runner = ActionRunner(pool, stack.bus, InstancesOptions(action_timeout=0.5))
        system = Context(workspace_id=UUID(env.ws.id), principal="system")
        known = await visible_connection(pool, stack.bus, system, UUID(connection))
        async with pool.acquire() as conn:
            target = await Definitions().target(conn, known, "create-order", need_instance=False)
        with pytest.raises(Timeout) as caught:
            await runner.run(target, {"item": "slow"}, None)
        assert caught.value.code == "action_timeout"
        row = await pool.fetchrow(
            "SELECT status, error FROM action_runs WHERE workspace_id = $1", UUID(env.ws.id)
        )
        assert row is not None
        assert (row["status"], row["error"]["code"], row["error"]["status"]) == (
            "error",
            "action_timeout",
            504,
        )
    finally:
        await pool.close()


async def test_action_runs_list_filters_pages_and_isolation(
    actions_env: Actions, make_workspace: WorkspaceFactory
) -> None:
    env = actions_env
    await env.define(app_action())
    await env.define(app_action("other-action"))
    mine, theirs = await env.connect("cust-1"), await env.connect("cust-2")
    ids = []
    for key, connection in (
        ("create-order", mine),
        ("other-action", mine),
        ("create-order", theirs),
    ):
        status, result = await run(env, key, connection, {"item": "a"})
        assert status == 200, result
        ids.append(result["actionRunId"])

    async def listed(query: str, headers: dict[str, str] | None = None) -> list[str]:
        status, page = await env.request("GET", f"/action-runs{query}", headers=headers)
        assert status == 200, page
        return [r["id"] for r in page["items"]]

    assert await listed("") == ids[::-1]
    assert await listed("?actionKey=create-order") == [ids[2], ids[0]]
    assert await listed(f"?connectionId={mine}") == [ids[1], ids[0]]
    assert await listed("?customerId=cust-2") == [ids[2]]
    assert await listed("?status=success&to=2000-01-01T00:00:00Z") == []
    assert await listed("?from=2000-01-01T00:00:00Z") == ids[::-1]
    status, first = await env.request("GET", "/action-runs?limit=2")
    status, rest = await env.request("GET", f"/action-runs?limit=2&cursor={first['cursor']}")
    assert [r["id"] for r in rest["items"]] == [ids[0]]
    assert rest["cursor"] is None

    customer = await env.customer("cust-1")
    assert await listed("", customer) == [ids[1], ids[0]]
    assert await listed("?customerId=cust-2", customer) == []
    status, body = await env.request("GET", f"/action-runs/{ids[2]}", headers=customer)
    assert status == 404, body
    status, body = await env.request("GET", f"/action-runs/{ids[0]}", headers=customer)
    assert status == 200, body

    other = await make_workspace()
    other_admin = bearer(await other.admin_token())
    async with env.http.get(other.url(f"/action-runs/{ids[0]}"), headers=other_admin) as r:
        assert r.status == 404, await r.text()
    async with env.http.get(other.url("/action-runs"), headers=other_admin) as r:
        assert (await r.json())["items"] == []
    other_run = {"connectionId": mine, "input": {"item": "a"}}
    async with env.http.post(
        other.url("/actions/create-order/run"), json=other_run, headers=other_admin
    ) as r:
        assert r.status == 404, await r.text()


async def test_action_runs_retention_drops_inputs_and_outputs(
    stack: Stack, actions_env: Actions
) -> None:
    env = actions_env
    await env.define(app_action())
    connection = await env.connect("cust-1")
    status, result = await run(env, "create-order", connection, {"item": "a"})
    assert status == 200, result
    pool = await stack.pool("instances")
    try:
        assert await sweep_once(pool, older_than=3600) == 0  # not old enough yet
        assert await sweep_once(pool, older_than=0) >= 1
    finally:
        await pool.close()
    status, logged = await env.request("GET", f"/action-runs/{result['actionRunId']}")
    assert status == 200, logged
    assert (logged["input"], logged["output"], logged["outputDropped"]) == (None, None, True)
    assert (logged["status"], logged["outputSize"]) == (
        "success",
        len(json.dumps(result["output"], separators=(",", ":"))),
    )


async def test_run_action_node_runs_the_connection_instance(
    stack: Stack, actions_env: Actions
) -> None:
    env = actions_env
    await env.define(app_action(autoDeploy=True))
    connection = await env.connect("cust-1")
    await env.settled(connection)
    async with aiohttp.ClientSession() as http:
        services = NodeServices(bus=stack.bus, http=http, url_policy=UrlPolicy(allow_private=True))
        node = REGISTRY["run-action"]
        run_id = uuid4()
        call = NodeCall(
            workspace_id=UUID(env.ws.id),
            run_id=run_id,
            node_key="order",
            item=None,
            connection_id=UUID(connection),
            customer_id="cust-1",
            integration_key="counting",
            scope={"input": {"item": "pen"}},
            services=services,
        )
        config = node.prepare(
            {"actionKey": "create-order", "input": {"$expr": "input"}}, call.scope
        )
        first = await node.run(config, call)
        again = await node.run(config, call)  # a retry of the node: the stored result
        assert (
            first.output
            == again.output
            == {
                "id": "pen",
                "count": 1,
                "path": "/api/orders/pen",
            }
        )
        assert env.app.count(f"{run_id}:order") == 1

        missing = node.prepare({"actionKey": "nope", "input": {}}, call.scope)
        with pytest.raises(NodeError) as caught:
            await node.run(missing, call)
        assert (caught.value.code, caught.value.transient) == ("not_found", False)
        env.app.fail("/api/orders/x", 503)
        failing = node.prepare({"actionKey": "create-order", "input": {"item": "x"}}, call.scope)
        with pytest.raises(NodeError) as caught:
            await node.run(failing, NodeCall(**{**call.__dict__, "node_key": "other"}))
        assert (caught.value.code, caught.value.transient) == ("app_unavailable", True)


async def test_run_action_node_in_a_flow_run(runs_env: RunsEnv) -> None:
    """A flow's run-action node runs the connection's action instance, keyed by run and node."""
    env = runs_env
    action = {
        "key": "order",
        "level": "app",
        "integrationKey": "counting",
        "name": "Order",
        "inputSchema": {"type": "object", "required": ["n"]},
        "request": {"method": "POST", "path": "/orders", "body": {"n": {"$expr": "input.n"}}},
        "outputMapping": "body",
    }
    status, created = await env.request("POST", "/actions", action)
    assert status == 201, created
    connection = await env.connect("cust")
    status, deployed = await env.request(
        "POST", "/action-instances", {"actionKey": "order", "connectionId": connection}
    )
    assert status == 201, deployed
    node = {"type": "run-action", "config": {"actionKey": "order", "input": {"$expr": "input"}}}
    instance = await env.instance({"act": node}, connection_id=connection)
    started = await env.start(instance, {"n": 3})
    ended = await env.ended(started["id"])
    assert ended["state"] == "completed", ended
    [execution] = await env.executions(started["id"], "act")
    assert execution["output"] == {"n": 3}
    assert env.app.count(f"{started['id']}:act") == 1

    failed = await env.ended((await env.start(instance, {"m": 1}))["id"])
    assert failed["state"] == "failed", failed
    assert failed["errors"][0]["code"] == "invalid_input", failed


async def test_actions_idempotency_claim_in_flight_and_abandoned(
    stack: Stack, actions_env: Actions
) -> None:
    """A key held by a live run is 409; one left running by a dead process is taken over."""
    env = actions_env
    await env.define(app_action())
    connection = await env.connect("cust-1")
    keyed = {**env.admin, "Idempotency-Key": "held"}
    status, first = await run(env, "create-order", connection, {"item": "a"}, keyed)
    assert status == 200, first
    pool = await stack.pool("instances")
    try:
        # As if the run were still at the app (its process alive): a repeat must wait.
        await pool.execute(
            "UPDATE action_runs SET status = 'running', started_at = clock_timestamp()"
            " WHERE workspace_id = $1 AND id = $2",
            UUID(env.ws.id),
            UUID(first["actionRunId"]),
        )
        status, busy = await run(env, "create-order", connection, {"item": "a"}, keyed)
        assert (status, busy["error"]["code"]) == (409, "action_run_in_progress"), busy
        # As if its process died long ago: the repeat takes the claim over and calls again.
        await pool.execute(
            "UPDATE action_runs SET started_at = clock_timestamp() - interval '10 minutes'"
            " WHERE workspace_id = $1 AND id = $2",
            UUID(env.ws.id),
            UUID(first["actionRunId"]),
        )
        status, again = await run(env, "create-order", connection, {"item": "a"}, keyed)
        assert status == 200, again
        assert (again["actionRunId"], again["replayed"]) == (first["actionRunId"], False)
        assert env.app.count("held") == 2  # the same key both times: the app may dedupe
        # Past the 24 h window the key is released: a new run with the same key.
        await pool.execute(
            "UPDATE action_runs SET started_at = clock_timestamp() - interval '25 hours'"
            " WHERE workspace_id = $1 AND id = $2",
            UUID(env.ws.id),
            UUID(first["actionRunId"]),
        )
        status, fresh = await run(env, "create-order", connection, {"item": "b"}, keyed)
        assert status == 200, fresh
        assert fresh["actionRunId"] != first["actionRunId"]
    finally:
        await pool.close()
