"""Sync passes, the sync schedule, and the instance lookups a sync needs."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from libs.common.contracts import instances as c
from libs.common.db import Conn
from libs.common.rows import many, maybe, one
from services.instances.store._base import Row
from services.instances.store.data_source_instances import DataSourceInstanceRecord

QUEUE = "syncs"
"""The job queue of sync passes (its partitions are data-source instance ids)."""


class PassRecord(Row):
    """A sync_passes row."""

    id: UUID
    workspace_id: UUID
    instance_id: UUID
    mode: str
    status: c.PassStatus
    since: datetime | None
    next_request: dict[str, Any] | None
    pages: int
    records: int
    created: int
    updated: int
    deleted: int
    would_delete: int | None
    live_records: int | None
    error: str | None
    started_at: datetime
    ended_at: datetime | None

    def view(self) -> c.SyncPass:
        """Return the pass as the API shows it."""
        return c.SyncPass.model_validate(self.model_dump(include=set(c.SyncPass.model_fields)))


class Due(Row):
    """An instance whose scheduled pass is due."""

    instance_id: UUID
    workspace_id: UUID
    next_due_at: datetime
    interval_minutes: int


_PASS_COLUMNS = """
id, workspace_id, instance_id, mode, status, since, next_request, pages, records, created,
updated, deleted, would_delete, live_records, error, started_at, ended_at
"""
INSERT_PASS_SQL = f"""
INSERT INTO sync_passes (id, workspace_id, instance_id, mode, status, since, next_request)
VALUES ($1, $2, $3, $4, 'running', $5, $6)
ON CONFLICT DO NOTHING
RETURNING {_PASS_COLUMNS}
"""
SELECT_OPEN_PASS_SQL = f"""
SELECT {_PASS_COLUMNS} FROM sync_passes
WHERE workspace_id = $1 AND instance_id = $2 AND status IN ('running', 'held')
"""
LOCK_PASS_SQL = f"""
SELECT {_PASS_COLUMNS} FROM sync_passes WHERE workspace_id = $1 AND id = $2 FOR UPDATE
"""
LAST_PASS_SQL = f"""
SELECT {_PASS_COLUMNS} FROM sync_passes WHERE workspace_id = $1 AND instance_id = $2
ORDER BY started_at DESC LIMIT 1
"""
# The newest pass of each of several instances (one query for a list page).
LAST_PASSES_SQL = f"""
SELECT DISTINCT ON (instance_id) {_PASS_COLUMNS} FROM sync_passes
WHERE workspace_id = $1 AND instance_id = ANY($2::uuid[])
ORDER BY instance_id, started_at DESC
"""
# An instance's passes, newest first, after a (started_at, id) position.
LIST_PASSES_SQL = f"""
SELECT {_PASS_COLUMNS} FROM sync_passes
WHERE workspace_id = $1 AND instance_id = $2
  AND ($3::timestamptz IS NULL OR (started_at, id) < ($3, $4::uuid))
ORDER BY started_at DESC, id DESC
LIMIT $5
"""
# Incremental passes ask for changes since the start of the last pass that read the whole
# listing (completed, or held and then confirmed or discarded).
LAST_COMPLETE_START_SQL = """
SELECT max(started_at) FROM sync_passes
WHERE workspace_id = $1 AND instance_id = $2 AND status IN ('completed', 'discarded')
"""
ADVANCE_PASS_SQL = """
UPDATE sync_passes SET next_request = $3, pages = pages + 1, records = records + $4,
    created = created + $5, updated = updated + $6
WHERE workspace_id = $1 AND id = $2
"""
END_PASS_SQL = f"""
UPDATE sync_passes SET status = $3, deleted = deleted + $4, would_delete = $5,
    live_records = $6, error = $7, ended_at = clock_timestamp()
WHERE workspace_id = $1 AND id = $2
RETURNING {_PASS_COLUMNS}
"""
FAIL_RUNNING_SQL = """
UPDATE sync_passes SET status = 'failed', error = $3, ended_at = clock_timestamp()
WHERE workspace_id = $1 AND instance_id = $2 AND status = 'running'
"""
PENDING_JOBS_SQL = """
SELECT DISTINCT partition_key FROM jobs
WHERE workspace_id = $1 AND queue = $2 AND partition_key = ANY($3::text[]) AND status = 'pending'
"""
PENDING_JOB_SQL = """
SELECT EXISTS (SELECT 1 FROM jobs
    WHERE workspace_id = $1 AND queue = $2 AND partition_key = $3 AND status = 'pending')
"""
SELECT_INSTANCE_BY_KEY_SQL = """
SELECT id, workspace_id, connection_id, customer_id, data_source_key, status, fields_schema,
    state, last_error, revision, updated_at
FROM data_source_instances
WHERE workspace_id = $1 AND connection_id = $2 AND data_source_key = $3
"""
# Instances of data sources with a sync that have no schedule yet get one, due now.
ADD_SCHEDULES_SQL = """
INSERT INTO data_source_syncs (instance_id, workspace_id, next_due_at)
SELECT i.id, i.workspace_id, now()
FROM data_source_instances i
JOIN data_sources d ON d.workspace_id = i.workspace_id AND d.key = i.data_source_key
WHERE i.status = 'ready' AND d.spec ? 'sync'
  AND NOT EXISTS (SELECT 1 FROM data_source_syncs s WHERE s.instance_id = i.id)
ON CONFLICT DO NOTHING
"""
# Due schedules, claimed: a row another replica is scheduling right now is skipped.
CLAIM_DUE_SQL = """
SELECT s.instance_id, s.workspace_id, s.next_due_at,
       (d.spec->'sync'->>'intervalMinutes')::int AS interval_minutes
