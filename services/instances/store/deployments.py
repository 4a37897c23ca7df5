"""Deployments and their steps: insert, supersede, read, lock and write.

What the counts and outcomes mean (the progress roll-up, the retry policy) is decided in
``services/instances/lifecycle.py``; leasing and retrying a step is its job's
(``libs/common/jobs.py``, queue ``deployments``, the job's id is the step's). This module
only reads and writes the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from libs.common.contracts import instances as c
from libs.common.db import Conn
from libs.common.rows import many, maybe, one
from services.instances.store._base import Row
from services.instances.store.connections import KnownConnection


class DeploymentRecord(Row):
    """A deployment row."""

    id: UUID
    workspace_id: UUID
    connection_id: UUID
    customer_id: str
    integration_key: str
    reason: str
    status: c.DeploymentStatus
    steps_total: int
    steps_done: int
    superseded_by: UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class StepRecord(Row):
    """A deployment step row."""

    id: UUID
    deployment_id: UUID
    workspace_id: UUID
    ord: int
    kind: c.StepKind
    element_key: str
    status: c.StepStatus
    attempts: int
    error: str | None
    updated_at: datetime


@dataclass(frozen=True)
class PlannedStep:
    """A step a plan asks for: what to do, to which element."""

    kind: c.StepKind
    element_key: str


class StepCounts(Row):
    """How many of a deployment's steps are done (succeeded or failed), failed, in all."""

    done: int
    failed: int
    total: int


_DEPLOYMENT_COLUMNS = """
id, workspace_id, connection_id, customer_id, integration_key, reason, status, steps_total,
steps_done, superseded_by, created_at, started_at, finished_at
"""
_STEP_COLUMNS = (
    "id, deployment_id, workspace_id, ord, kind, element_key, status, attempts, error, updated_at"
)

UNFINISHED_STEPS_SQL = """
SELECT s.id FROM deployment_steps s JOIN deployments d ON d.id = s.deployment_id
WHERE d.workspace_id = $1 AND d.connection_id = $2 AND d.status IN ('pending', 'running')
  AND s.status IN ('pending', 'running')
ORDER BY s.id
"""
SUPERSEDE_SQL = """
UPDATE deployments SET status = 'cancelled', superseded_by = $3, finished_at = now()
WHERE workspace_id = $1 AND connection_id = $2 AND status IN ('pending', 'running')
RETURNING id
"""
LOCK_UNFINISHED_STEPS_SQL = """
SELECT s.id FROM deployment_steps s JOIN deployments d ON d.id = s.deployment_id
WHERE d.workspace_id = $1 AND d.connection_id = $2 AND d.status IN ('pending', 'running')
ORDER BY s.id FOR UPDATE OF s
"""
CANCEL_STEPS_SQL = """
UPDATE deployment_steps SET status = 'cancelled', updated_at = now()
WHERE deployment_id = ANY($1::uuid[]) AND status = 'pending'
"""
INSERT_DEPLOYMENT_SQL = f"""
INSERT INTO deployments (id, workspace_id, connection_id, customer_id, integration_key, reason,
    status, steps_total, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $7 = 'succeeded' THEN now() END)
RETURNING {_DEPLOYMENT_COLUMNS}
"""
INSERT_STEPS_SQL = """
INSERT INTO deployment_steps (id, deployment_id, workspace_id, ord, kind, element_key)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::text[])
"""
SELECT_DEPLOYMENT_SQL = (
    f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE workspace_id = $1 AND id = $2"
)
SELECT_STEPS_SQL = f"""
SELECT {_STEP_COLUMNS} FROM deployment_steps WHERE workspace_id = $1 AND deployment_id = $2
ORDER BY ord
"""
LIST_DEPLOYMENTS_SQL = f"""
SELECT {_DEPLOYMENT_COLUMNS} FROM deployments
WHERE workspace_id = $1
  AND ($2::uuid IS NULL OR connection_id = $2)
  AND ($3::text IS NULL OR integration_key = $3)
  AND ($4::text IS NULL OR status = $4)
  AND ($5::text IS NULL OR customer_id = $5)
  AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7))
ORDER BY created_at DESC, id DESC
LIMIT $8
"""
SELECT_STEP_SQL = (
    f"SELECT {_STEP_COLUMNS} FROM deployment_steps WHERE workspace_id = $1 AND id = $2"
)
LOCK_STEP_SQL = f"SELECT {_STEP_COLUMNS} FROM deployment_steps WHERE id = $1 FOR UPDATE"
SET_STEP_SQL = f"""
UPDATE deployment_steps SET status = $2, attempts = $3, error = $4, updated_at = now()
WHERE id = $1 RETURNING {_STEP_COLUMNS}
"""
MARK_RUNNING_SQL = """
UPDATE deployments SET status = 'running', started_at = coalesce(started_at, now())
WHERE id = $1 AND status = 'pending'
"""
LOCK_DEPLOYMENT_SQL = f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1 FOR UPDATE"
COUNT_STEPS_SQL = """
SELECT count(*) FILTER (WHERE status IN ('succeeded', 'failed')) AS done,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) AS total
FROM deployment_steps WHERE deployment_id = $1
"""
SET_PROGRESS_SQL = f"""
UPDATE deployments SET steps_done = $2, status = $3,
    finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'partial') THEN now() ELSE finished_at END
WHERE id = $1 RETURNING {_DEPLOYMENT_COLUMNS}
"""


