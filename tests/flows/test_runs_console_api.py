"""What the console's run page reads of the runs API: one run carries the definition it
executes (revision and customisation), so the diagram shows the nodes the run really has."""

from __future__ import annotations

from tests.flows.runs_stack import RunsEnv
from tests.flows.test_runs import transform


async def test_runs_console_api_run_carries_its_definition(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance({"a": transform("input", "b"), "b": transform("nodes.a")})
    status, customised = await runs_env.request(
        "PATCH",
        f"/flow-instances/{instance}",
        {
            "customization": {
                "nodes": {"c": {"type": "transform", "config": {"expression": "input.n"}}}
            }
        },
    )
    assert status == 200, customised
    run = await runs_env.ended((await runs_env.start(instance, {"n": 1}))["id"])
    assert run["state"] == "completed", run
    assert set(run["definition"]["nodes"]) == {"a", "b", "c"}
    assert run["definition"]["nodes"]["a"]["links"] == [{"to": "b"}]
    assert run["definition"]["trigger"]["type"] == "api"
    status, page = await runs_env.request("GET", f"/flow-runs?flowInstanceId={instance}")
    assert status == 200, page
    [listed] = page["items"]
    assert listed["id"] == run["id"]
    assert listed.get("definition") is None  # a list stays small