FROM data_source_syncs s
JOIN data_source_instances i ON i.workspace_id = s.workspace_id AND i.id = s.instance_id
JOIN data_sources d ON d.workspace_id = i.workspace_id AND d.key = i.data_source_key
WHERE s.next_due_at <= now() AND i.status = 'ready' AND d.spec ? 'sync'
ORDER BY s.next_due_at
LIMIT $1
FOR UPDATE OF s SKIP LOCKED
"""
SET_DUE_SQL = """
UPDATE data_source_syncs SET next_due_at = $3 WHERE workspace_id = $1 AND instance_id = $2
"""


async def insert_pass(
    conn: Conn,
    pass_id: UUID,
    instance: DataSourceInstanceRecord,
    *,
    mode: str,
    since: datetime | None,
    first: dict[str, Any],
) -> PassRecord | None:
    """Open a running pass; None when the instance has an open one already."""
    row = await conn.fetchrow(
        INSERT_PASS_SQL, pass_id, instance.workspace_id, instance.id, mode, since, first
    )
    return maybe(PassRecord, row)


async def open_pass(conn: Conn, workspace_id: UUID, instance_id: UUID) -> PassRecord | None:
    """Return the instance's running or held pass, if any."""
    return maybe(PassRecord, await conn.fetchrow(SELECT_OPEN_PASS_SQL, workspace_id, instance_id))


async def lock_pass(conn: Conn, workspace_id: UUID, pass_id: UUID) -> PassRecord:
    """Return a pass, row-locked for the caller's transaction."""
    return one(PassRecord, await conn.fetchrow(LOCK_PASS_SQL, workspace_id, pass_id))


async def last_pass(conn: Conn, workspace_id: UUID, instance_id: UUID) -> PassRecord | None:
    """Return the instance's newest pass."""
    return maybe(PassRecord, await conn.fetchrow(LAST_PASS_SQL, workspace_id, instance_id))


async def list_passes(
    conn: Conn,
    workspace_id: UUID,
    instance_id: UUID,
    *,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[PassRecord]:
    """Return the instance's passes by (startedAt, id), newest first, after a position."""
    rows = await conn.fetch(
        LIST_PASSES_SQL,
        workspace_id,
        instance_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return many(PassRecord, rows)


async def last_complete_start(conn: Conn, workspace_id: UUID, instance_id: UUID) -> datetime | None:
    """Return when the newest pass that read the whole listing started."""
    found: datetime | None = await conn.fetchval(LAST_COMPLETE_START_SQL, workspace_id, instance_id)
    return found


async def advance_pass(
    conn: Conn,
    record: PassRecord,
    *,
    next_request: dict[str, Any] | None,
    records: int,
    created: int,
    updated: int,
) -> None:
    """Count a stored page and remember the next one (None: the listing is done)."""
    await conn.execute(
        ADVANCE_PASS_SQL,
        record.workspace_id,
        record.id,
        next_request,
        records,
        created,
        updated,
    )


async def end_pass(
    conn: Conn,
    record: PassRecord,
    status: c.PassStatus,
    *,
    deleted: int = 0,
    would_delete: int | None = None,
    live_records: int | None = None,
    error: str | None = None,
) -> PassRecord:
    """Set a pass's outcome (completed, held, failed, discarded) and its end time."""
    row = await conn.fetchrow(
        END_PASS_SQL,
        record.workspace_id,
        record.id,
        status,
        deleted,
        would_delete,
        live_records,
        error,
    )
    return one(PassRecord, row)


async def fail_running(conn: Conn, workspace_id: UUID, instance_id: UUID, error: str) -> None:
    """Fail the instance's running pass (its job gave up)."""
    await conn.execute(FAIL_RUNNING_SQL, workspace_id, instance_id, error)


async def last_passes(
    conn: Conn, workspace_id: UUID, instance_ids: list[UUID]
) -> dict[UUID, PassRecord]:
    """Return the newest pass of each of the instances that has one."""
    passes = many(PassRecord, await conn.fetch(LAST_PASSES_SQL, workspace_id, instance_ids))
    return {p.instance_id: p for p in passes}


async def pending_jobs(conn: Conn, workspace_id: UUID, instance_ids: list[UUID]) -> set[UUID]:
    """Return which of the instances have a sync job waiting to run."""
    keys = [str(i) for i in instance_ids]
    rows = await conn.fetch(PENDING_JOBS_SQL, workspace_id, QUEUE, keys)
    return {UUID(r["partition_key"]) for r in rows}


async def has_pending_job(conn: Conn, workspace_id: UUID, instance_id: UUID) -> bool:
    """Tell whether a sync job of the instance waits to run."""
    return bool(await conn.fetchval(PENDING_JOB_SQL, workspace_id, QUEUE, str(instance_id)))


async def instance_by_key(
    conn: Conn, workspace_id: UUID, connection_id: UUID, data_source_key: str
) -> DataSourceInstanceRecord | None:
    """Return a connection's instance of a data source."""
    row = await conn.fetchrow(
        SELECT_INSTANCE_BY_KEY_SQL, workspace_id, connection_id, data_source_key
    )
    return maybe(DataSourceInstanceRecord, row)


async def add_schedules(conn: Conn) -> None:
    """Give every ready instance of a data source with a sync a schedule (system work)."""
    await conn.execute(ADD_SCHEDULES_SQL)


async def claim_due(conn: Conn, limit: int) -> list[Due]:
    """Lock up to ``limit`` due schedules (system work, in the caller's transaction)."""
    return many(Due, await conn.fetch(CLAIM_DUE_SQL, limit))


async def set_due(conn: Conn, due: Due, next_due_at: datetime) -> None:
    """Move a schedule to its next due time."""
    await conn.execute(SET_DUE_SQL, due.workspace_id, due.instance_id, next_due_at)
