"""Connect sessions: the public pages' one credential, and the OAuth state of each round trip."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from libs.common.db import Conn
from libs.common.rows import maybe
from services.connections.store._base import Row


class SessionRecord(Row):
    """A connect session row."""

    id: UUID
    workspace_id: UUID
    customer_id: str
    integration_key: str
    connection_id: UUID | None
    redirect_uri: str | None
    opener_origin: str | None = None
    allow_multiple: bool
    expires_at: datetime
    finished_at: datetime | None
    code_verifier_sealed: str | None


_SESSION_COLUMNS = """
id, workspace_id, customer_id, integration_key, connection_id, redirect_uri, opener_origin,
allow_multiple, expires_at, finished_at, code_verifier_sealed
"""
INSERT_SESSION_SQL = """
INSERT INTO connect_sessions
    (id, workspace_id, token_hash, customer_id, integration_key, connection_id, redirect_uri,
     allow_multiple, expires_at, opener_origin)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
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
        session.opener_origin,
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
