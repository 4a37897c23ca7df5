"""Start runs: the one way every trigger (the API, app events, schedules, data records,
reruns) creates a run.

A run is created queued, with the job that will execute it and its ``flow_run.queued``
event, in the caller's transaction: all three commit together or not at all. It snapshots
the instance's *effective* definition (base revision + customisation) and parameter
values, so a run never changes under a later edit and a rerun executes the same revision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from jsonschema import Draft202012Validator

from libs.common import jobs
from libs.common.contracts import flows as c
from libs.common.contracts.base import Context
from libs.common.db import Conn
from libs.common.errors import Conflict, InvalidInput, NotFound, RateLimited
from services.flows import store as flows_store
from services.flows.flow_instances import effective
from services.flows.runs import store
from services.flows.runs.events import announce
from services.flows.runs.graph import reachable
from services.flows.runs.store import RunRecord
from services.flows.settings import FlowsOptions

QUEUE = "flow_runs"
"""The job queue of runs (partitioned by connection)."""
RUN_JOB = "run"
API_KEY_HOLD = 24 * 3600.0
"""Seconds an API ``Idempotency-Key`` returns the same run; then it is free again."""


def run_job(
    run: store.RunRow,
    options: FlowsOptions,
    *,
    not_before: datetime | None = None,
    dedupe_key: str | None = None,
    job_id: UUID | None = None,
) -> jobs.JobSpec:
    """Return the job that executes (or resumes) ``run`` on its connection's partition."""
    return jobs.JobSpec(
        id=job_id or uuid4(),
        queue=QUEUE,
        kind=RUN_JOB,
        payload={"runId": str(run.id)},
        workspace_id=run.workspace_id,
        partition_key=str(run.connection_id),
        max_attempts=options.run_max_attempts,
        not_before=not_before,
        dedupe_key=dedupe_key,
    )


def input_problems(schema: dict[str, Any] | None, value: Any) -> list[dict[str, str]]:
    """Return how ``value`` fails the api trigger's ``inputSchema``, each naming its field."""
    if not schema:
        return []
    return [
        {"field": ".".join(["input", *map(str, e.absolute_path)]), "message": e.message}
        for e in sorted(
            Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path)
        )
    ]


async def start_run(
    conn: Conn,
    *,
    workspace_id: UUID,
    instance_id: UUID,
    ctx: Context | None,
    input: Any,
    trigger: c.RunTrigger,
    dedupe_key: str | None,
    options: FlowsOptions,
    rerun_of: RunRecord | None = None,
    from_node: str | None = None,
) -> tuple[c.FlowRun, bool]:
    """Create a queued run of the instance (and its job, and flow_run.queued) in the caller's
    transaction; return (run, created). ctx None = system (triggers); a customer ctx sees only
    its own instances (NotFound otherwise). Raises NotFound, Conflict(code="flow_instance_disabled")
    for a disabled/archived instance, InvalidInput naming "input.<path>" when the input does not
    match the api trigger's inputSchema, RateLimited(code="queue_full") when the connection has
    run_queue_limit queued runs. A dedupe_key already used by this instance returns the first
    run, created False (api keys "api:<key>" only within 24 h; older ones are released).

    A rerun (``rerun_of``) executes the original's definition snapshot, parameter values and
    input; with ``from_node`` the original's completed executions of every node that is not
    ``from_node`` or reachable from it are copied (reused) instead of running again.
    """
    instance = await flows_store.select_instance(conn, workspace_id, instance_id)
    if instance is None or (ctx is not None and not ctx.sees(instance.customer_id)):
        raise NotFound("flow instance not found")
    if dedupe_key is not None:
        if dedupe_key.startswith("api:"):
            await store.release_dedupe(conn, workspace_id, instance_id, dedupe_key, API_KEY_HOLD)
        first = await store.select_deduped(conn, workspace_id, instance_id, dedupe_key)
        if first is not None:
            return await store.view(conn, first), False
    if not instance.enabled or instance.archived_at is not None:
        raise Conflict("the flow instance is disabled", code="flow_instance_disabled")
    if rerun_of is not None:
        definition, parameters = rerun_of.definition, rerun_of.parameters
        revision, input = rerun_of.revision, rerun_of.input
    else:
        definition, parameters = await effective(conn, instance)
        revision = instance.base_revision
        if trigger.type == "api" and isinstance(definition.trigger, c.ApiTrigger):
            problems = input_problems(definition.trigger.input_schema, input)
            if problems:
                raise InvalidInput(
                    f"{problems[0]['field']}: {problems[0]['message']}", details=problems
                )
    if await store.count_queued(conn, workspace_id, instance.connection_id) >= (
        options.run_queue_limit
    ):
        raise RateLimited(
            f"this connection has {options.run_queue_limit} queued runs; try again later",
            code="queue_full",
        )
    run_id, job_id = uuid4(), uuid4()
    record = await store.insert_run(
        conn,
        id=run_id,
        workspace_id=workspace_id,
        instance_id=instance_id,
        flow_id=instance.flow_id,
        revision=revision,
        connection_id=instance.connection_id,
        customer_id=instance.customer_id,
        integration_key=instance.integration_key,
        trigger=trigger,
        input=input,
        definition=definition,
        parameters=parameters,
        dedupe_key=dedupe_key,
        rerun_of=rerun_of.id if rerun_of else None,
        from_node=from_node,
        job_id=job_id,
    )
    if record is None:  # a concurrent start with the same key committed first
        assert dedupe_key is not None
        first = await store.select_deduped(conn, workspace_id, instance_id, dedupe_key)
        if first is None:
            raise Conflict("a run with this key is being started", code="run_starting")
        return await store.view(conn, first), False
    await jobs.enqueue(conn, run_job(record, options, job_id=job_id))
    nodes: dict[str, c.NodeSummary] = {}
    if rerun_of is not None and from_node is not None:
        kept = sorted(set(definition.nodes) - reachable(definition.nodes, from_node))
        if kept and await store.copy_reused(conn, workspace_id, rerun_of.id, run_id, kept):
            nodes = (await store.summaries(conn, workspace_id, [run_id]))[run_id]
    await announce(conn, record)
    return store.reply(record, nodes), True
