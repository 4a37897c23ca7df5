"""Answer deployment and instance reads, and start deployments on request."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from libs.common.bus import Bus
from libs.common.contracts import connections
from libs.common.contracts import instances as c
from libs.common.contracts.base import Context
from libs.common.errors import Conflict, InvalidInput, NotFound
from libs.common.paging import decode_cursor, encode_cursor
from services.instances import planner, store
from services.instances.appclient import StepFailure
from services.instances.steps import StepRunner
from services.instances.store import DeploymentRecord, KnownConnection


def _position(cursor: str) -> tuple[datetime, UUID]:
    """Return the (created_at, id) a deployments cursor points after."""
    at, last = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), UUID(last)
    except ValueError as exc:
        raise InvalidInput("cursor is not valid", details=[{"field": "cursor"}]) from exc


def _customer_scope(ctx: Context) -> str | None:
    """Return the customer a customer token is confined to (None for admins)."""
    if ctx.principal == "customer":
        return ctx.customer()
    ctx.admin_workspace()
    return None


class Deployments:
    """Deployment and instance handlers."""

    def __init__(self, pool: asyncpg.Pool[Any], bus: Bus, runner: StepRunner) -> None:
        self._pool = pool
        self._bus = bus
        self._runner = runner

    async def connection(self, ctx: Context, connection_id: UUID) -> KnownConnection:
        """Return a connection the caller may see, learning it from connections if needed."""
        workspace_id = ctx.workspace()
        async with self._pool.acquire() as conn:
            known = await store.select_known_connection(conn, workspace_id, connection_id)
        if known is None:
            found = await self._bus.call(
                connections.CONNECTIONS_GET,
                connections.ConnectionGetRequest(id=connection_id, ctx=ctx),
            )
            async with self._pool.acquire() as conn:
                known = await store.upsert_connection(
                    conn,
                    KnownConnection(
                        workspace_id=workspace_id, id=found.id, customer_id=found.customer_id,
                        integration_key=found.integration_key, state=found.state,
                        state_at=found.updated_at,
                    ),
                )  # fmt: skip
        scope = _customer_scope(ctx)
        if scope is not None and known.customer_id != scope:
            raise NotFound("connection not found")
        return known

    async def start(self, req: c.DeployConnectionRequest) -> c.Deployment:
        """Deploy every current definition to one connection (supersedes an unfinished one)."""
        known = await self.connection(req.ctx, req.id)
        if known.state != "connected":
            raise Conflict(f"the connection is {known.state}", code="connection_not_connected")
        async with self._pool.acquire() as conn, conn.transaction():
            record = await planner.start(conn, known, "requested")
        return await self._view(known.workspace_id, record)

    async def get(self, req: c.DeploymentGetRequest) -> c.Deployment:
        """Read one deployment with its steps."""
        workspace_id = req.ctx.workspace()
        scope = _customer_scope(req.ctx)
        async with self._pool.acquire() as conn:
            record = await store.select_deployment(conn, workspace_id, req.id)
        if record is None or (scope is not None and record.customer_id != scope):
            raise NotFound("deployment not found")
        return await self._view(workspace_id, record)

    async def list(self, req: c.DeploymentListRequest) -> c.DeploymentPage:
        """List deployments newest first, with their aggregate progress."""
        workspace_id = req.ctx.workspace()
        scope = _customer_scope(req.ctx)
        before = _position(req.cursor) if req.cursor else None
        if req.connection_id is not None:  # one the caller cannot see is 404, not an empty page
            await self.connection(req.ctx, req.connection_id)
        async with self._pool.acquire() as conn:
            rows = await store.list_deployments(
                conn, workspace_id, connection_id=req.connection_id, integration_key=req.integration_key,
                status=req.status, customer_id=scope, before=before, limit=req.limit + 1,
            )  # fmt: skip
        more = len(rows) > req.limit
        rows = rows[: req.limit]
        items = [await self._view(workspace_id, r, with_steps=False) for r in rows]
        return c.DeploymentPage(
            items=items,
            steps_total=sum(r.steps_total for r in rows),
            steps_done=sum(r.steps_done for r in rows),
            cursor=encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id)
            if more and rows
            else None,
        )

    async def _view(
        self, workspace_id: UUID, record: DeploymentRecord, *, with_steps: bool = True
    ) -> c.Deployment:
        steps = []
        if with_steps:
            async with self._pool.acquire() as conn:
                steps = [
                    s.public() for s in await store.select_steps(conn, workspace_id, record.id)
                ]
        return c.Deployment(
            id=record.id, connection_id=record.connection_id, customer_id=record.customer_id,
            integration_key=record.integration_key, reason=record.reason, status=record.status,
            steps_total=record.steps_total, steps_done=record.steps_done, steps=steps,
            superseded_by=record.superseded_by, created_at=record.created_at,
            started_at=record.started_at, finished_at=record.finished_at,
        )  # fmt: skip

    async def subscriptions(self, req: c.SubscriptionListRequest) -> c.SubscriptionPage:
        """List webhook subscriptions (a customer's own)."""
        workspace_id = req.ctx.workspace()
        scope = _customer_scope(req.ctx)
        async with self._pool.acquire() as conn:
            rows = await store.list_subscriptions(conn, workspace_id, req.connection_id, scope)
        return c.SubscriptionPage(
            items=[
                c.AppEventSubscription(
                    id=r.id,
                    connection_id=r.connection_id,
                    customer_id=r.customer_id,
                    app_event_type_key=r.app_event_type_key,
                    status=r.status,
                    external_id=r.external_id,
                    webhook_url=self._runner.webhook_url(r),
                    last_error=r.last_error,
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                )
                for r in rows
            ]
        )

    async def data_source_instances(
        self, req: c.DataSourceInstanceListRequest
    ) -> c.DataSourceInstancePage:
        """List data-source instances with their schema and state (a customer's own)."""
        workspace_id = req.ctx.workspace()
        scope = _customer_scope(req.ctx)
        async with self._pool.acquire() as conn:
            rows = await store.list_data_source_instances(
                conn, workspace_id, req.connection_id, scope
            )
        return c.DataSourceInstancePage(items=[r.public() for r in rows])

    async def refresh_schema(self, req: c.RefreshSchemaRequest) -> c.DataSourceInstance:
        """Fetch a data-source instance's field schema (and state) again, now."""
        workspace_id = req.ctx.workspace()
        scope = _customer_scope(req.ctx)
        async with self._pool.acquire() as conn:
            instance = await store.select_data_source_instance(conn, workspace_id, req.id)
        if instance is None or (scope is not None and instance.customer_id != scope):
            raise NotFound("data-source instance not found")
        known = await self.connection(req.ctx, instance.connection_id)
        try:
            await self._runner.data_source(known, instance.data_source_key, instance.id)
        except StepFailure as exc:
            raise Conflict(exc.message, code="refresh_failed") from exc
        async with self._pool.acquire() as conn:
            fresh = await store.select_data_source_instance(conn, workspace_id, req.id)
        assert fresh is not None
        return fresh.public()
