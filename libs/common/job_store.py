"""Keep jobs in PostgreSQL: what a job is, and the SQL that enqueues, claims and finishes it.

:mod:`libs.common.jobs` states the guarantees and runs the workers; this module is the
table's side of them (the common ``jobs`` table every service schema has). Each query is
explained before it appears where the reason is not in the SQL itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

from libs.common import tracing
from libs.common.db import Conn
from libs.common.rows import many, maybe

JobStatus = Literal["pending", "running", "succeeded", "failed", "cancelled"]


class JobSpec(BaseModel):
    """What to enqueue: the work (queue, kind, payload) and how it may run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: str
    kind: str
    payload: dict[str, Any] = Field(default_factory=dict)
    workspace_id: UUID | None = None
    partition_key: str | None = None
    max_attempts: int = Field(default=5, ge=1)
    not_before: datetime | None = None
    """When the job may start first; None means now."""
    dedupe_key: str | None = None
    id: UUID = Field(default_factory=uuid4)


class Job(BaseModel):
    """A job row."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    seq: int
    workspace_id: UUID | None
    queue: str
    kind: str
    payload: dict[str, Any]
    partition_key: str | None
    status: JobStatus
    attempts: int
    max_attempts: int
    not_before: datetime
    lease_owner: str | None
    lease_until: datetime | None
    last_error: str | None
    dedupe_key: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    trace_context: str | None = None  # the traceparent of whoever queued it (tracing on)


class Outcome(BaseModel):
    """What one attempt came to: done, failed for good, or waiting for a retry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["succeeded", "failed", "pending"]
    error: str | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True)
class QueueOptions:
    """How a queue's workers claim and retry (seconds unless said otherwise)."""

    lease: float = 30.0
    partition_limit: int = 1
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    poll_interval: float = 1.0
    stop_grace: float = 10.0
    candidates: int = 16
    """Partition heads one claim considers before giving up for this round."""
    retention: float = 7 * 24 * 3600.0
    """How long a finished job (and with it its dedupe key) is kept."""
    sweep_interval: float = 600.0
    """The pause between sweeps for finished jobs past their retention."""
    sweep_batch: int = 500
    """The finished jobs one transaction of a sweep deletes at most."""


_COLUMNS = """
id, seq, workspace_id, queue, kind, payload, partition_key, status, attempts, max_attempts,
not_before, lease_owner, lease_until, last_error, dedupe_key, created_at, updated_at, finished_at,
trace_context
"""
_READY = """
((status = 'pending' AND not_before <= now()) OR (status = 'running' AND lease_until < now()))
"""

# The job and the workers' wake-up (NOTIFY, sent on commit) in one round trip; nothing
# is sent when a dedupe key named an existing job (no row, so no notify).
INSERT_JOB_SQL = f"""
WITH job AS (
    INSERT INTO jobs (id, workspace_id, queue, kind, payload, partition_key, max_attempts,
        not_before, dedupe_key, trace_context)
    VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()), $9, $10)
    ON CONFLICT (queue, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
    RETURNING {_COLUMNS}
), woken AS (
    SELECT pg_notify('tether_jobs_' || current_schema(), $3) FROM job
)
SELECT job.* FROM job, woken
"""
SELECT_DEDUPED_SQL = f"SELECT {_COLUMNS} FROM jobs WHERE queue = $1 AND dedupe_key = $2"
SELECT_JOB_SQL = f"""
SELECT {_COLUMNS} FROM jobs WHERE workspace_id IS NOT DISTINCT FROM $1 AND id = $2
"""
CANCEL_SQL = f"""
UPDATE jobs SET status = 'cancelled', updated_at = now(), finished_at = now()
WHERE workspace_id IS NOT DISTINCT FROM $1 AND id = ANY($2::uuid[]) AND status = 'pending'
RETURNING {_COLUMNS}
"""

