"""The action run log, and the claim an Idempotency-Key holds on a connection for 24 hours."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from libs.common.contracts import actions as c
from libs.common.db import Conn
from libs.common.rows import many, maybe, one
from services.instances.store._base import Row


class ActionRunStart(Row):
    """What is known of a run before the app is called."""

    id: UUID
    workspace_id: UUID
    action_key: str
    action_instance_id: UUID | None
    revision: int
    connection_id: UUID
    customer_id: str
    integration_key: str
    input: Any
    idempotency_key: str | None
    fingerprint: str | None


class ActionRunEnd(Row):
    """How a run ended."""

    status: c.RunStatus
    output: Any
    output_size: int | None
    output_dropped: bool
    request: c.ActionRunMade | None
    error: c.ActionRunError | None
    duration_ms: int


class ActionRunRecord(Row):
    """An action run row."""

    id: UUID
    workspace_id: UUID
    action_key: str
    action_instance_id: UUID | None
    revision: int
    connection_id: UUID
    customer_id: str
    integration_key: str
    status: c.RunStatus
    input: Any
    output: Any
    output_size: int | None
    output_dropped: bool
    request: c.ActionRunMade | None
    error: c.ActionRunError | None
    duration_ms: int | None
    idempotency_key: str | None
    fingerprint: str | None
    started_at: datetime
    finished_at: datetime | None


_RUN_COLUMNS = """
id, workspace_id, action_key, action_instance_id, revision, connection_id, customer_id,
integration_key, status, input, output, output_size, output_dropped, request, error,
duration_ms, idempotency_key, fingerprint, started_at, finished_at
"""
_INSERT_COLUMNS = """
id, workspace_id, action_key, action_instance_id, revision, connection_id, customer_id,
integration_key, input, idempotency_key, fingerprint, status, output, output_size,
output_dropped, request, error, duration_ms, finished_at
"""
# A key older than the idempotency window is released before the new claim is tried.
RELEASE_KEY_SQL = """
UPDATE action_runs SET idempotency_key = NULL
WHERE workspace_id = $1 AND connection_id = $2 AND idempotency_key = $3
  AND started_at < clock_timestamp() - make_interval(secs => $4)
"""
CLAIM_SQL = f"""
INSERT INTO action_runs (id, workspace_id, action_key, action_instance_id, revision,
    connection_id, customer_id, integration_key, input, idempotency_key, fingerprint, status)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'running')
ON CONFLICT (workspace_id, connection_id, idempotency_key) WHERE idempotency_key IS NOT NULL
DO NOTHING
RETURNING {_RUN_COLUMNS}
"""
SELECT_BY_KEY_SQL = f"""
SELECT {_RUN_COLUMNS} FROM action_runs
WHERE workspace_id = $1 AND connection_id = $2 AND idempotency_key = $3
"""
# A 'running' claim left by a process that died is taken over once it is older than a run
# may last: the app is called again with the same key (an app that honours keys dedupes).
TAKE_OVER_SQL = f"""
UPDATE action_runs SET started_at = clock_timestamp()
WHERE workspace_id = $1 AND id = $2 AND status = 'running'
  AND started_at < clock_timestamp() - make_interval(secs => $3)
