"""Connections: their sealed credentials, refresh schedule and state, and the claims of due work."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from libs.common.contracts import connections as c
from libs.common.db import Conn
from libs.common.rows import many, maybe, one
from services.connections.store._base import Row


class NewConnection(Row):
    """What connecting stores: fresh credentials (sealed) and their renewal schedule.

    A new connection is inserted with it; a reconnection writes it over the connection
    whose ``id`` it carries.
    """

    id: UUID
    workspace_id: UUID
    customer_id: str
    integration_key: str
    name: str
    credentials_sealed: str
    account: dict[str, Any] | None
    expires_at: datetime | None
    refresh_due_at: datetime | None
    check_due_at: datetime | None


class ConnectionRecord(NewConnection):
    """A connection row: what connecting stored, and the state kept since (never on the wire).

    Its reply, ``Connection``, is validated from it by field name and has no field for the
    credentials.
    """

    state: c.ConnectionState
    version: int
    refresh_attempts: int
    last_refresh_at: datetime | None
    last_error: str | None
    cooldown_until: datetime | None
    created_at: datetime
    updated_at: datetime


_CONNECTION_COLUMNS = """
id, workspace_id, customer_id, integration_key, name, state, credentials_sealed, account,
expires_at, refresh_due_at, check_due_at, version, refresh_attempts, last_refresh_at, last_error,
cooldown_until, created_at, updated_at
"""


SELECT_CONNECTION_SQL = (
    f"SELECT {_CONNECTION_COLUMNS} FROM connections WHERE workspace_id = $1 AND id = $2"
)
SELECT_CONNECTION_FOR_UPDATE_SQL = SELECT_CONNECTION_SQL + " FOR UPDATE"
FIND_LIVE_CONNECTION_SQL = f"""
SELECT {_CONNECTION_COLUMNS} FROM connections
WHERE workspace_id = $1 AND customer_id = $2 AND integration_key = $3 AND state <> 'archived'
ORDER BY created_at LIMIT 1 FOR UPDATE
"""
LOCK_CUSTOMER_INTEGRATION_SQL = (
    "SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2 || '/' || $3))"
)
INSERT_CONNECTION_SQL = f"""
INSERT INTO connections
    (id, workspace_id, customer_id, integration_key, name, state, credentials_sealed, account,
     expires_at, refresh_due_at, check_due_at, last_refresh_at)
VALUES ($1, $2, $3, $4, $5, 'connected', $6, $7, $8, $9, $10, now())
RETURNING {_CONNECTION_COLUMNS}
"""
REPLACE_CREDENTIALS_SQL = f"""
UPDATE connections SET
    name = $3, state = 'connected', credentials_sealed = $4, account = $5, expires_at = $6,
    refresh_due_at = $7, check_due_at = $8, version = version + 1, refresh_attempts = 0,
    last_refresh_at = now(), last_error = NULL, cooldown_until = NULL, updated_at = now()
WHERE workspace_id = $1 AND id = $2
RETURNING {_CONNECTION_COLUMNS}
"""
STORE_REFRESH_SQL = f"""
UPDATE connections SET
    credentials_sealed = $4, expires_at = $5, refresh_due_at = $6, check_due_at = $7,
    version = version + 1, refresh_attempts = 0, last_refresh_at = now(), last_error = NULL,
    cooldown_until = NULL, state = 'connected', updated_at = now()
WHERE workspace_id = $1 AND id = $2 AND version = $3
RETURNING {_CONNECTION_COLUMNS}
"""
RECORD_FAILURE_SQL = f"""
UPDATE connections SET
    state = $4, refresh_attempts = $5, last_error = $6, cooldown_until = $7,
    refresh_due_at = $8, updated_at = now()
WHERE workspace_id = $1 AND id = $2 AND version = $3
RETURNING {_CONNECTION_COLUMNS}
"""
SET_STATE_SQL = f"""
UPDATE connections SET state = $3, last_error = coalesce($4, last_error), updated_at = now()
WHERE workspace_id = $1 AND id = $2 AND state <> $3
RETURNING {_CONNECTION_COLUMNS}
"""
SET_CHECK_DUE_SQL = "UPDATE connections SET check_due_at = $3 WHERE workspace_id = $1 AND id = $2"
LIST_CONNECTIONS_SQL = f"""
SELECT {_CONNECTION_COLUMNS} FROM connections
WHERE workspace_id = $1
  AND ($2::text IS NULL OR customer_id = $2)
  AND ($3::text IS NULL OR integration_key = $3)
  AND (($4::text IS NULL AND state <> 'archived') OR state = $4)
  AND ($5::uuid IS NULL OR id > $5)
