"""Connections' SQL: integrations, connect sessions, connections and their refresh schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from libs.common.contracts import connections as c
from libs.common.db import Conn
from libs.common.errors import Conflict
from libs.common.rows import many, maybe, one


class IntegrationFields(BaseModel):
    """An integration as a write gives it (the sealed client secret included; never on the wire)."""

    model_config = ConfigDict(frozen=True)

    key: str
    name: str
    template: str | None = None
    auth: c.AuthSpec
    client_secret_sealed: str | None
    api: c.ApiSpec | None
    test: c.TestRequestSpec | None


class IntegrationRecord(IntegrationFields):
    """An integration row.

    Its reply, ``Integration``, is validated from it by field name: it has no field for the
    sealed secret, only :attr:`client_secret_set`.
    """

    workspace_id: UUID
    created_at: datetime
    updated_at: datetime

    @property
    def client_secret_set(self) -> bool:
        """Tell whether the integration holds a client secret (never which)."""
        return self.client_secret_sealed is not None


_INTEGRATION_COLUMNS = "workspace_id, key, name, template, auth, client_secret_sealed, api, test, created_at, updated_at"
INSERT_INTEGRATION_SQL = f"""
INSERT INTO integrations (workspace_id, key, name, template, auth, client_secret_sealed, api, test)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING {_INTEGRATION_COLUMNS}
"""
SELECT_INTEGRATION_SQL = (
    f"SELECT {_INTEGRATION_COLUMNS} FROM integrations WHERE workspace_id = $1 AND key = $2"
)
LIST_INTEGRATIONS_SQL = (
    f"SELECT {_INTEGRATION_COLUMNS} FROM integrations WHERE workspace_id = $1 ORDER BY key"
)
UPDATE_INTEGRATION_SQL = f"""
UPDATE integrations SET name = $3, auth = $4, client_secret_sealed = $5, api = $6, test = $7,
    updated_at = now()
WHERE workspace_id = $1 AND key = $2
RETURNING {_INTEGRATION_COLUMNS}
"""
DELETE_INTEGRATION_SQL = "DELETE FROM integrations WHERE workspace_id = $1 AND key = $2"
COUNT_LIVE_CONNECTIONS_SQL = """
SELECT count(*) FROM connections
WHERE workspace_id = $1 AND integration_key = $2 AND state <> 'archived'
"""


def _json(model: BaseModel | None) -> dict[str, Any] | None:
    return model.model_dump(mode="json") if model is not None else None


async def insert_integration(
    conn: Conn, workspace_id: UUID, integration: IntegrationFields
) -> IntegrationRecord:
    """Insert an integration; a taken key is a Conflict."""
    try:
        row = await conn.fetchrow(
            INSERT_INTEGRATION_SQL,
            workspace_id,
            integration.key,
            integration.name,
            integration.template,
            _json(integration.auth),
            integration.client_secret_sealed,
            _json(integration.api),
            _json(integration.test),
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"integration {integration.key} exists", code="integration_exists") from exc
    return one(IntegrationRecord, row)


async def select_integration(
    conn: Conn, workspace_id: UUID, key: str, *, for_update: bool = False
) -> IntegrationRecord | None:
    """Return one integration of the workspace (row-locked when ``for_update``)."""
    sql = SELECT_INTEGRATION_SQL + " FOR UPDATE" if for_update else SELECT_INTEGRATION_SQL
    return maybe(IntegrationRecord, await conn.fetchrow(sql, workspace_id, key))


async def list_integrations(conn: Conn, workspace_id: UUID) -> list[IntegrationRecord]:
    """Return the workspace's integrations by key."""
    return many(IntegrationRecord, await conn.fetch(LIST_INTEGRATIONS_SQL, workspace_id))


async def update_integration(conn: Conn, record: IntegrationRecord) -> IntegrationRecord:
    """Write an integration back whole."""
    row = await conn.fetchrow(
        UPDATE_INTEGRATION_SQL,
        record.workspace_id,
        record.key,
        record.name,
        _json(record.auth),
        record.client_secret_sealed,
        _json(record.api),
        _json(record.test),
    )
    return one(IntegrationRecord, row)


