"""Deliveries' rows (one per event and endpoint) and their attempts."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from libs.common.contracts import notifications as c
from libs.common.db import Conn
from libs.common.rows import many, maybe

_COLUMNS = """
id, workspace_id, endpoint_id, event_id, event_type, body, status, attempt_count,
last_status_code, last_error, next_attempt_at, job_id, created_at, updated_at
"""


class DeliveryRecord(BaseModel):
    """A delivery row."""

    model_config = ConfigDict(frozen=True)

    id: str
    workspace_id: UUID
    endpoint_id: UUID
    event_id: UUID | None
    event_type: str
    body: str
    status: c.DeliveryStatus
    attempt_count: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    job_id: UUID | None
    created_at: datetime
    updated_at: datetime


class AttemptRecord(BaseModel):
    """What one attempt came to (what ``delivery_attempts`` keeps)."""

    model_config = ConfigDict(frozen=True)

    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    response: str | None
    error: str | None


# ON CONFLICT: the event was matched to this endpoint before (a redelivered event whose
# first handling committed is never handled again, but the key keeps the promise anyway).
INSERT_DELIVERY_SQL = f"""
INSERT INTO deliveries (id, workspace_id, endpoint_id, event_id, event_type, body, status, job_id)
VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)
ON CONFLICT DO NOTHING
RETURNING {_COLUMNS}
"""
SELECT_DELIVERY_SQL = f"SELECT {_COLUMNS} FROM deliveries WHERE workspace_id = $1 AND id = $2"
LOCK_DELIVERY_SQL = f"{SELECT_DELIVERY_SQL} FOR UPDATE"
LIST_DELIVERIES_SQL = f"""
SELECT {_COLUMNS} FROM deliveries
WHERE workspace_id = $1 AND endpoint_id = $2
  AND ($3::text IS NULL OR status = $3)
  AND ($4::text IS NULL OR event_type = $4)
  AND ($5::timestamptz IS NULL OR created_at >= $5)
  AND ($6::timestamptz IS NULL OR created_at < $6)
  AND ($7::timestamptz IS NULL OR (created_at, id) < ($7, $8::text))
ORDER BY created_at DESC, id DESC
LIMIT $9
"""
SELECT_ATTEMPTS_SQL = """
SELECT attempted_at, status_code, duration_ms, response, error FROM delivery_attempts
WHERE workspace_id = $1 AND delivery_id = $2 ORDER BY id
"""
INSERT_ATTEMPT_SQL = """
INSERT INTO delivery_attempts
    (delivery_id, workspace_id, attempted_at, status_code, duration_ms, response, error)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
COUNT_ATTEMPT_SQL = """
UPDATE deliveries SET attempt_count = attempt_count + 1, last_status_code = $3,
    last_error = $4, updated_at = now()
WHERE workspace_id = $1 AND id = $2
"""
# A job's outcome counts only for the job the delivery is on now (a redelivery moves it).
SET_OUTCOME_SQL = """
UPDATE deliveries SET status = $4, next_attempt_at = $5,
    last_error = CASE WHEN $4 = 'succeeded' THEN NULL ELSE coalesce($6, last_error) END,
    updated_at = now()
WHERE workspace_id = $1 AND id = $2 AND job_id IS NOT DISTINCT FROM $3
"""
REQUEUE_SQL = f"""
UPDATE deliveries SET status = 'pending', job_id = $3, next_attempt_at = now(), updated_at = now()
WHERE workspace_id = $1 AND id = $2
RETURNING {_COLUMNS}
"""
SELECT_REPLAY_SQL = """
SELECT id FROM deliveries
WHERE workspace_id = $1 AND endpoint_id = $2 AND status <> 'pending'
  AND created_at >= $3 AND created_at < $4 AND ($5::text IS NULL OR status = $5)
ORDER BY created_at, id
LIMIT $6
FOR UPDATE SKIP LOCKED
"""
# Retention is system work across workspaces, like the job engine's sweep: a batch of
# finished deliveries past the cutoff (their attempts go with them), rows another
# replica is deleting skipped.
PURGE_SQL = """
WITH gone AS (
    DELETE FROM deliveries WHERE id IN (
        SELECT id FROM deliveries
        WHERE status <> 'pending' AND created_at < now() - make_interval(days => $1)
        ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone
"""


