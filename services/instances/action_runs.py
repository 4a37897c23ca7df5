"""Answer ``tether.instances.action_runs.*`` (run an action by key, read the log); sweep it.

How a run goes is ``action_runner.py``'s; this module checks who asks, reads the log and
sweeps it: a run's input and output are dropped after ``action_run_retention_days`` (the
row, its status, timings, request and error stay), as flow runs' are.
"""

from __future__ import annotations

import asyncpg

from libs.common import retention
from libs.common.bus import Bus
from libs.common.contracts import actions as c
from libs.common.errors import NotFound
from libs.common.paging import decode_time_uuid_cursor, keyset_page
from libs.common.rows import reply
from services.instances.action_instances import Definitions, connected
from services.instances.action_runner import ActionRunner
from services.instances.deployments import visible_connection
from services.instances.settings import InstancesOptions
from services.instances.store import action_runs as store

RETENTION_BATCH = 1000
"""Runs one transaction of a retention sweep changes at most."""


class ActionRuns:
    """Run an action by key; read the run log."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        bus: Bus,
        runner: ActionRunner,
        definitions: Definitions,
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._runner = runner
        self._definitions = definitions

    async def start(self, req: c.ActionRunRequest) -> c.ActionRunResult:
        """Run an action on a connection (its owning customer or an admin)."""
        known = connected(
            await visible_connection(self._pool, self._bus, req.ctx, req.connection_id)
        )
        async with self._pool.acquire() as conn:
            target = await self._definitions.target(conn, known, req.key, need_instance=False)
        return await self._runner.run(target, req.input, req.idempotency_key, req.ctx.request_id)

    async def list(self, req: c.ActionRunListRequest) -> c.ActionRunPage:
        """List runs newest first (a customer sees their own)."""
        workspace_id = req.ctx.workspace()
        customer_id, visible = req.ctx.customer_filter(req.customer_id)
        if not visible:
            return c.ActionRunPage(items=[], cursor=None)
        before = decode_time_uuid_cursor(req.cursor) if req.cursor else None
        async with self._pool.acquire() as conn:
            rows = await store.list_runs(
                conn,
                workspace_id,
                req,
                customer_id=customer_id,
                before=before,
                limit=req.limit + 1,
            )
        page, cursor = keyset_page(rows, req.limit, lambda r: (r.started_at.isoformat(), r.id))
        return c.ActionRunPage(items=[reply(c.ActionRun, r) for r in page], cursor=cursor)

    async def get(self, req: c.ActionRunGetRequest) -> c.ActionRun:
        """Read one run."""
        workspace_id = req.ctx.workspace()
        req.ctx.customer_filter(None)  # refuse callers that are neither admin nor customer
        async with self._pool.acquire() as conn:
            record = await store.select_run(conn, workspace_id, req.id)
        if record is None or not req.ctx.sees(record.customer_id):
            raise NotFound("action run not found")
        return reply(c.ActionRun, record)


def dropping(older_than: float) -> retention.Batch:
    """Return the batch that drops the inputs and outputs of runs ended ``older_than`` s ago."""
    return lambda conn, limit: store.drop_old_outputs(conn, older_than, limit)


async def sweep_once(
    pool: asyncpg.Pool[asyncpg.Record], older_than: float, batch: int = RETENTION_BATCH
) -> int:
    """Drop the inputs and outputs of runs ended over ``older_than`` seconds ago; return how many."""
    return await retention.sweep_once(pool, dropping(older_than), batch)


async def sweep(pool: asyncpg.Pool[asyncpg.Record], options: InstancesOptions) -> None:
    """Sweep every ``action_run_retention_interval`` seconds until cancelled (every replica)."""
    await retention.sweep_every(
        pool,
        dropping(options.action_run_retention_days * 86400.0),
        limit=RETENTION_BATCH,
        interval=options.action_run_retention_interval,
        swept="action_run_outputs_dropped",
        failed="action_run_retention_failed",
    )
