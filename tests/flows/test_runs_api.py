"""The runs API: starting by API (input schema, Idempotency-Key, disabled, queue full),
reading, stopping, rerunning; isolation and bad input on every route."""

from __future__ import annotations

import secrets
from typing import Any

from libs.common.contracts import identity
from tests.conftest import SYSTEM, bearer
from tests.flows.runs_stack import RUN_OPTIONS, RunsEnv
from tests.flows.test_runs import http, transform

SCHEMA = {
    "type": "object",
    "required": ["email"],
    "properties": {"email": {"type": "string"}, "tags": {"type": "array"}},
}


async def test_runs_api_input_schema_names_the_field(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance(
        {"a": transform("input")}, trigger={"type": "api", "inputSchema": SCHEMA}
    )
    missing = await runs_env.start(instance, {}, expect=422)
    assert missing["error"]["details"][0]["field"] == "input"
    wrong = await runs_env.start(instance, {"email": 5}, expect=422)
    assert wrong["error"]["details"][0]["field"] == "input.email"
    ok = await runs_env.start(instance, {"email": "a@b.c"})
    assert (await runs_env.ended(ok["id"]))["state"] == "completed"


async def test_runs_api_idempotency_key_returns_the_same_run(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance({"send": http(runs_env.url("/once"))})
    first = await runs_env.start(instance, {"n": 1}, headers={"Idempotency-Key": "k-1"})
    again = await runs_env.start(instance, {"n": 2}, headers={"Idempotency-Key": "k-1"})
    other = await runs_env.start(instance, {"n": 3}, headers={"Idempotency-Key": "k-2"})
    assert again["id"] == first["id"]
    assert again["input"] == {"n": 1}
    assert other["id"] != first["id"]
    await runs_env.ended(first["id"])
    await runs_env.ended(other["id"])
    assert runs_env.app.bodies("/once") == [{"n": 1}, {"n": 3}]
    bad = await runs_env.start(instance, headers={"Idempotency-Key": "x" * 300}, expect=422)
    assert bad["error"]["details"][0]["field"] == "idempotencyKey"


async def test_runs_api_disabled_instance_is_409(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance({"a": transform("input")})
    status, _ = await runs_env.request("PATCH", f"/flow-instances/{instance}", {"enabled": False})
    assert status == 200
    refused = await runs_env.start(instance, expect=409)
    assert refused["error"]["code"] == "flow_instance_disabled"


async def test_runs_api_queue_full_is_429(runs_env: RunsEnv) -> None:
    runs_env.app.slow("/hold", 1.0)
    connection = await runs_env.connect("full")
    holder = await runs_env.instance(
        {"hold": http(runs_env.url("/hold"))}, connection_id=connection
    )
    queued = await runs_env.instance({"a": transform("input")}, connection_id=connection)
    first = await runs_env.start(holder)
    ids = [(await runs_env.start(queued))["id"] for _ in range(RUN_OPTIONS.run_queue_limit)]
    refused = await runs_env.start(queued, expect=429)
    assert refused["error"]["code"] == "queue_full"
    for run_id in [first["id"], *ids]:
        await runs_env.request("POST", f"/flow-runs/{run_id}/stop")


async def test_runs_api_list_filters_and_pages(runs_env: RunsEnv) -> None:
    a = await runs_env.instance({"a": transform("input")}, customer="list-a")
    b = await runs_env.instance({"a": transform("input")}, customer="list-b")
    runs = [await runs_env.start(a, {"n": n}) for n in range(3)] + [await runs_env.start(b)]
    for run in runs:
        await runs_env.ended(run["id"])
    status, page = await runs_env.request("GET", f"/flow-runs?flowInstanceId={a}&limit=2")
    assert status == 200, page
    assert [r["input"] for r in page["items"]] == [{"n": 2}, {"n": 1}]  # newest first
    status, rest = await runs_env.request(
        "GET", f"/flow-runs?flowInstanceId={a}&limit=2&cursor={page['cursor']}"
    )
    assert [r["input"] for r in rest["items"]] == [{"n": 0}]
    assert rest["cursor"] is None
    status, mine = await runs_env.request("GET", "/flow-runs?customerId=list-b&state=completed")
    assert [r["id"] for r in mine["items"]] == [runs[3]["id"]]
    assert mine["items"][0]["nodes"]["a"]["state"] == "completed"


async def test_runs_api_customers_see_only_their_own(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance({"a": transform("input")}, customer="owner")
    owner = bearer(await runs_env.ws.customer_token("owner"))
    intruder = bearer(await runs_env.ws.customer_token("intruder"))
    run = await runs_env.start(instance, headers=owner)
    await runs_env.ended(run["id"])
    status, listed = await runs_env.request("GET", "/flow-runs", headers=owner)
    assert [r["id"] for r in listed["items"]] == [run["id"]]
    status, listed = await runs_env.request("GET", "/flow-runs", headers=intruder)
    assert listed["items"] == []
    status, listed = await runs_env.request("GET", "/flow-runs?customerId=owner", headers=intruder)
    assert status == 200
    assert listed["items"] == []
    await _all_404(runs_env, instance, run["id"], intruder)
    other = await runs_env.ws.stack.bus.call(*_workspace_create())
    stranger = bearer(await _admin_of(runs_env, other.key))
    await _all_404(runs_env, instance, run["id"], stranger)
    _, listed = await runs_env.request("GET", "/flow-runs", headers=stranger)
    assert listed["items"] == []


async def _all_404(env: RunsEnv, instance: str, run_id: str, headers: dict[str, str]) -> None:
    for method, path, body in (
        ("POST", f"/flow-instances/{instance}/run", {"input": None}),
        ("GET", f"/flow-runs/{run_id}", None),
        ("GET", f"/flow-runs/{run_id}/nodes/a", None),
        ("POST", f"/flow-runs/{run_id}/stop", {}),
        ("POST", f"/flow-runs/{run_id}/rerun", {}),
    ):
        status, reply = await env.request(method, path, body, headers=headers)
        assert status == 404, (method, path, reply)


def _workspace_create() -> tuple[Any, Any]:
    return identity.WORKSPACE_CREATE, identity.WorkspaceCreateRequest(
        name=f"other-{secrets.token_hex(3)}", ctx=SYSTEM
    )


async def _admin_of(env: RunsEnv, key: str) -> str:
    minted = await env.ws.stack.bus.call(
        identity.TOKEN_MINT, identity.TokenMintRequest(workspace_key=key, ctx=SYSTEM, admin=True)
    )
    return minted.token


async def test_runs_api_bad_input_names_the_field(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance({"a": transform("input")})
    run = await runs_env.start(instance)
    await runs_env.ended(run["id"])
    for method, path, body, field in (
        ("POST", "/flow-instances/not-a-uuid/run", {}, "id"),
        ("POST", f"/flow-instances/{instance}/run", {"input": 1, "extra": 2}, "extra"),
        ("GET", "/flow-runs?state=bogus", None, "state"),
        ("GET", "/flow-runs?limit=0", None, "limit"),
        ("GET", "/flow-runs?from=yesterday", None, "from"),
        ("GET", "/flow-runs?cursor=%21%21", None, "cursor"),
        ("GET", "/flow-runs/nope", None, "id"),
        ("GET", f"/flow-runs/{run['id']}/nodes/{'k' * 201}", None, "key"),
        ("POST", "/flow-runs/nope/stop", {}, "id"),
        ("POST", f"/flow-runs/{run['id']}/rerun", {"fromNode": "ghost"}, "fromNode"),
        ("POST", f"/flow-runs/{run['id']}/rerun", {"fromNode": ""}, "fromNode"),
    ):
        status, reply = await runs_env.request(method, path, body)
        assert status == 422, (method, path, reply)
        assert reply["error"]["details"][0]["field"] == field, (path, reply)
    status, reply = await runs_env.request("GET", f"/flow-runs/{run['id']}/nodes/ghost")
    assert status == 404, reply


async def test_runs_api_run_reads_as_documented(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance({"a": transform("input.x")})
    run = await runs_env.ended((await runs_env.start(instance, {"x": 5}))["id"])
    assert set(run) >= {
        "id",
        "flowInstanceId",
        "flowId",
        "revision",
        "connectionId",
        "customerId",
        "state",
        "trigger",
        "input",
        "startedAt",
        "endedAt",
        "errors",
        "nodes",
    }
    assert run["nodes"]["a"] == {"state": "completed", "runs": 1, "errors": []}
    status, page = await runs_env.request("GET", f"/flow-runs/{run['id']}/nodes/a")
    assert status == 200
    assert page["type"] == "transform"
    [execution] = page["items"]
    assert execution["output"] == 5
    assert execution["input"] == {"expression": "input.x"}
    assert execution["outputSize"] == 1
    assert execution["durationMs"] >= 0
