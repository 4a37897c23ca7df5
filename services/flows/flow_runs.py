"""Answer flow-run operations: start, list, read (a run, a node's executions), stop, rerun.

Customers see only their own runs; admins their workspace's; anything else is 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from libs.common.contracts import flows as c
from libs.common.contracts.base import Context
from libs.common.errors import Forbidden, NotFound
from libs.common.paging import decode_time_uuid_cursor, encode_cursor
from services.flows.metrics import FlowsMetrics
from services.flows.nodes.for_each import inner_graph
from services.flows.runs import control, store
from services.flows.runs.start import start_run
from services.flows.runs.store import NodeRecord
from services.flows.settings import FlowsOptions


def _caller(ctx: Context) -> None:
    ctx.workspace()
    if ctx.principal == "anonymous":
        raise Forbidden("this operation needs a token")


def _before(cursor: str | None) -> tuple[datetime, UUID] | None:
    return decode_time_uuid_cursor(cursor) if cursor else None


def node_types(definition: c.FlowDefinition) -> dict[str, str]:
    """Return every node key a run of ``definition`` may record (for-each inner ones too)."""
    found: dict[str, str] = {}

    def add(nodes: dict[str, c.Node], prefix: str) -> None:
        for key, node in nodes.items():
            found[prefix + key] = node.type
            inner = inner_graph(node.config) if node.type == "for-each" else None
            if inner:
                add(inner, f"{prefix}{key}.")

    add(definition.nodes, "")
    return found


def execution(record: NodeRecord) -> c.NodeExecution:
    """Return one recorded execution as the API shows it."""
    duration = None
    if record.started_at and record.ended_at:
        duration = (record.ended_at - record.started_at).total_seconds() * 1000
    return c.NodeExecution(
        item=record.item or None,
        state=record.state,
        attempts=record.attempts,
        input=record.input,
        output=None if record.output_dropped else record.output,
        output_size=record.output_size,
        output_dropped=record.output_dropped,
        reused=record.reused,
        started_at=record.started_at,
        ended_at=record.ended_at,
        duration_ms=duration,
        logs=record.logs,
        error=record.error,
    )


class FlowRuns:
    """Flow-run handlers."""

    def __init__(
        self, pool: asyncpg.Pool[Any], options: FlowsOptions, metrics: FlowsMetrics | None = None
    ) -> None:
        self._pool = pool
        self._options = options
        self._metrics = metrics

    async def start(self, req: c.FlowRunStartRequest) -> c.FlowRun:
        """Queue a run of an instance (the same run again for the same Idempotency-Key)."""
        _caller(req.ctx)
        key = f"api:{req.idempotency_key}" if req.idempotency_key else None
        async with self._pool.acquire() as conn, conn.transaction():
            run, _ = await start_run(
                conn,
                workspace_id=req.ctx.workspace(),
                instance_id=req.id,
                ctx=req.ctx,
                input=req.input,
                trigger=c.RunTrigger(type="api"),
                dedupe_key=key,
                options=self._options,
            )
        return run

    async def list(self, req: c.FlowRunListRequest) -> c.FlowRunPage:
        """List runs, newest first (a customer's own)."""
        workspace_id = req.ctx.workspace()
        customer_id, visible = req.ctx.customer_filter(req.customer_id)
        if not visible:
            return c.FlowRunPage(items=[], cursor=None)
        async with self._pool.acquire() as conn:
            rows = await store.list_runs(
                conn,
                workspace_id,
                instance_id=req.flow_instance_id,
                flow_id=req.flow_id,
                connection_id=req.connection_id,
                customer_id=customer_id,
                state=req.state,
                created_from=req.from_,
                created_to=req.to,
                before=_before(req.cursor),
                limit=req.limit + 1,
            )
            page = rows[: req.limit]
            nodes = await store.summaries(conn, workspace_id, [r.id for r in page])
        cursor = None
        if len(rows) > req.limit and page:
            cursor = encode_cursor(page[-1].created_at.isoformat(), page[-1].id)
        return c.FlowRunPage(items=[store.reply(r, nodes[r.id]) for r in page], cursor=cursor)

    async def get(self, req: c.FlowRunGetRequest) -> c.FlowRun:
        """Read a run with its nodes at a glance and the definition it executes."""
        _caller(req.ctx)
        async with self._pool.acquire() as conn:
            run = await control.visible_run(conn, req.ctx, req.id)
            view = await store.view(conn, run)
        return view.model_copy(update={"definition": run.definition})

    async def node(self, req: c.FlowRunNodeRequest) -> c.NodeExecutionPage:
        """Read every execution of one node of a run (for-each inner nodes: ``<forEach>.<inner>``)."""
        _caller(req.ctx)
        async with self._pool.acquire() as conn:
            run = await control.visible_run(conn, req.ctx, req.id)
            records = await store.select_node(conn, run.workspace_id, run.id, req.key)
        known = node_types(run.definition)
        if not records and req.key not in known:
            raise NotFound("the run's flow has no such node")
        kind = records[0].type if records else known[req.key]
        return c.NodeExecutionPage(key=req.key, type=kind, items=[execution(r) for r in records])

    async def stop(self, req: c.FlowRunStopRequest) -> c.FlowRun:
        """Stop a run before its next node (a queued or waiting run at once)."""
        _caller(req.ctx)
        async with self._pool.acquire() as conn, conn.transaction():
            return await control.stop_run(conn, req.ctx, req.id, metrics=self._metrics)

    async def rerun(self, req: c.FlowRunRerunRequest) -> c.FlowRun:
        """Run again with the same revision and input (from a node: reuse what came before)."""
        _caller(req.ctx)
        async with self._pool.acquire() as conn, conn.transaction():
            return await control.rerun(conn, req.ctx, req.id, req.from_node, self._options)
