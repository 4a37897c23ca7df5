"""Run durable jobs: enqueue with the write that needs them, run them until they are done.

Deployment steps, flow runs, syncs and notification deliveries are jobs: rows of the
service's ``jobs`` table (a common migration, so every schema has one). What a job gets:

* **Enqueued atomically.** :func:`enqueue` inserts the job in the caller's transaction: a
  job and the domain write that needs it commit together, or neither does. A ``NOTIFY``
  (delivered only on commit) wakes idle workers; a poll finds the job anyway.
* **At least once to its handler.** A worker claims a job (``FOR UPDATE SKIP LOCKED``, so
  replicas never claim the same row) with a lease of ``lease`` seconds. A job whose
  worker died (kill -9, a lost host) is claimed again once its lease ends. Handlers must
  therefore be idempotent: ``job.id`` is stable across attempts and is the idempotency
  key to give an app; ``job.attempts`` says which attempt this is (1-based).
* **Attempts are capped.** Every claim counts an attempt: failures, crashes and leases
  that ran out alike. A job claimed beyond ``max_attempts`` (its worker died every time)
  fails without running again, since running it could kill this worker too.
* **Failures are told apart.** A handler returns (success) or raises
  :class:`JobFailure`: permanent (the job fails with the message) or transient (retried
  after ``retry_after`` or backoff with jitter from ``libs.common.backoff``). Any other
  exception is a crash: logged with its traceback, retried like a transient failure.
* **Not before.** A job never starts before its ``not_before``: delays, schedules and
  retry waits are all this one column.
* **Per-partition limits, FIFO, fairness.** Jobs with the same ``partition_key`` (say a
  connection) run at most ``partition_limit`` at a time (per queue, default 1), and start
  in (``not_before``, enqueue) order. Partitions are independent: a partition with a deep
  queue never holds up another's jobs: each claim looks at the head of every partition
  and serves first the one that has waited longest since its partition's last turn.
  Jobs without a partition key have no limit.
* **Deduplicated on request.** A job with a ``dedupe_key`` is enqueued once per queue: a
  second :func:`enqueue` with the same key returns the first job (finished or not).
* **Cancellable.** :func:`cancel` cancels pending jobs; a running job is never interrupted
  (its outcome is still recorded).
* **Outcomes commit with domain rows.** ``on_start(conn, job)`` runs in the claim's
  transaction and ``on_finish(conn, job, outcome)`` in the one that records the outcome,
  so a deployment step's status (or a run's state) changes atomically with its job.
  An ``on_start`` that raises counts as a crash of that attempt (and ``on_finish`` hears
  that outcome, so a last attempt fails its domain row too); an ``on_finish`` that raises
  after a handler ran leaves the outcome unrecorded (the job is taken again when its
  lease ends).
* **Graceful stop.** A worker cancelled mid-job lets the handler finish within
  ``stop_grace`` seconds before giving up on it (its lease then ends and another worker
  takes it over).

Claims are system work across workspaces, so they are the only queries not filtered by
``workspace_id``; every function that reads or changes a job on a caller's behalf takes
the workspace and filters by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid4

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict, Field

from libs.common.backoff import backoff_delay
from libs.common.db import Conn
from libs.common.rows import many, maybe, one

log = structlog.get_logger(__name__)

JobStatus = Literal["pending", "running", "succeeded", "failed", "cancelled"]
GAVE_UP = "gave up: the job never finished"
"""The error of a job claimed beyond its ``max_attempts`` (its worker died every time)."""


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


class Outcome(BaseModel):
    """What one attempt came to: done, failed for good, or waiting for a retry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["succeeded", "failed", "pending"]
    error: str | None = None
    retry_at: datetime | None = None