ORDER BY id
LIMIT $6
"""
# System work across workspaces (the background refresher and checker): each claimed row
# is then handled with its own workspace_id.
CLAIM_DUE_REFRESH_SQL = """
SELECT workspace_id, id FROM connections
WHERE state = 'connected' AND refresh_due_at <= now()
ORDER BY refresh_due_at
LIMIT 1
FOR UPDATE SKIP LOCKED
"""
CLAIM_DUE_CHECK_SQL = """
SELECT workspace_id, id FROM connections
WHERE state = 'connected' AND check_due_at <= now()
ORDER BY check_due_at
LIMIT 1
FOR UPDATE SKIP LOCKED
"""


async def select_connection(
    conn: Conn, workspace_id: UUID, connection_id: UUID, *, for_update: bool = False
) -> ConnectionRecord | None:
    """Return one connection of the workspace (row-locked when ``for_update``)."""
    sql = SELECT_CONNECTION_FOR_UPDATE_SQL if for_update else SELECT_CONNECTION_SQL
    return maybe(ConnectionRecord, await conn.fetchrow(sql, workspace_id, connection_id))


async def lock_customer_integration(
    conn: Conn, workspace_id: UUID, customer_id: str, key: str
) -> None:
    """Serialise connecting one customer to one integration (transaction-scoped)."""
    await conn.execute(LOCK_CUSTOMER_INTEGRATION_SQL, str(workspace_id), customer_id, key)


async def find_live_connection(
    conn: Conn, workspace_id: UUID, customer_id: str, key: str
) -> ConnectionRecord | None:
    """Return the customer's existing connection to an integration, locked."""
    row = await conn.fetchrow(FIND_LIVE_CONNECTION_SQL, workspace_id, customer_id, key)
    return maybe(ConnectionRecord, row)


def _credentials_args(new: NewConnection) -> tuple[object, ...]:
    """Return what both a new connection and a reconnection write, in the queries' order."""
    return (
        new.name,
        new.credentials_sealed,
        new.account,
        new.expires_at,
        new.refresh_due_at,
        new.check_due_at,
    )


async def insert_connection(conn: Conn, new: NewConnection) -> ConnectionRecord:
    """Insert a connected connection."""
    row = await conn.fetchrow(
        INSERT_CONNECTION_SQL,
        new.id,
        new.workspace_id,
        new.customer_id,
        new.integration_key,
        *_credentials_args(new),
    )
    return one(ConnectionRecord, row)


async def replace_credentials(conn: Conn, new: NewConnection) -> ConnectionRecord:
    """Reconnect: new credentials on the connection ``new.id``."""
    row = await conn.fetchrow(
        REPLACE_CREDENTIALS_SQL, new.workspace_id, new.id, *_credentials_args(new)
    )
    return one(ConnectionRecord, row)


async def store_refresh(
    conn: Conn,
    current: ConnectionRecord,
    sealed: str,
    expires_at: datetime | None,
    refresh_due_at: datetime | None,
    check_due_at: datetime | None,
) -> ConnectionRecord | None:
    """Write refreshed credentials if nobody else did since ``current`` was read."""
    row = await conn.fetchrow(
        STORE_REFRESH_SQL,
        current.workspace_id,
        current.id,
        current.version,
        sealed,
        expires_at,
        refresh_due_at,
        check_due_at,
    )
    return maybe(ConnectionRecord, row)


async def record_failure(
    conn: Conn,
    current: ConnectionRecord,
    *,
    state: c.ConnectionState,
    attempts: int,
    error: str,
    cooldown_until: datetime | None,
    refresh_due_at: datetime | None,
) -> ConnectionRecord | None:
    """Record a failed refresh (attempts, a short secret-free error, cooldown)."""
    row = await conn.fetchrow(
        RECORD_FAILURE_SQL,
        current.workspace_id,
        current.id,
        current.version,
        state,
        attempts,
        error[:300],
        cooldown_until,
        refresh_due_at,
    )
    return maybe(ConnectionRecord, row)


async def set_state(
    conn: Conn,
    workspace_id: UUID,
    connection_id: UUID,
    state: c.ConnectionState,
    error: str | None = None,
) -> ConnectionRecord | None:
    """Move a connection to ``state``; None when it already was there."""
    row = await conn.fetchrow(SET_STATE_SQL, workspace_id, connection_id, state, error)
    return maybe(ConnectionRecord, row)


async def set_check_due(
    conn: Conn, workspace_id: UUID, connection_id: UUID, due: datetime | None
) -> None:
    """Schedule (or cancel) the next credentials check."""
    await conn.execute(SET_CHECK_DUE_SQL, workspace_id, connection_id, due)


async def list_connections(
    conn: Conn,
    workspace_id: UUID,
    *,
    customer_id: str | None,
    integration_key: str | None,
    state: c.ConnectionState | None,
    after: UUID | None,
    limit: int,
) -> list[ConnectionRecord]:
    """Return a page of connections ordered by id."""
    rows = await conn.fetch(
        LIST_CONNECTIONS_SQL, workspace_id, customer_id, integration_key, state, after, limit
    )
    return many(ConnectionRecord, rows)


async def claim_due(conn: Conn, kind: Literal["refresh", "check"]) -> tuple[UUID, UUID] | None:
    """Lock one connection whose refresh (or check) is due; return (workspace_id, id)."""
    row = await conn.fetchrow(CLAIM_DUE_REFRESH_SQL if kind == "refresh" else CLAIM_DUE_CHECK_SQL)
    return (row["workspace_id"], row["id"]) if row else None
