"""Known connections: a write never replaces a newer state with an older one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from libs.common.contracts import connections as cc
from services.instances.consumers import on_connection_event
from services.instances.settings import InstancesOptions
from services.instances.store import connections as store
from services.instances.store.connections import KnownConnection
from tests.conftest import Stack


async def test_known_connection_older_read_keeps_newer_event_state(stack: Stack) -> None:
    """A deployment's read from before a disconnect cannot undo the disconnect event."""
    workspace_id, connection_id = uuid4(), uuid4()
    read_at = datetime.now(UTC) - timedelta(seconds=5)  # what connections.get said, earlier

    def event(kind: str, at: datetime) -> cc.ConnectionEvent:
        return cc.ConnectionEvent(
            workspace_id=workspace_id,
            connection_id=connection_id,
            customer_id="c1",
            integration_key="crm",
            occurred_at=at,
            reason=kind,
        )

    def read(state: str, at: datetime) -> KnownConnection:
        return KnownConnection(
            workspace_id=workspace_id,
            id=connection_id,
            customer_id="c1",
            integration_key="crm",
            state=state,
            state_at=at,
        )

    pool = await stack.pool("instances")
    try:
        async with pool.acquire() as conn, conn.transaction():
            await on_connection_event(
                conn,
                cc.CONNECTION_DISCONNECTED,
                event("disconnected", datetime.now(UTC)),
                options=InstancesOptions(),
            )
        async with pool.acquire() as conn:
            kept = await store.upsert_connection(conn, read("connected", read_at))
            assert kept.state == "disconnected"
            current = await store.select_known_connection(conn, workspace_id, connection_id)
            assert current is not None
            assert current.state == "disconnected"
        # A stale created event (redelivered late) changes nothing and deploys nothing.
        async with pool.acquire() as conn, conn.transaction():
            await on_connection_event(
                conn, cc.CONNECTION_CREATED, event("created", read_at), options=InstancesOptions()
            )
        async with pool.acquire() as conn:
            current = await store.select_known_connection(conn, workspace_id, connection_id)
            assert current is not None
            assert current.state == "disconnected"
            deployments = "SELECT count(*) FROM deployments WHERE workspace_id = $1"
            assert await conn.fetchval(deployments, workspace_id) == 0
            # A newer read (reconnected since) does replace it.
            newer = datetime.now(UTC) + timedelta(seconds=1)
            assert (await store.upsert_connection(conn, read("connected", newer))).state == (
                "connected"
            )
    finally:
        await pool.close()