class JobFailure(Exception):
    """Raised by a handler: the attempt failed, ``transient`` ones are retried."""

    def __init__(
        self, message: str, *, transient: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after = retry_after


Handler = Callable[[Job], Awaitable[None]]
OnStart = Callable[[Conn, Job], Awaitable[None]]
OnFinish = Callable[[Conn, Job, Outcome], Awaitable[None]]


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


_COLUMNS = """
id, seq, workspace_id, queue, kind, payload, partition_key, status, attempts, max_attempts,
not_before, lease_owner, lease_until, last_error, dedupe_key, created_at, updated_at, finished_at
"""
_READY = """
((status = 'pending' AND not_before <= now()) OR (status = 'running' AND lease_until < now()))
"""

INSERT_JOB_SQL = f"""
INSERT INTO jobs (id, workspace_id, queue, kind, payload, partition_key, max_attempts,
    not_before, dedupe_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()), $9)
ON CONFLICT (queue, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
RETURNING {_COLUMNS}
"""
SELECT_DEDUPED_SQL = f"SELECT {_COLUMNS} FROM jobs WHERE queue = $1 AND dedupe_key = $2"
NOTIFY_SQL = "SELECT pg_notify('tether_jobs_' || current_schema(), $1)"
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
#    without a partition key is a partition of its own. The cost: each claim reads every
#    ready job of the queue (DISTINCT ON). Fine for thousands; a ``job_partitions`` table
#    (one row per partition, locked SKIP LOCKED) is the step beyond that.
SELECT_CANDIDATES_SQL = f"""
SELECT id, partition_key FROM (
    SELECT DISTINCT ON (coalesce('p:' || partition_key, 'j:' || id::text))
        id, partition_key, not_before, seq
    FROM jobs
    WHERE queue = $1 AND {_READY}
    ORDER BY coalesce('p:' || partition_key, 'j:' || id::text), not_before, seq
) heads
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
COUNT_RUNNING_SQL = """
SELECT count(*) FROM jobs
WHERE queue = $1 AND partition_key = $2 AND status = 'running' AND lease_until >= now()
"""
SELECT_HEAD_SQL = f"""
SELECT id FROM jobs WHERE queue = $1 AND partition_key = $2 AND {_READY}
ORDER BY not_before, seq LIMIT 1
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
# An outcome counts only while this worker still holds the job (its lease may have run
# out and another worker taken it over).
FINISH_SQL = f"""
UPDATE jobs SET status = $3, last_error = $4, not_before = coalesce($5, not_before),
    lease_owner = NULL, lease_until = NULL, updated_at = now(),
    finished_at = CASE WHEN $3 IN ('succeeded', 'failed') THEN now() END
WHERE id = $1 AND lease_owner = $2 AND status = 'running'
RETURNING {_COLUMNS}
"""


async def enqueue(conn: Conn, spec: JobSpec) -> Job:
    """Insert a job in the caller's transaction; return it (or the job its dedupe key named)."""
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
        ),
    )
    if job is None:  # only a dedupe key conflicts: the first job stands
        return one(Job, await conn.fetchrow(SELECT_DEDUPED_SQL, spec.queue, spec.dedupe_key))
    await conn.execute(NOTIFY_SQL, spec.queue)
    return job


async def get_job(conn: Conn, workspace_id: UUID | None, job_id: UUID) -> Job | None:
    """Return one job of the workspace (None for system jobs), or None."""
    return maybe(Job, await conn.fetchrow(SELECT_JOB_SQL, workspace_id, job_id))


async def cancel(conn: Conn, workspace_id: UUID | None, job_ids: list[UUID]) -> list[Job]:
    """Cancel the pending ones of ``job_ids``; return them (running jobs run on)."""
    return many(Job, await conn.fetch(CANCEL_SQL, workspace_id, job_ids))


async def claim(conn: Conn, queue: str, owner: str, options: QueueOptions) -> Job | None:
    """Lease the next job of ``queue`` that may start (run inside a transaction)."""
    candidates = await conn.fetch(
        SELECT_CANDIDATES_SQL, queue, options.partition_limit, options.candidates
    )
    for candidate in candidates:
        job_id: UUID = candidate["id"]
        partition: str | None = candidate["partition_key"]
        if partition is not None:
            if not await conn.fetchval(LOCK_PARTITION_SQL, queue, partition):
                continue  # another worker is claiming from this partition right now
            if await conn.fetchval(COUNT_RUNNING_SQL, queue, partition) >= options.partition_limit:
                continue
            head = await conn.fetchval(SELECT_HEAD_SQL, queue, partition)
            if head is None:
                continue
            job_id = head
        job = maybe(Job, await conn.fetchrow(LEASE_SQL, job_id, owner, options.lease))
        if job is not None:
            return job
    return None


async def finish(conn: Conn, job: Job, owner: str, outcome: Outcome) -> Job | None:
    """Record ``outcome`` if ``owner`` still holds the job; return the job as it is now."""
    return maybe(
        Job,
        await conn.fetchrow(
            FINISH_SQL, job.id, owner, outcome.status, outcome.error, outcome.retry_at
        ),
    )