# The claim, in three steps.
#
# 1. Candidates: the head (first by not_before, seq) of every partition with a ready job
#    and room under its limit. Heads, not the oldest ready jobs: a deep partition offers
#    one candidate, like every other partition. And heads in the order their partitions
#    were last served, not in the order they were enqueued: a head counts as arrived at
#    its not_before or at its partition's latest finished job, whichever is later. A
#    partition that just had a turn goes behind the ones waiting since before that, so
#    a deep queue never holds up another partition's job for more than a round. A job
#    without a partition key is a partition of its own; a job whose lease ran out is a
#    candidate too (step 2 takes its partition's head, which it may be).
#
#    The partitions are found by a skip scan (a recursive walk of the pending-partition
#    index, one probe per distinct partition), and each head by one more probe: a claim
#    costs in proportion to the partitions with pending work, never to the jobs queued in
#    them, so 10,000 jobs behind one connection cost other connections' claims nothing.
#    (Hundreds of thousands of distinct partitions would call for a partitions table.)
SELECT_CANDIDATES_SQL = """
WITH RECURSIVE parts(pk) AS (
    (SELECT partition_key FROM jobs
     WHERE queue = $1 AND status = 'pending' AND partition_key IS NOT NULL
     ORDER BY partition_key LIMIT 1)
    UNION ALL
    SELECT (SELECT j.partition_key FROM jobs j
            WHERE j.queue = $1 AND j.status = 'pending' AND j.partition_key IS NOT NULL
              AND j.partition_key > parts.pk
            ORDER BY j.partition_key LIMIT 1)
    FROM parts WHERE parts.pk IS NOT NULL
), heads AS (
    SELECT h.id, parts.pk AS partition_key, h.not_before, h.seq
    FROM parts CROSS JOIN LATERAL (
        SELECT id, not_before, seq FROM jobs
        WHERE queue = $1 AND status = 'pending' AND partition_key = parts.pk
        ORDER BY not_before, seq LIMIT 1) h
    WHERE h.not_before <= now()
    UNION ALL
    (SELECT id, NULL, not_before, seq FROM jobs
     WHERE queue = $1 AND status = 'pending' AND partition_key IS NULL AND not_before <= now()
     ORDER BY not_before, seq LIMIT $3)
    UNION ALL
    (SELECT id, partition_key, not_before, seq FROM jobs
     WHERE queue = $1 AND status = 'running' AND lease_until < now()
     ORDER BY lease_until LIMIT $3)
)
SELECT id, partition_key FROM heads
WHERE partition_key IS NULL OR (
    SELECT count(*) FROM jobs r
    WHERE r.queue = $1 AND r.partition_key = heads.partition_key
      AND r.status = 'running' AND r.lease_until >= now()) < $2
ORDER BY greatest(not_before, (
    SELECT max(f.finished_at) FROM jobs f
    WHERE f.queue = $1 AND f.partition_key = heads.partition_key)), seq
LIMIT $3
"""
# 2. The limit is a count of a partition's running jobs, and two replicas counting at once
#    would both see room for one more. Row locks cannot prevent that (the rows that would
#    make the count too high do not exist yet), so claimers of one partition serialise on
#    a transaction-scoped advisory lock keyed by the partition. It is *tried*, never
#    waited for: a partition another worker is claiming from right now is skipped this
#    round. Held until commit, it is released only once the new running row is visible,
#    so the next holder's count includes it. (A hash collision only serialises two
#    partitions' claims; it never lets a limit be exceeded.)
LOCK_PARTITION_SQL = """
SELECT pg_try_advisory_xact_lock(
    hashtextextended('tether.jobs:' || current_schema() || ':' || $1 || ':' || $2, 0))
"""
# Once the lock is held (a statement of its own: only a snapshot taken after it sees the
# previous holder's lease), one statement reads the partition's running count and head.
ROOM_AND_HEAD_SQL = f"""
SELECT (SELECT count(*) FROM jobs
        WHERE queue = $1 AND partition_key = $2 AND status = 'running'
          AND lease_until >= now()) AS running,
       (SELECT id FROM jobs WHERE queue = $1 AND partition_key = $2 AND {_READY}
        ORDER BY not_before, seq LIMIT 1) AS head
"""
# 3. Lease the chosen job, unless another transaction holds it (SKIP LOCKED) or it stopped
#    being ready meanwhile. Within a partition only the head is ever leased: should the
#    head be locked, the partition waits for the next round rather than run out of order.
LEASE_SQL = f"""
UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, lease_owner = $2,
    lease_until = now() + make_interval(secs => $3), updated_at = now()
FROM (SELECT id FROM jobs WHERE id = $1 AND {_READY} FOR UPDATE SKIP LOCKED) chosen
WHERE j.id = chosen.id
RETURNING {", ".join(f"j.{c.strip()}" for c in _COLUMNS.split(","))}
"""
# The heartbeat: extend the lease while this worker still holds the job.
EXTEND_LEASE_SQL = """
UPDATE jobs SET lease_until = now() + make_interval(secs => $3)
WHERE id = $1 AND lease_owner = $2 AND status = 'running'
RETURNING true
"""
# An outcome counts only while this worker still holds the job (its lease may have run
# out and another worker taken it over).
FINISH_SQL = f"""
UPDATE jobs SET status = $3, last_error = $4, not_before = coalesce($5, not_before),
    lease_owner = NULL, lease_until = NULL, updated_at = now(),
    finished_at = CASE WHEN $3 IN ('succeeded', 'failed') THEN now() END
WHERE id = $1 AND lease_owner = $2 AND status = 'running'
RETURNING {_COLUMNS}
"""
# Retention: a batch of a queue's jobs finished before the cutoff, oldest first; rows
# another sweep (another replica) is deleting right now are skipped, never waited for.
PURGE_SQL = """
WITH gone AS (
    DELETE FROM jobs WHERE id IN (
        SELECT id FROM jobs
        WHERE queue = $1 AND status IN ('succeeded', 'failed', 'cancelled')
          AND finished_at < now() - make_interval(secs => $2)
        ORDER BY finished_at
        LIMIT $3
        FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone
"""


