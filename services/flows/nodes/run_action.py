"""The ``run-action`` node: run the connection's instance of an action, from a flow.

The instances service runs it (``tether.instances.action_instances.run_on_connection``,
called as the system for the run's workspace and connection): the action instance's
effective definition, its input check, the call through the connections proxy and the
run log are all there; this node passes the input and the idempotency key and maps the
answer. The key is the node's (``<runId>:<nodeKey>[:<item>]``), the same on every retry,
so a retried node answers the first run's stored result instead of calling the app again.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from libs.common.contracts import instances
from libs.common.contracts.base import Key
from services.flows.nodes.base import NodeCall, NodeConfig, NodeResult, NodeType
from services.flows.nodes.system_call import call_system, system_context

IN_PROGRESS = "action_run_in_progress"
"""The node's earlier try is still running at the app: try again later."""


class RunActionConfig(NodeConfig):
    """Run an action instance of the run's connection."""

    action_key: Key = Field(alias="actionKey")
    input: Any = Field(default_factory=dict)


class RunAction(NodeType):
    """Run the connection's instance of an action and pass its output on."""

    name = "run-action"
    config = RunActionConfig
    docs = (
        "Runs the run's connection's instance of an action (see /actions): its effective "
        "definition with the instance's customisation and parameter values. Config: "
        "`actionKey`, and `input` (any JSON, usually an object; may be an expression), "
        "checked against the action's inputSchema. The action calls the app through the "
        "connection (credentials never reach the flow) with `Idempotency-Key: "
        "<runId>:<nodeKey>[:<item>]`, the same on every retry; a retry of a node whose "
        "first try finished answers that try's stored result without calling the app "
        "again. Output: the action's output (its outputMapping over the app's answer). "
        "Errors, as the action answers them: `app_unavailable` (the app failed with 5xx or "
        "could not be reached), `action_timeout`, `action_run_in_progress` (retried); "
        "`app_rejected` (the app refused with 4xx; `data` holds its status and message), "
        "`invalid_input` (the input does not match the inputSchema), "
        "`action_instance_not_found` (the connection has no instance of the action), "
        "`action_instance_disabled`, `not_implemented_for_integration`, "
        "`connection_not_connected` (not retried)."
    )

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Ask the instances service to run the action; map its answer."""
        assert isinstance(config, RunActionConfig)
        request = instances.ActionRunOnConnectionRequest(
            action_key=config.action_key,
            connection_id=call.connection_id,
            input=config.input,
            idempotency_key=call.idempotency_key,
            ctx=system_context(call),
        )
        result = await call_system(
            call,
            instances.ACTION_INSTANCES_RUN_ON_CONNECTION,
            request,
            f"action {config.action_key}",
            transient_codes=frozenset({IN_PROGRESS}),
        )
        call.log(
            "action_ran",
            action_key=config.action_key,
            action_run_id=str(result.action_run_id),
            replayed=result.replayed,
        )
        return NodeResult(output=result.output)
