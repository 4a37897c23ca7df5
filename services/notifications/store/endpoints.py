"""Endpoints' rows: the registered URLs, their patterns, sealed secrets and health."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from libs.common.db import Conn
from libs.common.rows import many, maybe

_COLUMNS = """
id, workspace_id, url, events, enabled, description, disabled_reason, secret_sealed,
previous_secret_sealed, previous_secret_expires_at, failing_since, created_at, updated_at
"""


class EndpointRecord(BaseModel):
    """An endpoint row (sealed secrets included: never returned as they are)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    workspace_id: UUID
    url: str
    events: list[str]
    enabled: bool
    description: str | None
    disabled_reason: str | None
    secret_sealed: str
    previous_secret_sealed: str | None
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class Matching(BaseModel):
    """What the consumer needs of an enabled endpoint to match an event."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    events: list[str]


INSERT_ENDPOINT_SQL = f"""
INSERT INTO endpoints (id, workspace_id, url, events, enabled, description, secret_sealed)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING {_COLUMNS}
"""
SELECT_ENDPOINT_SQL = f"""
SELECT {_COLUMNS} FROM endpoints WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL
"""
LIST_ENDPOINTS_SQL = f"""
SELECT {_COLUMNS} FROM endpoints
WHERE workspace_id = $1 AND deleted_at IS NULL AND ($2::uuid IS NULL OR id > $2)
ORDER BY id LIMIT $3
"""
SELECT_ENABLED_SQL = """
SELECT id, events FROM endpoints WHERE workspace_id = $1 AND enabled AND deleted_at IS NULL
"""
# Enabling again clears why Tether disabled it, and its failure streak.
PATCH_ENDPOINT_SQL = f"""
UPDATE endpoints SET
    url = coalesce($3, url),
    events = coalesce($4, events),
    enabled = coalesce($5, enabled),
    description = CASE WHEN $6 THEN $7 ELSE description END,
    disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
    failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END,
    updated_at = now()
WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL
RETURNING {_COLUMNS}
"""
DELETE_ENDPOINT_SQL = """
UPDATE endpoints SET deleted_at = now(), enabled = false, updated_at = now()
WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL
RETURNING id
"""
ROTATE_SECRET_SQL = f"""
UPDATE endpoints SET secret_sealed = $3, previous_secret_sealed = $4,
    previous_secret_expires_at = now() + make_interval(secs => $5), updated_at = now()
WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL
RETURNING {_COLUMNS}
"""
LOCK_ENDPOINT_SQL = f"""
SELECT {_COLUMNS} FROM endpoints
WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE
"""
# An attempt's verdict on the endpoint's health: a success ends a failure streak, a failure
# starts one. Each writes only when the state changes, so concurrent attempts of a healthy
# (or already failing) endpoint never queue on its row lock.
HEALTHY_SQL = """
UPDATE endpoints SET failing_since = NULL
WHERE workspace_id = $1 AND id = $2 AND failing_since IS NOT NULL
"""
START_FAILING_SQL = """
UPDATE endpoints SET failing_since = now()
WHERE workspace_id = $1 AND id = $2 AND failing_since IS NULL
RETURNING id
"""
FAILING_TOO_LONG_SQL = """
SELECT failing_since <= now() - make_interval(secs => $3) FROM endpoints
WHERE workspace_id = $1 AND id = $2
"""
DISABLE_SQL = """
UPDATE endpoints SET enabled = false, disabled_reason = $3, updated_at = now()
WHERE workspace_id = $1 AND id = $2 AND enabled AND deleted_at IS NULL
RETURNING id
"""


async def insert_endpoint(
    conn: Conn,
    endpoint_id: UUID,
    workspace_id: UUID,
    *,
    url: str,
    events: list[str],
    enabled: bool,
    description: str | None,
    secret_sealed: str,
) -> EndpointRecord:
    """Insert an endpoint; return it."""
    row = await conn.fetchrow(
        INSERT_ENDPOINT_SQL,
        endpoint_id,
        workspace_id,
        url,
        events,
        enabled,
        description,
        secret_sealed,
    )
    found = maybe(EndpointRecord, row)
    assert found is not None  # an INSERT … RETURNING returns its row
    return found


async def get_endpoint(conn: Conn, workspace_id: UUID, endpoint_id: UUID) -> EndpointRecord | None:
    """Return one live endpoint of the workspace, or None."""
    return maybe(
        EndpointRecord, await conn.fetchrow(SELECT_ENDPOINT_SQL, workspace_id, endpoint_id)
    )


async def lock_endpoint(conn: Conn, workspace_id: UUID, endpoint_id: UUID) -> EndpointRecord | None:
    """Return one live endpoint, locked until the transaction ends, or None."""
    return maybe(EndpointRecord, await conn.fetchrow(LOCK_ENDPOINT_SQL, workspace_id, endpoint_id))


async def list_endpoints(
    conn: Conn, workspace_id: UUID, after: UUID | None, limit: int
) -> list[EndpointRecord]:
    """Return up to ``limit`` live endpoints after id ``after``, by id."""
    return many(EndpointRecord, await conn.fetch(LIST_ENDPOINTS_SQL, workspace_id, after, limit))


async def enabled_endpoints(conn: Conn, workspace_id: UUID) -> list[Matching]:
    """Return the workspace's enabled endpoints with their patterns."""
    return many(Matching, await conn.fetch(SELECT_ENABLED_SQL, workspace_id))


async def patch_endpoint(
    conn: Conn,
    workspace_id: UUID,
    endpoint_id: UUID,
    *,
    url: str | None,
    events: list[str] | None,
    enabled: bool | None,
    set_description: bool,
    description: str | None,
) -> EndpointRecord | None:
    """Change the given fields of an endpoint; None if there is no such endpoint."""
    row = await conn.fetchrow(
        PATCH_ENDPOINT_SQL,
        workspace_id,
        endpoint_id,
        url,
        events,
        enabled,
        set_description,
        description,
    )
    return maybe(EndpointRecord, row)


async def delete_endpoint(conn: Conn, workspace_id: UUID, endpoint_id: UUID) -> bool:
    """Mark an endpoint deleted; False if there was no such endpoint."""
    return await conn.fetchval(DELETE_ENDPOINT_SQL, workspace_id, endpoint_id) is not None


async def rotate_secret(
    conn: Conn,
    workspace_id: UUID,
    endpoint_id: UUID,
    *,
    secret_sealed: str,
    previous_sealed: str,
    overlap: float,
) -> EndpointRecord | None:
    """Store a new secret and keep the previous one signing for ``overlap`` seconds."""
    row = await conn.fetchrow(
        ROTATE_SECRET_SQL, workspace_id, endpoint_id, secret_sealed, previous_sealed, overlap
    )
    return maybe(EndpointRecord, row)


async def record_health(
    conn: Conn, workspace_id: UUID, endpoint_id: UUID, *, ok: bool, disable_after: float
) -> bool:
    """Note an attempt's success or failure; return whether it has failed for too long."""
    if ok:
        await conn.execute(HEALTHY_SQL, workspace_id, endpoint_id)
        return False
    if await conn.fetchval(START_FAILING_SQL, workspace_id, endpoint_id) is not None:
        return False  # the streak starts now
    past: bool | None = await conn.fetchval(
        FAILING_TOO_LONG_SQL, workspace_id, endpoint_id, disable_after
    )
    return bool(past)


async def disable(conn: Conn, workspace_id: UUID, endpoint_id: UUID, reason: str) -> bool:
    """Disable an enabled endpoint; False if it was not enabled (someone did it first)."""
    return await conn.fetchval(DISABLE_SQL, workspace_id, endpoint_id, reason) is not None