async def enqueue(conn: Conn, spec: JobSpec) -> Job:
    """Insert a job in the caller's transaction; return it (or the job its dedupe key named)."""
    while True:
        job = maybe(
            Job,
            await conn.fetchrow(
                INSERT_JOB_SQL,
                spec.id,
                spec.workspace_id,
                spec.queue,
                spec.kind,
                spec.payload,
                spec.partition_key,
                spec.max_attempts,
                spec.not_before,
                spec.dedupe_key,
                tracing.current_traceparent(),
            ),
        )
        if job is not None:
            return job
        # Only a dedupe key conflicts: the first job stands, unless the retention sweep
        # deleted it in between (its key is free again, so insert once more).
        first = maybe(Job, await conn.fetchrow(SELECT_DEDUPED_SQL, spec.queue, spec.dedupe_key))
        if first is not None:
            return first


async def get_job(conn: Conn, workspace_id: UUID | None, job_id: UUID) -> Job | None:
    """Return one job of the workspace (None for system jobs), or None."""
    return maybe(Job, await conn.fetchrow(SELECT_JOB_SQL, workspace_id, job_id))


async def cancel(conn: Conn, workspace_id: UUID | None, job_ids: list[UUID]) -> list[Job]:
    """Cancel the pending ones of ``job_ids``; return them (running jobs run on)."""
    return many(Job, await conn.fetch(CANCEL_SQL, workspace_id, job_ids))


@dataclass(frozen=True)
class Claimed:
    """What one claim came to: a leased job, or none and whether a partition was busy."""

    job: Job | None
    busy: bool = False
    """A partition with a ready job was skipped because another worker was claiming from
    it at that moment: try again at once rather than idle for a poll interval."""


async def claim(conn: Conn, queue: str, owner: str, options: QueueOptions) -> Job | None:
    """Lease the next job of ``queue`` that may start (run inside a transaction)."""
    return (await claim_next(conn, queue, owner, options)).job


async def claim_next(conn: Conn, queue: str, owner: str, options: QueueOptions) -> Claimed:
    """Lease the next job of ``queue`` that may start, saying whether a partition was busy."""
    candidates = await conn.fetch(
        SELECT_CANDIDATES_SQL, queue, options.partition_limit, options.candidates
    )
    busy = False
    for candidate in candidates:
        job_id: UUID = candidate["id"]
        partition: str | None = candidate["partition_key"]
        if partition is not None:
            if not await conn.fetchval(LOCK_PARTITION_SQL, queue, partition):
                busy = True  # another worker is claiming from this partition right now
                continue
            room = await conn.fetchrow(ROOM_AND_HEAD_SQL, queue, partition)
            if room is None or room["running"] >= options.partition_limit or not room["head"]:
                continue
            job_id = room["head"]
        job = maybe(Job, await conn.fetchrow(LEASE_SQL, job_id, owner, options.lease))
        if job is not None:
            return Claimed(job)
        busy = True  # the row was locked by another claim (SKIP LOCKED)
    return Claimed(None, busy)


async def finish(conn: Conn, job: Job, owner: str, outcome: Outcome) -> Job | None:
    """Record ``outcome`` if ``owner`` still holds the job; return the job as it is now."""
    return maybe(
        Job,
        await conn.fetchrow(
            FINISH_SQL, job.id, owner, outcome.status, outcome.error, outcome.retry_at
        ),
    )


async def extend_lease(conn: Conn, job: Job, owner: str, lease: float) -> bool:
    """Extend ``owner``'s lease of ``job`` by ``lease`` seconds from now; False if it is lost."""
    return bool(await conn.fetchval(EXTEND_LEASE_SQL, job.id, owner, lease))


async def purge(conn: Conn, queue: str, retention: float, limit: int) -> int:
    """Delete up to ``limit`` jobs of ``queue`` finished over ``retention`` seconds ago."""
    deleted: int = await conn.fetchval(PURGE_SQL, queue, retention, limit)
    return deleted
