"""Steer runs: stop one, or run one again (from a node, reusing what came before it)."""

from __future__ import annotations

from uuid import UUID

from libs.common import jobs
from libs.common.contracts import flows as c
from libs.common.contracts.base import Context
from libs.common.db import Conn
from libs.common.errors import Conflict, InvalidInput, NotFound
from services.flows.metrics import FlowsMetrics
from services.flows.runs import store
from services.flows.runs.events import announce
from services.flows.runs.start import start_run
from services.flows.runs.store import RunRecord
from services.flows.settings import FlowsOptions


async def visible_run(conn: Conn, ctx: Context, run_id: UUID) -> RunRecord:
    """Return a run the caller may see (its customer's own; an admin's workspace's), or 404."""
    run = await store.select_run(conn, ctx.workspace(), run_id)
    if run is None or not ctx.sees(run.customer_id):
        raise NotFound("flow run not found")
    return run


async def stop_run(
    conn: Conn, ctx: Context, run_id: UUID, *, metrics: FlowsMetrics | None = None
) -> c.FlowRun:
    """Stop a run before its next node; a queued or waiting run stops at once.

    A run stopped here is counted in ``metrics`` (a running one is counted by its runner).

    Run in a transaction. The pending job (a queued run's, or a waiting run's continuation)
    is cancelled *before* the run row is locked: a claim takes the job's row and then the
    run's, and taking them in the same order here keeps the two from deadlocking. A job
    already claimed cannot be cancelled; its runner sees the stop flag before its next node.
    """
    run = await visible_run(conn, ctx, run_id)
    if run.ended:
        return await store.view(conn, run)
    cancelled = await jobs.cancel(conn, run.workspace_id, [run.job_id]) if run.job_id else []
    locked = await store.lock_run(conn, run.workspace_id, run.id)
    assert locked is not None
    if locked.ended:
        return await store.view(conn, locked)
    await store.request_stop(conn, run.workspace_id, run.id)
    if cancelled and locked.job_id == cancelled[0].id:
        # Nothing executes this run now: it ends here (a delay is over at once).
        await store.end_waits(conn, run.workspace_id, run.id)
        row = await store.end_run(conn, run.workspace_id, run.id, "stopped", locked.errors)
        if row is not None:
            await announce(conn, row)
            if metrics is not None:
                metrics.run_ended("stopped")
            return await store.view(conn, row)
    again = await store.select_run(conn, run.workspace_id, run.id)
    assert again is not None
    return await store.view(conn, again)


async def rerun(
    conn: Conn, ctx: Context, run_id: UUID, from_node: str | None, options: FlowsOptions
) -> c.FlowRun:
    """Start a new run of the same definition snapshot and input (in the caller's transaction).

    With ``from_node`` (a node of the run's flow) the original must have ended: every node
    that is not ``from_node`` or reachable from it reuses the original's completed
    executions (marked ``reused``; no app is called for them) instead of running.
    """
    original = await visible_run(conn, ctx, run_id)
    if from_node is not None:
        if from_node not in original.definition.nodes:
            raise InvalidInput(
                f"fromNode: the run's flow has no node {from_node!r}",
                details=[{"field": "fromNode", "message": "not a node of the run's flow"}],
            )
        if not original.ended:
            raise Conflict("a run can be rerun from a node once it has ended", code="run_not_ended")
    run, _ = await start_run(
        conn,
        workspace_id=original.workspace_id,
        instance_id=original.flow_instance_id,
        ctx=ctx,
        input=original.input,
        trigger=c.RunTrigger(type="rerun", rerun_of=original.id, from_node=from_node),
        dedupe_key=None,
        options=options,
        rerun_of=original,
        from_node=from_node,
    )
    return run