async def supersede(conn: Conn, workspace_id: UUID, connection_id: UUID, newer: UUID) -> list[UUID]:
    """Cancel the connection's unfinished deployments in favour of ``newer``.

    Workers lock a step's job, then the step, then its deployment (claim, finish); locking
    the deployments first here deadlocked with them, so the caller cancels the steps' jobs
    first (``lifecycle.start``), then their steps are locked, then the deployments.
    """
    await conn.execute(LOCK_UNFINISHED_STEPS_SQL, workspace_id, connection_id)
    ids = [r["id"] for r in await conn.fetch(SUPERSEDE_SQL, workspace_id, connection_id, newer)]
    if ids:
        await conn.execute(CANCEL_STEPS_SQL, ids)
    return ids


async def insert_deployment(
    conn: Conn,
    deployment_id: UUID,
    known: KnownConnection,
    *,
    reason: str,
    status: c.DeploymentStatus,
    steps: list[PlannedStep],
    step_ids: list[UUID],
) -> DeploymentRecord:
    """Insert a deployment and its steps, in plan order."""
    record = one(
        DeploymentRecord,
        await conn.fetchrow(
            INSERT_DEPLOYMENT_SQL,
            deployment_id,
            known.workspace_id,
            known.id,
            known.customer_id,
            known.integration_key,
            reason,
            status,
            len(steps),
        ),
    )
    if steps:
        count = len(steps)
        await conn.execute(
            INSERT_STEPS_SQL,
            step_ids,
            [deployment_id] * count,
            [known.workspace_id] * count,
            list(range(count)),
            [s.kind for s in steps],
            [s.element_key for s in steps],
        )
    return record


async def select_deployment(
    conn: Conn, workspace_id: UUID, deployment_id: UUID
) -> DeploymentRecord | None:
    """Return one deployment."""
    row = await conn.fetchrow(SELECT_DEPLOYMENT_SQL, workspace_id, deployment_id)
    return maybe(DeploymentRecord, row)


async def select_steps(conn: Conn, workspace_id: UUID, deployment_id: UUID) -> list[StepRecord]:
    """Return a deployment's steps in order."""
    return many(StepRecord, await conn.fetch(SELECT_STEPS_SQL, workspace_id, deployment_id))


async def list_deployments(
    conn: Conn,
    workspace_id: UUID,
    *,
    connection_id: UUID | None,
    integration_key: str | None,
    status: c.DeploymentStatus | None,
    customer_id: str | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[DeploymentRecord]:
    """Return deployments newest first, after the cursor."""
    at, last = before if before else (None, None)
    rows = await conn.fetch(
        LIST_DEPLOYMENTS_SQL,
        workspace_id,
        connection_id,
        integration_key,
        status,
        customer_id,
        at,
        last,
        limit,
    )
    return many(DeploymentRecord, rows)


async def unfinished_steps(conn: Conn, workspace_id: UUID, connection_id: UUID) -> list[UUID]:
    """Return the ids of the unfinished steps of a connection's unfinished deployments."""
    return [r["id"] for r in await conn.fetch(UNFINISHED_STEPS_SQL, workspace_id, connection_id)]


async def select_step(conn: Conn, workspace_id: UUID, step_id: UUID) -> StepRecord | None:
    """Return one step."""
    return maybe(StepRecord, await conn.fetchrow(SELECT_STEP_SQL, workspace_id, step_id))


async def lock_step(conn: Conn, step_id: UUID) -> StepRecord:
    """Return a step, row-locked until the caller's transaction ends (system work)."""
    return one(StepRecord, await conn.fetchrow(LOCK_STEP_SQL, step_id))


async def set_step(
    conn: Conn, step_id: UUID, *, status: c.StepStatus, attempts: int, error: str | None
) -> StepRecord:
    """Write a step's status, its attempts so far and the error shown."""
    return one(StepRecord, await conn.fetchrow(SET_STEP_SQL, step_id, status, attempts, error))


async def mark_running(conn: Conn, deployment_id: UUID) -> None:
    """Mark a pending deployment running (its first step started)."""
    await conn.execute(MARK_RUNNING_SQL, deployment_id)


async def lock_deployment(conn: Conn, deployment_id: UUID) -> DeploymentRecord:
    """Return a deployment, row-locked until the caller's transaction ends."""
    return one(DeploymentRecord, await conn.fetchrow(LOCK_DEPLOYMENT_SQL, deployment_id))


async def count_steps(conn: Conn, deployment_id: UUID) -> StepCounts:
    """Return how far a deployment's steps are."""
    return one(StepCounts, await conn.fetchrow(COUNT_STEPS_SQL, deployment_id))


async def set_progress(
    conn: Conn, deployment_id: UUID, *, steps_done: int, status: c.DeploymentStatus
) -> DeploymentRecord:
    """Write a deployment's progress (a finishing status also sets ``finished_at``)."""
    row = await conn.fetchrow(SET_PROGRESS_SQL, deployment_id, steps_done, status)
    return one(DeploymentRecord, row)