def worker_name() -> str:
    """Return a name for this process's leases (host, pid and a random part)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"


class JobEngine:
    """Claim and run one queue's jobs; ``work`` is one worker, run as many as you like."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        queue: str,
        handlers: Mapping[str, Handler],
        options: QueueOptions | None = None,
        *,
        on_start: OnStart | None = None,
        on_finish: OnFinish | None = None,
    ) -> None:
        self._pool = pool
        self.queue = queue
        self._handlers = dict(handlers)
        self.options = options or QueueOptions()
        self._on_start = on_start
        self._on_finish = on_finish
        self.owner = worker_name()
        self._channel = ""
        self._wake = asyncio.Event()

    def tasks(self, workers: int) -> dict[str, Callable[[], Awaitable[None]]]:
        """Return ``workers`` workers and a listener, named, for ``background_tasks``."""
        named: dict[str, Callable[[], Awaitable[None]]] = {f"jobs-{self.queue}-listen": self.listen}
        for n in range(workers):
            named[f"jobs-{self.queue}-{n}"] = self.work
        return named

    async def listen(self) -> None:
        """Wake idle workers when a job of this queue is enqueued (until cancelled)."""

        def on_notify(_conn: Conn, _pid: int, _channel: str, payload: object) -> None:
            if payload == self.queue:
                self._wake_all()

        async with self._pool.acquire() as conn:
            channel = await conn.fetchval("SELECT 'tether_jobs_' || current_schema()")
            await conn.add_listener(channel, on_notify)
            try:
                await asyncio.Event().wait()  # listen until cancelled
            finally:
                await conn.remove_listener(channel, on_notify)

    def _wake_all(self) -> None:
        # Every idle worker waits on the current event; a fresh one serves the next wait.
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    async def work(self) -> None:
        """Run one worker until cancelled: claim, execute, record; idle when nothing is ready."""
        while True:
            job = await self.claim_one()
            if job is None:
                # Not wait_for: on 3.11 it swallows a cancel that lands as the wake-up does.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.options.poll_interval):
                        await self._wake.wait()
                continue
            running = asyncio.ensure_future(self.execute(job))
            try:
                await asyncio.shield(running)
            except asyncio.CancelledError:
                # Stopping: let the job finish within the grace period rather than cut a
                # call to an app in half; past it, the job's lease will end instead.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(running, self.options.stop_grace)
                raise

    async def claim_one(self) -> Job | None:
        """Lease one job and run ``on_start`` in the same transaction; None if none is ready."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                job = await claim(conn, self.queue, self.owner, self.options)
                if job is None or self._on_start is None:
                    return job
                try:
                    async with conn.transaction():  # a savepoint: undo only on_start
                        await self._on_start(conn, job)
                except Exception:
                    # Rolling the claim back would offer the same job again at once, ahead
                    # of every other: count the attempt as a crash instead.
                    log.exception("job_start_failed", queue=self.queue, job_id=str(job.id))
                    outcome = self.outcome(job, JobFailure("internal error", transient=True))
                    recorded = await finish(conn, job, self.owner, outcome)
                    if recorded is not None and self._on_finish is not None:
                        # The domain hears of this outcome too (a last attempt fails its
                        # step); if the hook fails as well, the job's outcome still stands.
                        try:
                            async with conn.transaction():
                                await self._on_finish(conn, recorded, outcome)
                        except Exception:
                            log.exception("job_finish_hook_failed", job_id=str(job.id))
                    return None
                return job
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("job_claim_failed", queue=self.queue, error=str(exc))
            return None

    async def execute(self, job: Job) -> None:
        """Run one leased job's handler and record its outcome (with ``on_finish``)."""
        failure: JobFailure | None = None
        try:
            if job.attempts > job.max_attempts:
                # Only a lease that ran out gets here (the worker died or hung every time).
                raise JobFailure(GAVE_UP)
            handler = self._handlers.get(job.kind)
            if handler is None:
                raise JobFailure(f"no handler for {job.kind!r}")
            await handler(job)
        except JobFailure as exc:
            failure = exc
        except Exception:
            log.exception("job_crashed", queue=self.queue, job_id=str(job.id), kind=job.kind)
            failure = JobFailure("internal error", transient=True)  # the log has the details
        outcome = self.outcome(job, failure)
        log.info(
            "job_finished",
            queue=self.queue,
            job_id=str(job.id),
            kind=job.kind,
            status=outcome.status,
            attempts=job.attempts,
        )
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                recorded = await finish(conn, job, self.owner, outcome)
                if recorded is None:
                    log.warning("job_lease_lost", queue=self.queue, job_id=str(job.id))
                    return  # our lease ran out and another worker took the job over
                if self._on_finish is not None:
                    await self._on_finish(conn, recorded, outcome)
        except Exception:
            # Nothing was recorded: the job stays leased, and is taken again when the
            # lease ends (counting an attempt).
            log.exception("job_outcome_unrecorded", queue=self.queue, job_id=str(job.id))

    def outcome(self, job: Job, failure: JobFailure | None) -> Outcome:
        """Decide what an attempt that ended with ``failure`` (None: success) comes to."""
        if failure is None:
            return Outcome(status="succeeded")
        if failure.transient and job.attempts < job.max_attempts:
            delay = failure.retry_after
            if delay is None:
                delay = backoff_delay(
                    job.attempts, base=self.options.backoff_base, cap=self.options.backoff_cap
                )
            retry_at = datetime.now(UTC) + timedelta(seconds=delay)
            return Outcome(status="pending", error=failure.message, retry_at=retry_at)
        return Outcome(status="failed", error=failure.message)