RETURNING {_RUN_COLUMNS}
"""
INSERT_FINISHED_SQL = f"""
INSERT INTO action_runs ({_INSERT_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
    clock_timestamp())
RETURNING {_RUN_COLUMNS}
"""
FINISH_SQL = f"""
UPDATE action_runs SET status = $3, output = $4, output_size = $5, output_dropped = $6,
    request = $7, error = $8, duration_ms = $9, finished_at = clock_timestamp()
WHERE workspace_id = $1 AND id = $2 RETURNING {_RUN_COLUMNS}
"""
SELECT_RUN_SQL = f"SELECT {_RUN_COLUMNS} FROM action_runs WHERE workspace_id = $1 AND id = $2"
LIST_RUNS_SQL = f"""
SELECT {_RUN_COLUMNS} FROM action_runs
WHERE workspace_id = $1 AND ($2::text IS NULL OR action_key = $2)
  AND ($3::uuid IS NULL OR connection_id = $3) AND ($4::text IS NULL OR customer_id = $4)
  AND ($5::text IS NULL OR status = $5)
  AND ($6::timestamptz IS NULL OR started_at >= $6) AND ($7::timestamptz IS NULL OR started_at < $7)
  AND ($8::timestamptz IS NULL OR (started_at, id) < ($8, $9))
ORDER BY started_at DESC, id DESC LIMIT $10
"""
DROP_OLD_SQL = """
UPDATE action_runs SET input = NULL, output = NULL, output_dropped = true
WHERE id IN (
    SELECT id FROM action_runs
    WHERE NOT output_dropped AND finished_at < clock_timestamp() - make_interval(secs => $1)
    LIMIT $2 FOR UPDATE SKIP LOCKED
)
"""


def _json(model: Row | c.ActionRunMade | c.ActionRunError | None) -> object:
    return None if model is None else model.model_dump(mode="json")


def _end_values(end: ActionRunEnd) -> tuple[Any, ...]:
    return (
        end.status,
        end.output,
        end.output_size,
        end.output_dropped,
        _json(end.request),
        _json(end.error),
        end.duration_ms,
    )


async def claim_key(
    conn: Conn, start: ActionRunStart, window: float
) -> tuple[ActionRunRecord, bool]:
    """Hold ``start.idempotency_key`` on the connection with a 'running' run.

    Returns (the run holding the key, whether it is ``start``'s new claim). A key held
    longer than ``window`` seconds is released first. Call it in a transaction.
    """
    await conn.execute(
        RELEASE_KEY_SQL, start.workspace_id, start.connection_id, start.idempotency_key, window
    )
    row = await conn.fetchrow(
        CLAIM_SQL,
        start.id,
        start.workspace_id,
        start.action_key,
        start.action_instance_id,
        start.revision,
        start.connection_id,
        start.customer_id,
        start.integration_key,
        start.input,
        start.idempotency_key,
        start.fingerprint,
    )
    if row is not None:
        return one(ActionRunRecord, row), True
    held = await conn.fetchrow(
        SELECT_BY_KEY_SQL, start.workspace_id, start.connection_id, start.idempotency_key
    )
    return one(ActionRunRecord, held), False


async def take_over(
    conn: Conn, record: ActionRunRecord, abandoned_after: float
) -> ActionRunRecord | None:
    """Take over a 'running' claim older than ``abandoned_after`` seconds (None: still live)."""
    row = await conn.fetchrow(TAKE_OVER_SQL, record.workspace_id, record.id, abandoned_after)
    return maybe(ActionRunRecord, row)


async def insert_finished(conn: Conn, start: ActionRunStart, end: ActionRunEnd) -> ActionRunRecord:
    """Log a run without an Idempotency-Key in one write, once it ended."""
    row = await conn.fetchrow(
        INSERT_FINISHED_SQL,
        start.id,
        start.workspace_id,
        start.action_key,
        start.action_instance_id,
        start.revision,
        start.connection_id,
        start.customer_id,
        start.integration_key,
        start.input,
        start.idempotency_key,
        start.fingerprint,
        *_end_values(end),
    )
    return one(ActionRunRecord, row)


async def finish(
    conn: Conn, workspace_id: UUID, run_id: UUID, end: ActionRunEnd
) -> ActionRunRecord:
    """Write how a claimed run ended."""
    row = await conn.fetchrow(FINISH_SQL, workspace_id, run_id, *_end_values(end))
    return one(ActionRunRecord, row)


async def select_run(conn: Conn, workspace_id: UUID, run_id: UUID) -> ActionRunRecord | None:
    """Return one run."""
    return maybe(ActionRunRecord, await conn.fetchrow(SELECT_RUN_SQL, workspace_id, run_id))


async def list_runs(
    conn: Conn,
    workspace_id: UUID,
    req: c.ActionRunListRequest,
    *,
    customer_id: str | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[ActionRunRecord]:
    """Return runs newest first, after the cursor."""
    at, last = before if before else (None, None)
    rows = await conn.fetch(
        LIST_RUNS_SQL,
        workspace_id,
        req.action_key,
        req.connection_id,
        customer_id,
        req.status,
        req.from_,
        req.to,
        at,
        last,
        limit,
    )
    return many(ActionRunRecord, rows)


async def drop_old_outputs(conn: Conn, older_than: float, limit: int) -> int:
    """Drop up to ``limit`` inputs/outputs of runs ended over ``older_than`` s ago (system work)."""
    status = await conn.execute(DROP_OLD_SQL, older_than, limit)
    return int(status.split()[-1])
