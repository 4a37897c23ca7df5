"""Synced records: the stored copy of a data-source instance's records, with change detection.

:func:`apply_records` writes a page (or one webhook's record) and returns what changed —
new ids and changed hashes — in one statement, so a page's rows and its events can
commit together. Deletions are marked (``deleted_at``), never removed: a record that comes
back is a creation again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from libs.common.contracts import instances as c
from libs.common.db import Conn
from libs.common.rows import many
from services.instances.store._base import Row


@dataclass(frozen=True)
class IncomingRecord:
    """A record read from the app: id, content hash, canonical JSON text, the app's time."""

    record_id: str
    hash: bytes
    data: str
    updated_at: datetime | None


class Change(Row):
    """A record that changed: created (new, or back after a deletion) or updated."""

    record_id: str
    kind: Literal["created", "updated"]
    data: Any


class Gone(Row):
    """A record a deletion marked."""

    record_id: str


# The prior state is read (and locked) in the statement's snapshot, before the upsert
# writes: what differs is what changed. A row is rewritten only when its content changed,
# it comes back, or a full pass marks it seen; an unchanged record of an incremental pass
# costs no write.
APPLY_RECORDS_SQL = """
WITH incoming AS (
    SELECT t.record_id, t.hash, t.data::jsonb AS data, t.updated_at
    FROM unnest($3::text[], $4::bytea[], $5::text[], $6::timestamptz[])
        AS t(record_id, hash, data, updated_at)
), prior AS (
    SELECT r.record_id, r.hash, r.deleted_at FROM data_records r
    WHERE r.workspace_id = $1 AND r.instance_id = $2 AND r.record_id = ANY($3::text[])
    FOR UPDATE
), written AS (
    INSERT INTO data_records AS r (workspace_id, instance_id, record_id, hash, data,
        updated_at, seen_pass)
    SELECT $1, $2, record_id, hash, data, updated_at, $7 FROM incoming
    ON CONFLICT (workspace_id, instance_id, record_id) DO UPDATE SET
        hash = EXCLUDED.hash, data = EXCLUDED.data, updated_at = EXCLUDED.updated_at,
        deleted_at = NULL, seen_pass = coalesce(EXCLUDED.seen_pass, r.seen_pass),
        last_modified_at = CASE WHEN r.hash <> EXCLUDED.hash OR r.deleted_at IS NOT NULL
                                THEN now() ELSE r.last_modified_at END
    WHERE r.hash <> EXCLUDED.hash OR r.deleted_at IS NOT NULL
       OR (EXCLUDED.seen_pass IS NOT NULL AND r.seen_pass IS DISTINCT FROM EXCLUDED.seen_pass)
    RETURNING 1
)
SELECT i.record_id, i.data,
       CASE WHEN p.record_id IS NULL OR p.deleted_at IS NOT NULL THEN 'created'
            ELSE 'updated' END AS kind
FROM incoming i LEFT JOIN prior p USING (record_id)
WHERE p.record_id IS NULL OR p.deleted_at IS NOT NULL OR p.hash <> i.hash
"""
# Records a completed full pass did not see, left untouched since it started (a webhook
# may have written one meanwhile), are marked deleted.
MARK_UNSEEN_SQL = """
UPDATE data_records SET deleted_at = now(), last_modified_at = now()
WHERE workspace_id = $1 AND instance_id = $2 AND deleted_at IS NULL
  AND seen_pass IS DISTINCT FROM $3 AND last_modified_at < $4
RETURNING record_id
"""
COUNT_UNSEEN_SQL = """
SELECT count(*) FILTER (WHERE seen_pass IS DISTINCT FROM $3 AND last_modified_at < $4) AS unseen,
       count(*) AS live
FROM data_records WHERE workspace_id = $1 AND instance_id = $2 AND deleted_at IS NULL
"""
MARK_DELETED_SQL = """
WITH marked AS (
    UPDATE data_records SET deleted_at = now(), last_modified_at = now()
    WHERE workspace_id = $1 AND instance_id = $2 AND record_id = $3 AND deleted_at IS NULL
    RETURNING 1)
SELECT CASE WHEN EXISTS (SELECT 1 FROM marked) THEN 'marked'
            WHEN EXISTS (SELECT 1 FROM data_records WHERE workspace_id = $1
                         AND instance_id = $2 AND record_id = $3) THEN 'already'
            ELSE 'absent' END
"""
LIST_SYNCED_SQL = """
SELECT record_id AS id, data, updated_at, deleted_at, first_seen_at, last_modified_at
FROM data_records
WHERE workspace_id = $1 AND instance_id = $2
  AND ($3::timestamptz IS NULL OR last_modified_at > $3)
  AND ($4::timestamptz IS NULL OR (last_modified_at, record_id) > ($4, $5::text))
ORDER BY last_modified_at, record_id
LIMIT $6
"""


async def apply_records(
    conn: Conn,
    workspace_id: UUID,
    instance_id: UUID,
    records: list[IncomingRecord],
    *,
    seen_pass: UUID | None,
) -> list[Change]:
    """Store ``records`` (ids unique) and return those that are new or changed.

    ``seen_pass``: the full pass that read them (None for incremental passes and webhooks).
    """
    if not records:
        return []
    rows = await conn.fetch(
        APPLY_RECORDS_SQL,
        workspace_id,
        instance_id,
        [r.record_id for r in records],
        [r.hash for r in records],
        [r.data for r in records],
        [r.updated_at for r in records],
        seen_pass,
    )
    return many(Change, rows)


async def count_unseen(
    conn: Conn, workspace_id: UUID, instance_id: UUID, pass_id: UUID, started_at: datetime
) -> tuple[int, int]:
    """Return (records a full pass did not see, live records) of an instance."""
    row = await conn.fetchrow(COUNT_UNSEEN_SQL, workspace_id, instance_id, pass_id, started_at)
    return (int(row["unseen"]), int(row["live"])) if row else (0, 0)


async def mark_unseen_deleted(
    conn: Conn, workspace_id: UUID, instance_id: UUID, pass_id: UUID, started_at: datetime
) -> list[str]:
    """Mark deleted every live record the pass did not see; return their ids."""
    rows = await conn.fetch(MARK_UNSEEN_SQL, workspace_id, instance_id, pass_id, started_at)
    return [str(r["record_id"]) for r in rows]


async def mark_deleted(
    conn: Conn, workspace_id: UUID, instance_id: UUID, record_id: str
) -> Literal["marked", "already", "absent"]:
    """Mark one record deleted: ``marked`` now, ``already`` deleted, or never stored."""
    found: Literal["marked", "already", "absent"] = await conn.fetchval(
        MARK_DELETED_SQL, workspace_id, instance_id, record_id
    )
    return found


async def list_synced(
    conn: Conn,
    workspace_id: UUID,
    instance_id: UUID,
    *,
    changed_since: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[c.SyncedRecord]:
    """Return stored records by (lastModifiedAt, id), after a position and a time."""
    rows = await conn.fetch(
        LIST_SYNCED_SQL,
        workspace_id,
        instance_id,
        changed_since,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return many(c.SyncedRecord, rows)