async def insert_delivery(
    conn: Conn,
    delivery_id: str,
    workspace_id: UUID,
    endpoint_id: UUID,
    *,
    event_id: UUID | None,
    event_type: str,
    body: str,
    job_id: UUID | None,
) -> DeliveryRecord | None:
    """Record a pending delivery; None if this event was matched to this endpoint before."""
    row = await conn.fetchrow(
        INSERT_DELIVERY_SQL,
        delivery_id,
        workspace_id,
        endpoint_id,
        event_id,
        event_type,
        body,
        job_id,
    )
    return maybe(DeliveryRecord, row)


async def get_delivery(conn: Conn, workspace_id: UUID, delivery_id: str) -> DeliveryRecord | None:
    """Return one delivery of the workspace, or None."""
    return maybe(
        DeliveryRecord, await conn.fetchrow(SELECT_DELIVERY_SQL, workspace_id, delivery_id)
    )


async def lock_delivery(conn: Conn, workspace_id: UUID, delivery_id: str) -> DeliveryRecord | None:
    """Return one delivery locked until the transaction ends, or None."""
    return maybe(DeliveryRecord, await conn.fetchrow(LOCK_DELIVERY_SQL, workspace_id, delivery_id))


async def list_deliveries(
    conn: Conn,
    workspace_id: UUID,
    request: c.DeliveryListRequest,
    after: tuple[datetime, str] | None,
) -> list[DeliveryRecord]:
    """Return up to ``limit + 1`` of an endpoint's deliveries, newest first, after ``after``."""
    rows = await conn.fetch(
        LIST_DELIVERIES_SQL,
        workspace_id,
        request.endpoint_id,
        request.status,
        request.type,
        request.from_,
        request.to,
        after[0] if after else None,
        after[1] if after else None,
        request.limit + 1,
    )
    return many(DeliveryRecord, rows)


async def attempts(conn: Conn, workspace_id: UUID, delivery_id: str) -> list[AttemptRecord]:
    """Return a delivery's attempts, oldest first."""
    return many(AttemptRecord, await conn.fetch(SELECT_ATTEMPTS_SQL, workspace_id, delivery_id))


async def record_attempt(
    conn: Conn, workspace_id: UUID, delivery_id: str, attempt: AttemptRecord
) -> None:
    """Keep one attempt and count it on its delivery."""
    await conn.execute(
        INSERT_ATTEMPT_SQL,
        delivery_id,
        workspace_id,
        attempt.attempted_at,
        attempt.status_code,
        attempt.duration_ms,
        attempt.response,
        attempt.error,
    )
    await conn.execute(
        COUNT_ATTEMPT_SQL, workspace_id, delivery_id, attempt.status_code, attempt.error
    )


async def set_outcome(
    conn: Conn,
    workspace_id: UUID,
    delivery_id: str,
    job_id: UUID | None,
    *,
    status: c.DeliveryStatus,
    next_attempt_at: datetime | None,
    error: str | None,
) -> None:
    """Write where a delivery stands after its job's attempt (only for its current job)."""
    await conn.execute(
        SET_OUTCOME_SQL, workspace_id, delivery_id, job_id, status, next_attempt_at, error
    )


async def requeue(
    conn: Conn, workspace_id: UUID, delivery_id: str, job_id: UUID
) -> DeliveryRecord | None:
    """Put a delivery back to pending on a new job."""
    return maybe(
        DeliveryRecord, await conn.fetchrow(REQUEUE_SQL, workspace_id, delivery_id, job_id)
    )


async def replayable(
    conn: Conn,
    workspace_id: UUID,
    endpoint_id: UUID,
    start: datetime,
    end: datetime,
    status: str | None,
    limit: int,
) -> list[str]:
    """Return (locked) the ids of an endpoint's finished deliveries created in [start, end)."""
    rows = await conn.fetch(SELECT_REPLAY_SQL, workspace_id, endpoint_id, start, end, status, limit)
    return [r["id"] for r in rows]


async def purge(conn: Conn, retention_days: int, limit: int) -> int:
    """Delete up to ``limit`` finished deliveries older than ``retention_days``."""
    deleted: int = await conn.fetchval(PURGE_SQL, retention_days, limit)
    return deleted
