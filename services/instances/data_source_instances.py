"""Answer ``tether.instances.data_source_instances.*``: schemas and states per connection."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from libs.common.bus import Bus
from libs.common.contracts import instances as c
from libs.common.contracts.base import Context
from libs.common.errors import Conflict, NotFound
from libs.common.rows import reply
from services.instances import sync_views
from services.instances.deployments import visible_connection
from services.instances.lifecycle import StepFailure
from services.instances.steps import StepRunner
from services.instances.store import data_source_instances
from services.instances.store.data_source_instances import DataSourceInstanceRecord


class DataSourceInstances:
    """Data-source instance handlers, one per operation."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], bus: Bus, runner: StepRunner) -> None:
        self._pool = pool
        self._bus = bus
        self._runner = runner

    async def list(self, req: c.DataSourceInstanceListRequest) -> c.DataSourceInstancePage:
        """List data-source instances with their schema, state and sync state (a customer's own)."""
        workspace_id = req.ctx.workspace()
        customer_id, _ = req.ctx.customer_filter(None)
        async with self._pool.acquire() as conn:
            rows = await data_source_instances.list_data_source_instances(
                conn, workspace_id, req.connection_id, customer_id
            )
            status = await sync_views.sync_statuses(conn, workspace_id, [r.id for r in rows])
        return c.DataSourceInstancePage(
            items=[
                reply(
                    c.DataSourceInstance,
                    r,
                    sync_state=status[r.id].sync_state,
                    last_pass=status[r.id].last_pass,
                )
                for r in rows
            ]
        )

    async def get(self, req: c.DataSourceInstanceGetRequest) -> c.DataSourceInstance:
        """Read one data-source instance with its sync state and last pass (``sync_views``)."""
        async with self._pool.acquire() as conn:
            return await sync_views.instance_view(conn, req.ctx, req.id)

    async def refresh_schema(self, req: c.RefreshSchemaRequest) -> c.DataSourceInstance:
        """Fetch a data-source instance's field schema (and state) again, now."""
        instance = await self._visible(req.ctx, req.id)
        known = await visible_connection(self._pool, self._bus, req.ctx, instance.connection_id)
        try:
            await self._runner.data_source(known, instance.data_source_key, instance.id)
        except StepFailure as exc:
            raise Conflict(exc.message, code="refresh_failed") from exc
        async with self._pool.acquire() as conn:
            fresh = await data_source_instances.select_data_source_instance(
                conn, instance.workspace_id, instance.id
            )
        if fresh is None:  # the connection's instances went away meanwhile
            raise NotFound("data-source instance not found")
        return reply(c.DataSourceInstance, fresh, sync_state=None, last_pass=None)

    async def _visible(self, ctx: Context, instance_id: UUID) -> DataSourceInstanceRecord:
        workspace_id = ctx.workspace()
        ctx.customer_filter(None)  # refuse callers that are neither admin nor customer
        async with self._pool.acquire() as conn:
            instance = await data_source_instances.select_data_source_instance(
                conn, workspace_id, instance_id
            )
        if instance is None or not ctx.sees(instance.customer_id):
            raise NotFound("data-source instance not found")
        return instance
