"""Answer ``tether.instances.deployments.*``: start a deployment, read deployments.

What a deployment does once started is ``lifecycle.py``'s; this module checks who asks.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from libs.common.bus import Bus
from libs.common.contracts import connections
from libs.common.contracts import instances as c
from libs.common.contracts.base import Context
from libs.common.errors import Conflict, NotFound
from libs.common.paging import decode_time_uuid_cursor, keyset_page
from libs.common.rows import reply
from services.instances import lifecycle
from services.instances.settings import InstancesOptions
from services.instances.store import connections as known_connections
from services.instances.store import deployments
from services.instances.store.connections import KnownConnection
from services.instances.store.deployments import DeploymentRecord


async def visible_connection(
    pool: asyncpg.Pool[asyncpg.Record], bus: Bus, ctx: Context, connection_id: UUID
) -> KnownConnection:
    """Return a connection the caller may see, learning it from connections if needed."""
    workspace_id = ctx.workspace()
    ctx.customer_filter(None)  # refuse callers that are neither admin nor customer
    async with pool.acquire() as conn:
        known = await known_connections.select_known_connection(conn, workspace_id, connection_id)
    if known is None:
        found = await bus.call(
            connections.CONNECTIONS_GET,
            connections.ConnectionGetRequest(id=connection_id, ctx=ctx),
        )
        async with pool.acquire() as conn:
            known = await known_connections.upsert_connection(
                conn,
                KnownConnection(
                    workspace_id=workspace_id,
                    id=found.id,
                    customer_id=found.customer_id,
                    integration_key=found.integration_key,
                    state=found.state,
                    state_at=found.updated_at,
                ),
            )
    if not ctx.sees(known.customer_id):
        raise NotFound("connection not found")
    return known


class Deployments:
    """Deployment handlers, one per operation."""

    def __init__(
        self, pool: asyncpg.Pool[asyncpg.Record], bus: Bus, options: InstancesOptions
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._options = options

    async def start(self, req: c.DeployConnectionRequest) -> c.Deployment:
        """Deploy every current definition to one connection (supersedes an unfinished one)."""
        known = await visible_connection(self._pool, self._bus, req.ctx, req.id)
        if known.state != "connected":
            raise Conflict(f"the connection is {known.state}", code="connection_not_connected")
        async with self._pool.acquire() as conn, conn.transaction():
            record = await lifecycle.start(conn, known, "requested", options=self._options)
        return await self._view(record)

    async def get(self, req: c.DeploymentGetRequest) -> c.Deployment:
        """Read one deployment with its steps."""
        workspace_id = req.ctx.workspace()
        req.ctx.customer_filter(None)  # refuse callers that are neither admin nor customer
        async with self._pool.acquire() as conn:
            record = await deployments.select_deployment(conn, workspace_id, req.id)
        if record is None or not req.ctx.sees(record.customer_id):
            raise NotFound("deployment not found")
        return await self._view(record)

    async def list(self, req: c.DeploymentListRequest) -> c.DeploymentPage:
        """List deployments newest first, with their aggregate progress."""
        workspace_id = req.ctx.workspace()
        customer_id, _ = req.ctx.customer_filter(None)
        before = decode_time_uuid_cursor(req.cursor) if req.cursor else None
        if req.connection_id is not None:  # one the caller cannot see is 404, not an empty page
            await visible_connection(self._pool, self._bus, req.ctx, req.connection_id)
        async with self._pool.acquire() as conn:
            rows = await deployments.list_deployments(
                conn,
                workspace_id,
                connection_id=req.connection_id,
                integration_key=req.integration_key,
                status=req.status,
                customer_id=customer_id,
                before=before,
                limit=req.limit + 1,
            )
        page, cursor = keyset_page(rows, req.limit, lambda r: (r.created_at.isoformat(), r.id))
        return c.DeploymentPage(
            items=[reply(c.Deployment, r, steps=[]) for r in page],
            steps_total=sum(r.steps_total for r in page),
            steps_done=sum(r.steps_done for r in page),
            cursor=cursor,
        )

    async def _view(self, record: DeploymentRecord) -> c.Deployment:
        async with self._pool.acquire() as conn:
            steps = await deployments.select_steps(conn, record.workspace_id, record.id)
        return reply(
            c.Deployment,
            record,
            steps=[c.DeploymentStep.model_validate(s, from_attributes=True) for s in steps],
        )
