"""The connections this service knows of (from connection events, or a read when missing)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from libs.common.contracts.connections import ConnectionState
from libs.common.db import Conn
from libs.common.rows import many, maybe, one
from services.instances.store._base import Row


class KnownConnection(Row):
    """What this service knows of a connection (from its events, or a read when missing)."""

    workspace_id: UUID
    id: UUID
    customer_id: str
    integration_key: str
    state: ConnectionState
    state_at: datetime
    """When ``state`` was true at connections (an event's occurredAt, a read's updatedAt)."""


_KNOWN_COLUMNS = "workspace_id, id, customer_id, integration_key, state, state_at"
# An event and a read can arrive in either order: only a newer state replaces the one held
# (both times come from the connections service: its clock when it emitted, its database's
# when it wrote the row; a state change emits inside the transaction that writes it).
UPSERT_CONNECTION_SQL = f"""
INSERT INTO known_connections (workspace_id, id, customer_id, integration_key, state, state_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (workspace_id, id) DO UPDATE
    SET state = EXCLUDED.state, state_at = EXCLUDED.state_at, updated_at = now()
    WHERE known_connections.state_at < EXCLUDED.state_at
RETURNING {_KNOWN_COLUMNS}
"""
SELECT_KNOWN_CONNECTION_SQL = f"""
SELECT {_KNOWN_COLUMNS} FROM known_connections WHERE workspace_id = $1 AND id = $2
"""
LIST_CONNECTED_SQL = f"""
SELECT {_KNOWN_COLUMNS} FROM known_connections
WHERE workspace_id = $1 AND integration_key = $2 AND state = 'connected' ORDER BY id
"""


async def upsert_connection(conn: Conn, known: KnownConnection) -> KnownConnection:
    """Remember a connection's state unless a newer one is known; return what is known now."""
    row = await conn.fetchrow(
        UPSERT_CONNECTION_SQL,
        known.workspace_id,
        known.id,
        known.customer_id,
        known.integration_key,
        known.state,
        known.state_at,
    )
    if row is None:  # the row holds a newer state: keep it
        row = await conn.fetchrow(SELECT_KNOWN_CONNECTION_SQL, known.workspace_id, known.id)
    return one(KnownConnection, row)


async def select_known_connection(
    conn: Conn, workspace_id: UUID, connection_id: UUID
) -> KnownConnection | None:
    """Return a connection this service knows."""
    return maybe(
        KnownConnection,
        await conn.fetchrow(SELECT_KNOWN_CONNECTION_SQL, workspace_id, connection_id),
    )


async def list_connected(
    conn: Conn, workspace_id: UUID, integration_key: str
) -> list[KnownConnection]:
    """Return an integration's connected connections."""
    return many(
        KnownConnection, await conn.fetch(LIST_CONNECTED_SQL, workspace_id, integration_key)
    )
