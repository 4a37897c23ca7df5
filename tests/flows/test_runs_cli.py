"""``tether runs start`` and ``tether runs log`` against a running stack's gateway."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.flows.runs_stack import RunsEnv


def _nodes(url: str) -> dict[str, object]:
    return {
        "shape": {
            "type": "transform",
            "config": {"expression": "{email: input.email}"},
            "links": [{"to": "post"}],
        },
        "post": {
            "type": "http-request",
            "config": {"url": url, "method": "POST", "body": {"$expr": "nodes.shape"}},
        },
    }


async def test_runs_cli_starts_a_run_waits_and_prints_its_log(runs_env: RunsEnv) -> None:
    instance = await runs_env.instance(_nodes(runs_env.url("/cli")))
    token = runs_env.admin["Authorization"].removeprefix("Bearer ")
    target = ["--gateway", runs_env.ws.url(""), "--token", token]
    code, out = await run_cli(
        "runs",
        "start",
        instance,
        "--input",
        '{"email": "a@example.com"}',
        "--wait",
        "--idempotency-key",
        "cli-1",
        *target,
    )
    assert code == 0, out
    assert "completed" in out
    assert "- post (http-request): completed" in out
    assert '"a@example.com"' in out
    run_id = out.split()[1]
    assert runs_env.app.count(f"{run_id}:post") == 1
    assert runs_env.app.bodies("/cli") == [{"email": "a@example.com"}]

    code, out = await run_cli("runs", "log", run_id, "--json", *target)
    assert code == 0, out
    logged = json.loads(out)
    assert logged["run"]["id"] == run_id
    assert logged["nodes"]["shape"]["items"][0]["output"] == {"email": "a@example.com"}

    # The same key starts nothing new; bad input is the gateway's 422, printed, exit 2.
    code, out = await run_cli(
        "runs", "start", instance, "--idempotency-key", "cli-1", "--json", *target
    )
    assert code == 0
    assert json.loads(out)["id"] == run_id
    code, out = await run_cli("runs", "log", "not-a-uuid", *target)
    assert code == 2
    assert "422" in out