async def delete_integration(conn: Conn, workspace_id: UUID, key: str) -> bool:
    """Delete an integration unless live connections use it."""
    live = await conn.fetchval(COUNT_LIVE_CONNECTIONS_SQL, workspace_id, key)
    if live:
        raise Conflict(
            f"integration {key} has {live} live connection(s); archive them first",
            code="integration_in_use",
        )
    return bool(await conn.execute(DELETE_INTEGRATION_SQL, workspace_id, key) == "DELETE 1")


# --- connect sessions -------------------------------------------------------------------


class SessionRecord(BaseModel):
    """A connect session row."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    workspace_id: UUID
    customer_id: str
    integration_key: str
    connection_id: UUID | None
    redirect_uri: str | None
    allow_multiple: bool
    expires_at: datetime
    finished_at: datetime | None
    code_verifier_sealed: str | None


_SESSION_COLUMNS = """
id, workspace_id, customer_id, integration_key, connection_id, redirect_uri, allow_multiple,
expires_at, finished_at, code_verifier_sealed
"""
INSERT_SESSION_SQL = """
INSERT INTO connect_sessions
    (id, workspace_id, token_hash, customer_id, integration_key, connection_id, redirect_uri,
     allow_multiple, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""
# The session token is the only credential of these public pages: looked up by its hash,
# it names the workspace (these are the only lookups not keyed by workspace_id).
OPEN_SESSION_SQL = f"""
UPDATE connect_sessions SET opened_at = coalesce(opened_at, now())
WHERE token_hash = $1 AND finished_at IS NULL AND expires_at > now()
RETURNING {_SESSION_COLUMNS}
"""
SET_OAUTH_STATE_SQL = """
UPDATE connect_sessions SET state_hash = $3, code_verifier_sealed = $4
WHERE workspace_id = $1 AND id = $2
"""
CLAIM_BY_STATE_SQL = f"""
UPDATE connect_sessions SET finished_at = now()
WHERE state_hash = $1 AND finished_at IS NULL AND expires_at > now()
RETURNING {_SESSION_COLUMNS}
"""
FINISH_SESSION_SQL = """
UPDATE connect_sessions SET finished_at = now()
WHERE workspace_id = $1 AND id = $2 AND finished_at IS NULL
"""
UNFINISH_SESSION_SQL = (
    "UPDATE connect_sessions SET finished_at = NULL WHERE workspace_id = $1 AND id = $2"
)


async def insert_session(conn: Conn, session: SessionRecord, token_hash: bytes) -> None:
    """Store a new connect session."""
    await conn.execute(
        INSERT_SESSION_SQL,
        session.id,
        session.workspace_id,
        token_hash,
        session.customer_id,
        session.integration_key,
        session.connection_id,
        session.redirect_uri,
        session.allow_multiple,
        session.expires_at,
    )


async def open_session(conn: Conn, token_hash: bytes) -> SessionRecord | None:
    """Return the live, unfinished session of a page token."""
    return maybe(SessionRecord, await conn.fetchrow(OPEN_SESSION_SQL, token_hash))


async def set_oauth_state(
    conn: Conn, session: SessionRecord, state_hash: bytes, verifier_sealed: str | None
) -> None:
    """Remember the (hashed) OAuth state and the sealed PKCE verifier of a session."""
    await conn.execute(
        SET_OAUTH_STATE_SQL, session.workspace_id, session.id, state_hash, verifier_sealed
    )


async def claim_by_state(conn: Conn, state_hash: bytes) -> SessionRecord | None:
    """Finish and return the session an OAuth state belongs to: once, while it is live."""
    return maybe(SessionRecord, await conn.fetchrow(CLAIM_BY_STATE_SQL, state_hash))


async def finish_session(conn: Conn, session: SessionRecord) -> bool:
    """Mark a session used; False when it already was."""
    return bool(
        await conn.execute(FINISH_SESSION_SQL, session.workspace_id, session.id) == "UPDATE 1"
    )


async def unfinish_session(conn: Conn, session: SessionRecord) -> None:
    """Let a form session be submitted again after a failed attempt."""
    await conn.execute(UNFINISH_SESSION_SQL, session.workspace_id, session.id)


# --- connections ------------------------------------------------------------------------


class NewConnection(BaseModel):
    """What connecting stores: fresh credentials (sealed) and their renewal schedule.

    A new connection is inserted with it; a reconnection writes it over the connection
    whose ``id`` it carries.
    """

    model_config = ConfigDict(frozen=True)

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
