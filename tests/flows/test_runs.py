"""Run execution: the graph walk, records, retries, onError, delays, for-each, stop, rerun,
limits, per-connection order and fairness, retention."""

from __future__ import annotations

import itertools
from typing import Any

from tests.conftest import eventually
from tests.flows.runs_stack import RunsEnv


def transform(expression: str, *to: str) -> dict[str, Any]:
    """Return a transform node linking to ``to``."""
    return {
        "type": "transform",
        "config": {"expression": expression},
        "links": [{"to": t} for t in to],
    }


def http(url: str, *to: str, **extra: Any) -> dict[str, Any]:
    """Return an http-request node (POST) linking to ``to``."""
    return {
        "type": "http-request",
        "config": {"url": url, "method": "POST", "body": {"$expr": "input"}},
        "links": [{"to": t} for t in to],
        **extra,
    }


async def test_runs_three_transforms_complete_with_outputs(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance(
        {
            "a": transform("input.n", "b"),
            "b": transform("{doubled: sum([nodes.a, nodes.a])}", "c"),
            "c": transform("{out: nodes.b.doubled, who: customer.id, conn: connection.id}"),
        }
    )
    started = await runs_env.start(instance, {"n": 21})
    assert started["state"] == "queued"
    assert started["trigger"] == {"type": "api"} or started["trigger"]["type"] == "api"
    run = await runs_env.ended(started["id"])
    assert run["state"] == "completed", run
    assert {k: (v["state"], v["runs"]) for k, v in run["nodes"].items()} == {
        "a": ("completed", 1),
        "b": ("completed", 1),
        "c": ("completed", 1),
    }
    [c] = await runs_env.executions(run["id"], "c")
    assert c["output"]["out"] == 42
    assert c["output"]["who"] == "cust"
    assert c["output"]["conn"] == run["connectionId"]
    assert c["attempts"] == 1
    assert c["startedAt"]
    assert c["endedAt"]


async def test_runs_filter_ends_its_branch_not_the_run(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance(
        {
            "gate": {"type": "filter", "config": {"condition": "input.go"}, "links": [{"to": "b"}]},
            "b": transform("'after gate'", "d"),
            "c": transform("'other branch'", "d"),
            "d": transform("[nodes.b, nodes.c]"),
        }
    )
    run = await runs_env.ended((await runs_env.start(instance, {"go": False}))["id"])
    assert run["state"] == "completed", run
    states = {k: v["state"] for k, v in run["nodes"].items()}
    assert states == {"gate": "completed", "b": "skipped", "c": "completed", "d": "completed"}
    [d] = await runs_env.executions(run["id"], "d")
    assert d["output"] == [None, "other branch"]  # d ran: one predecessor passed


async def test_runs_side_effect_once_with_its_idempotency_key(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance({"send": http(runs_env.url("/orders"))})
    run = await runs_env.ended((await runs_env.start(instance, {"order": 7}))["id"])
    assert run["state"] == "completed", run
    assert runs_env.app.count(f"{run['id']}:send") == 1
    assert runs_env.app.bodies("/orders") == [{"order": 7}]


async def test_runs_transient_errors_are_retried_with_the_same_key(runs_env: RunsEnv) -> None:
    runs_env.app.fail("/flaky", 503, times=2)
    instance = await runs_env.instance(
        {"send": http(runs_env.url("/flaky"), retry={"attempts": 3, "backoff": 0.05})}
    )
    run = await runs_env.ended((await runs_env.start(instance))["id"])
    assert run["state"] == "completed", run
    [send] = await runs_env.executions(run["id"], "send")
    assert send["attempts"] == 3
    assert runs_env.app.count(f"{run['id']}:send") == 3  # three tries, one key


async def test_runs_client_errors_fail_at_once_and_stop_the_run(runs_env: RunsEnv) -> None:
    runs_env.app.fail("/bad", 400)
    instance = await runs_env.instance(
        {"send": http(runs_env.url("/bad"), "after"), "after": http(runs_env.url("/after"))}
    )
    run = await runs_env.ended((await runs_env.start(instance))["id"])
    assert run["state"] == "failed"
    assert run["errors"][0]["node"] == "send"
    assert run["errors"][0]["code"] == "http_error"
    assert run["nodes"]["send"]["runs"] == 1
    [send] = await runs_env.executions(run["id"], "send")
    assert send["attempts"] == 1
    assert send["error"]["data"]["status"] == 400
    assert runs_env.app.on("/after") == []


async def test_runs_retry_policy_caps_the_tries(runs_env: RunsEnv) -> None:
    runs_env.app.fail("/down", 500, times=None)
    instance = await runs_env.instance(
        {"send": http(runs_env.url("/down"), retry={"attempts": 2, "backoff": 0.05})}
    )
    run = await runs_env.ended((await runs_env.start(instance))["id"])
    assert run["state"] == "failed"
    assert runs_env.app.count(f"{run['id']}:send") == 2


async def test_runs_on_error_continue_goes_on(runs_env: RunsEnv) -> None:
    runs_env.app.fail("/bad", 404)
    instance = await runs_env.instance(
        {
            "send": http(runs_env.url("/bad"), "next", onError="continue"),
            "next": transform("{before: nodes.send}"),
        }
    )
    run = await runs_env.ended((await runs_env.start(instance))["id"])
    assert run["state"] == "completed", run
    assert [e["node"] for e in run["errors"]] == ["send"]
    assert run["nodes"]["send"]["state"] == "failed"
    [after] = await runs_env.executions(run["id"], "next")
    assert after["output"] == {"before": None}


async def test_runs_delay_waits_durably_then_goes_on(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance(
        {
            "wait": {"type": "delay", "config": {"seconds": 1}, "links": [{"to": "send"}]},
            "send": http(runs_env.url("/later")),
        }
    )
    run_id = (await runs_env.start(instance))["id"]

    async def waiting() -> bool:
        run = await runs_env.run(run_id)
        return bool(run["nodes"].get("wait", {}).get("state") == "waiting")

    await eventually(waiting)
    assert runs_env.app.on("/later") == []
    run = await runs_env.ended(run_id)
    assert run["state"] == "completed", run
    [wait] = await runs_env.executions(run_id, "wait")
    assert wait["state"] == "completed"
    assert len(runs_env.app.on("/later")) == 1


async def test_runs_stop_mid_delay_ends_at_once(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance(
        {
            "wait": {"type": "delay", "config": {"seconds": 600}, "links": [{"to": "send"}]},
            "send": http(runs_env.url("/never")),
        }
    )
    run_id = (await runs_env.start(instance))["id"]

    async def waiting() -> bool:
        return bool((await runs_env.run(run_id))["nodes"].get("wait", {}).get("state") == "waiting")

    await eventually(waiting)
    status, stopped = await runs_env.request("POST", f"/flow-runs/{run_id}/stop")
    assert status == 200, stopped
    assert stopped["state"] == "stopped"
    assert stopped["endedAt"]
    assert stopped["nodes"]["wait"]["state"] == "completed"
    assert runs_env.app.on("/never") == []


async def test_runs_stop_queued_run_at_once(runs_env: RunsEnv) -> None:
    runs_env.app.slow("/hold", 1.5)
    connection = await runs_env.connect("cust")
    holder = await runs_env.instance(
        {"hold": http(runs_env.url("/hold"))}, connection_id=connection
    )
    other = await runs_env.instance(
        {"send": http(runs_env.url("/queued"))}, connection_id=connection
    )
    first = (await runs_env.start(holder))["id"]
    await eventually(lambda: _arrived(runs_env, "/hold"))
    queued = await runs_env.start(other)
    status, stopped = await runs_env.request("POST", f"/flow-runs/{queued['id']}/stop")
    assert status == 200
    assert stopped["state"] == "stopped"
    assert (await runs_env.ended(first))["state"] == "completed"
    assert (await runs_env.run(queued["id"]))["state"] == "stopped"
    assert runs_env.app.on("/queued") == []


async def test_runs_stop_running_run_before_its_next_node(runs_env: RunsEnv) -> None:
    runs_env.app.slow("/hold", 1.0)
    instance = await runs_env.instance(
        {"hold": http(runs_env.url("/hold"), "next"), "next": http(runs_env.url("/next"))}
    )
    run_id = (await runs_env.start(instance))["id"]
    await eventually(lambda: _arrived(runs_env, "/hold"))
    status, reply = await runs_env.request("POST", f"/flow-runs/{run_id}/stop")
    assert status == 200, reply
    run = await runs_env.ended(run_id)
    assert run["state"] == "stopped"
    assert run["nodes"]["hold"]["state"] == "completed"  # the node in flight finished
    assert "next" not in run["nodes"]
    assert runs_env.app.on("/next") == []


async def _arrived(env: RunsEnv, path: str) -> bool:
    return bool(env.app.on(path))


async def test_runs_rerun_from_a_node_reuses_what_came_before(runs_env: RunsEnv) -> None:
    runs_env.app.fail("/two", 400)
    instance = await runs_env.instance(
        {
            "one": http(runs_env.url("/one"), "two"),
            "two": http(runs_env.url("/two"), "three"),
            "three": transform("nodes.one.body.body"),
        }
    )
    original = await runs_env.ended((await runs_env.start(instance, {"x": 1}))["id"])
    assert original["state"] == "failed"
    assert len(runs_env.app.on("/one")) == 1
    status, rerun = await runs_env.request(
        "POST", f"/flow-runs/{original['id']}/rerun", {"fromNode": "two"}
    )
    assert status == 202, rerun
    assert rerun["trigger"]["type"] == "rerun"
    assert rerun["trigger"]["rerunOf"] == original["id"]
    assert rerun["trigger"]["fromNode"] == "two"
    assert rerun["revision"] == original["revision"]
    done = await runs_env.ended(rerun["id"])
    assert done["state"] == "completed", done
    assert done["input"] == {"x": 1}
    assert len(runs_env.app.on("/one")) == 1  # reused: the app saw no second call
    assert runs_env.app.count(f"{rerun['id']}:one") == 0
    assert runs_env.app.count(f"{rerun['id']}:two") == 1
    [one] = await runs_env.executions(rerun["id"], "one")
    assert one["reused"] is True
    [three] = await runs_env.executions(rerun["id"], "three")
    assert three["output"] == {"x": 1}
    # Without fromNode everything runs again.
    status, again = await runs_env.request("POST", f"/flow-runs/{original['id']}/rerun", {})
    assert status == 202
    assert (await runs_env.ended(again["id"]))["state"] == "completed"
    assert runs_env.app.count(f"{again['id']}:one") == 1


async def test_runs_for_each_runs_items_with_bounded_parallelism(runs_env: RunsEnv) -> None:
    runs_env.app.slow("/item", 0.2)
    instance = await runs_env.instance(
        {
            "each": {
                "type": "for-each",
                "config": {
                    "items": {"$expr": "input.items"},
                    "parallelism": 2,
                    "nodes": {
                        "call": {
                            "type": "http-request",
                            "config": {
                                "url": runs_env.url("/item"),
                                "method": "POST",
                                "body": {"$expr": "{item: item, index: index}"},
                            },
                            "links": [{"to": "shape"}],
                        },
                        "shape": {
                            "type": "transform",
                            "config": {"expression": "nodes.call.body.body"},
                        },
                    },
                },
            }
        }
    )
    run = await runs_env.ended((await runs_env.start(instance, {"items": ["a", "b", "c"]}))["id"])
    assert run["state"] == "completed", run
    assert run["nodes"]["each.call"]["runs"] == 3
    [each] = await runs_env.executions(run["id"], "each")
    assert [o["shape"] for o in each["output"]] == [
        {"item": "a", "index": 0},
        {"item": "b", "index": 1},
        {"item": "c", "index": 2},
    ]
    calls = await runs_env.executions(run["id"], "each.call")
    assert [c["item"] for c in calls] == ["0", "1", "2"]
    for i in range(3):
        assert runs_env.app.count(f"{run['id']}:each.call:{i}") == 1


async def test_runs_limits_fail_the_run(runs_env: RunsEnv) -> None:
    big = await runs_env.instance({"big": transform("input")})
    run = await runs_env.ended((await runs_env.start(big, "x" * 30_000))["id"])
    assert run["state"] == "failed"
    assert run["errors"][0]["code"] == "output_too_large"
    [node] = await runs_env.executions(run["id"], "big")
    assert node["outputDropped"] is True
    assert node["outputSize"] > 20_000
    loop = await runs_env.instance(
        {
            "each": {
                "type": "for-each",
                "config": {
                    "items": {"$expr": "input"},
                    "nodes": {"t": {"type": "transform", "config": {"expression": "item"}}},
                },
            }
        }
    )
    run = await runs_env.ended((await runs_env.start(loop, list(range(60))))["id"])
    assert run["state"] == "failed"
    assert run["errors"][-1]["code"] == "too_many_nodes"
    runs_env.app.slow("/slow", 3.0)
    slow = await runs_env.instance(
        {"a": http(runs_env.url("/slow"), "b"), "b": http(runs_env.url("/slow"))}
    )
    run = await runs_env.ended((await runs_env.start(slow))["id"], timeout=30)
    assert run["state"] == "failed"
    assert run["errors"][-1]["code"] == "run_timeout"


async def test_runs_of_one_connection_run_one_at_a_time_in_order(runs_env: RunsEnv) -> None:
    runs_env.app.slow("/order", 0.2)
    connection = await runs_env.connect("ordered")
    instance = await runs_env.instance(
        {"send": http(runs_env.url("/order"))}, connection_id=connection
    )
    ids = [(await runs_env.start(instance, {"n": n}))["id"] for n in range(5)]
    runs = [await runs_env.ended(run_id) for run_id in ids]
    assert [r["state"] for r in runs] == ["completed"] * 5
    assert runs_env.app.bodies("/order") == [{"n": n} for n in range(5)]
    for before, after in itertools.pairwise(runs):
        assert after["startedAt"] >= before["endedAt"]  # never two at once


async def test_runs_deep_queue_does_not_delay_another_connection(runs_env: RunsEnv) -> None:
    runs_env.app.slow("/deep", 0.4)
    deep = await runs_env.instance({"send": http(runs_env.url("/deep"))}, customer="deep")
    other = await runs_env.instance({"send": http(runs_env.url("/other"))}, customer="other")
    deep_ids = [(await runs_env.start(deep, {"n": n}))["id"] for n in range(10)]
    quick = await runs_env.ended((await runs_env.start(other))["id"])
    assert quick["state"] == "completed"
    states = [(await runs_env.run(run_id))["state"] for run_id in deep_ids]
    assert states.count("queued") >= 5, states  # the deep queue is far from drained
    for run_id in deep_ids:  # leave nothing running behind
        await runs_env.request("POST", f"/flow-runs/{run_id}/stop")


async def test_runs_retention_drops_node_io_keeps_the_summary(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance({"a": transform("input", "b"), "b": transform("nodes.a")})
    run = await runs_env.ended((await runs_env.start(instance, {"secret": "old"}))["id"])
    pool = await runs_env.ws.stack.pool("flows")
    try:
        await pool.execute(
            "UPDATE flow_runs SET ended_at = now() - interval '31 days'"
            " WHERE workspace_id = $1 AND id = $2",
            runs_env.ws.id,
            run["id"],
        )

        async def dropped() -> bool:
            found = [e for key in ("a", "b") for e in await runs_env.executions(run["id"], key)]
            return all(e["outputDropped"] and e["output"] is None for e in found) and all(
                e["input"] is None for e in found
            )

        await eventually(dropped)
    finally:
        await pool.close()
    kept = await runs_env.run(run["id"])
    assert kept["state"] == "completed"
    assert kept["input"] == {"secret": "old"}
    assert kept["nodes"]["a"]["state"] == "completed"


async def test_runs_events_follow_the_state(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance({"a": transform("input")})
    run = await runs_env.ended((await runs_env.start(instance))["id"])
    pool = await runs_env.ws.stack.pool("flows")
    try:
        subjects = [
            r["subject"]
            for r in await pool.fetch(
                "SELECT subject FROM outbox WHERE workspace_id = $1"
                " AND payload->>'flowRunId' = $2 ORDER BY created_at",
                runs_env.ws.id,
                run["id"],
            )
        ]
    finally:
        await pool.close()
    assert subjects == [
        "tether.evt.flows.flow_run.queued",
        "tether.evt.flows.flow_run.started",
        "tether.evt.flows.flow_run.completed",
    ]
