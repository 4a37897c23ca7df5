"""Run durable jobs: enqueue with the write that needs them, run them until they are done.

Deployment steps, flow runs, syncs and notification deliveries are jobs: rows of the
service's ``jobs`` table (a common migration, so every schema has one). What a job gets:

* **Enqueued atomically.** :func:`enqueue` inserts the job in the caller's transaction: a
  job and the domain write that needs it commit together, or neither does. A ``NOTIFY``
  (delivered only on commit) wakes idle workers; a poll finds the job anyway.
* **At least once to its handler.** A worker claims a job (``FOR UPDATE SKIP LOCKED``, so
  replicas never claim the same row) with a lease of ``lease`` seconds. Handlers must be
  idempotent: ``job.id`` is stable across attempts and is the idempotency key to give an
  app; ``job.attempts`` says which attempt this is (1-based).
* **Leases are renewed while the handler runs.** Every ``lease / 3`` seconds the worker
  extends the lease of the job it runs (a heartbeat), so a handler may take longer than
  ``lease``. A job is claimed again only when its worker stopped heartbeating for a whole
  lease: it died (kill -9, a lost host), hung with its event loop blocked, or lost the
  database. A handler that merely awaits forever holds its job forever, so handlers bound
  their calls with timeouts. A worker whose lease was lost all the same (logged as
  ``job_lease_lost``) lets its handler finish, but its outcome is not recorded.
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
  second :func:`enqueue` with the same key returns the first job (finished or not) for as
  long as the first job is kept, i.e. within the retention below; after that the key is
  free again.
* **Cancellable.** :func:`cancel` cancels pending jobs; a running job is never interrupted
  (its outcome is still recorded).
* **Outcomes commit with domain rows.** ``on_start(conn, job)`` runs in the claim's
  transaction and ``on_finish(conn, job, outcome)`` in the one that records the outcome,
  so a deployment step's status (or a run's state) changes atomically with its job.
  An ``on_start`` that raises counts as a crash of that attempt (and ``on_finish`` hears
  that outcome, so a last attempt fails its domain row too); an ``on_finish`` that raises
  after a handler ran leaves the outcome unrecorded (the job is taken again when its
  lease ends).
* **Graceful stop.** A worker cancelled mid-job lets the handler finish (heartbeating)
  within ``stop_grace`` seconds before giving up on it (its lease then ends and another
  worker takes it over).
* **Finished jobs are kept for ``retention``** (default 7 days), then deleted. The sweep
  (a task of :meth:`JobEngine.tasks`) deletes a queue's succeeded, failed and cancelled
  jobs that finished longer ago, in batches of ``sweep_batch`` rows, each its own short
  transaction. Every replica may sweep at once: a batch skips the rows another holds
  (``FOR UPDATE SKIP LOCKED``). Pending and running jobs are never deleted, however old.

The table's side (the job models and every query) is :mod:`libs.common.job_store`; this
module re-exports what callers use, so ``from libs.common import jobs`` is the one import.

Claims are system work across workspaces, so they are the only queries not filtered by
``workspace_id``; every function that reads or changes a job on a caller's behalf takes
the workspace and filters by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import structlog

from libs.common import tracing
from libs.common.backoff import backoff_delay, jitter
from libs.common.db import Conn
from libs.common.job_store import (
    Claimed,
    Job,
    JobSpec,
    JobStatus,
    Outcome,
    QueueOptions,
    cancel,
    claim,
    claim_next,
    enqueue,
    extend_lease,
    finish,
    get_job,
    purge,
)
from libs.common.metrics import ServiceMetrics

__all__ = [
    "GAVE_UP",
    "Claimed",
    "Job",
    "JobEngine",
    "JobFailure",
    "JobSpec",
    "JobStatus",
    "Outcome",
    "QueueOptions",
    "cancel",
    "claim",
    "claim_next",
    "enqueue",
    "extend_lease",
    "finish",
    "get_job",
    "purge",
    "worker_name",
]

log = structlog.get_logger(__name__)

BUSY_RETRIES = 5
"""Quick looks a worker takes again at a partition another worker was claiming from."""

OUTCOME_LABELS: Mapping[str, str] = {
    "succeeded": "succeeded",
    "pending": "retry",
    "failed": "failed",
}
"""The ``outcome`` label of ``tether_jobs_finished_total`` for each status an attempt leaves."""

GAVE_UP = "gave up: the job never finished"
"""The error of a job claimed beyond its ``max_attempts`` (its worker died every time)."""


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
        metrics: ServiceMetrics | None = None,
    ) -> None:
        """Run ``queue``'s jobs; with ``metrics``, count each attempt's end and sample the queue."""
        self._pool = pool
        self.queue = queue
        self._handlers = dict(handlers)
        self.options = options or QueueOptions()
        self._on_start = on_start
        self._on_finish = on_finish
        self.owner = worker_name()
        self._channel = ""
        self._wake = asyncio.Event()
        self._metrics = metrics
        if metrics is not None:
            metrics.watch_queue(queue)

    def tasks(self, workers: int) -> dict[str, Callable[[], Awaitable[None]]]:
        """Return ``workers`` workers, a listener and a sweep, named, for ``background_tasks``."""
        named: dict[str, Callable[[], Awaitable[None]]] = {
            f"jobs-{self.queue}-listen": self.listen,
            f"jobs-{self.queue}-sweep": self.sweep,
        }
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
        busy_streak = 0
        while True:
            claimed = await self.claim_one()
            job = claimed.job
            if job is None:
                # Idle until woken (a NOTIFY of new work) or the poll. A partition that was
                # busy (another worker was claiming from it: claims of one partition take
                # turns on a lock) is looked at again within milliseconds, a few times,
                # then after a longer pause, so that workers finishing together refill a
                # partition's slots at once without spinning on one that stays contended.
                wait = self.options.poll_interval
                if claimed.busy and busy_streak < BUSY_RETRIES:
                    busy_streak += 1
                    wait = min(wait, jitter(0.001, 0.01))
                elif claimed.busy:
                    busy_streak = 0
                    wait = min(wait, jitter(0.05, 0.15))
                else:
                    busy_streak = 0
                # Not wait_for: on 3.11 it swallows a cancel that lands as the wake-up does.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                continue
            busy_streak = 0
            running = asyncio.ensure_future(self.execute(job))
            try:
                await asyncio.shield(running)
            except asyncio.CancelledError:
                # Stopping: let the job finish within the grace period rather than cut a
                # call to an app in half; past it, the job's lease will end instead.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(running, self.options.stop_grace)
                raise

    async def claim_one(self) -> Claimed:
        """Lease one job and run ``on_start`` in the same transaction."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                claimed = await claim_next(conn, self.queue, self.owner, self.options)
                job = claimed.job
                if job is None or self._on_start is None:
                    return claimed
                try:
                    async with conn.transaction():  # a savepoint: undo only on_start
                        await self._on_start(conn, job)
                except Exception:
                    # Rolling the claim back would offer the same job again at once, ahead
                    # of every other: count the attempt as a crash instead.
                    log.exception("job_start_failed", queue=self.queue, job_id=str(job.id))
                    outcome = self.outcome(job, JobFailure("internal error", transient=True))
                    recorded = await finish(conn, job, self.owner, outcome)
                    self._count(outcome if recorded is not None else None)
                    if recorded is not None and self._on_finish is not None:
                        # The domain hears of this outcome too (a last attempt fails its
                        # step); if the hook fails as well, the job's outcome still stands.
                        try:
                            async with conn.transaction():
                                await self._on_finish(conn, recorded, outcome)
                        except Exception:
                            log.exception("job_finish_hook_failed", job_id=str(job.id))
                    return Claimed(None)
                return claimed
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("job_claim_failed", queue=self.queue, error=str(exc))
            return Claimed(None)

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
            async with self._heartbeat(job):
                with tracing.continued(
                    f"job {self.queue} {job.kind}",
                    job.trace_context,
                    attributes={"tether.job.attempt": job.attempts},
                ):
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
                    self._count(None)
                    return  # our lease ran out and another worker took the job over
                if self._on_finish is not None:
                    await self._on_finish(conn, recorded, outcome)
            self._count(outcome)
        except Exception:
            # Nothing was recorded: the job stays leased, and is taken again when the
            # lease ends (counting an attempt).
            log.exception("job_outcome_unrecorded", queue=self.queue, job_id=str(job.id))

    def _count(self, outcome: Outcome | None) -> None:
        """Count an attempt's end (None: the lease was lost, nothing was recorded)."""
        if self._metrics is not None:
            label = "lease_lost" if outcome is None else OUTCOME_LABELS[outcome.status]
            self._metrics.job_finished(self.queue, label)

    @contextlib.asynccontextmanager
    async def _heartbeat(self, job: Job) -> AsyncIterator[None]:
        """Keep ``job`` leased for the block (see :meth:`heartbeat`)."""
        beating = asyncio.create_task(self.heartbeat(job))
        try:
            yield
        finally:
            beating.cancel()
            await asyncio.wait([beating])  # never raises, and leaves our own cancel alone

    async def heartbeat(self, job: Job) -> None:
        """Extend ``job``'s lease every ``lease / 3`` seconds until cancelled or lost."""
        while True:
            await asyncio.sleep(self.options.lease / 3)
            try:
                async with self._pool.acquire(timeout=self.options.lease / 3) as conn:
                    held = await extend_lease(conn, job, self.owner, self.options.lease)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # Try again at the next beat; should the database stay out of reach for the
                # rest of the lease, another worker takes the job over.
                log.warning(
                    "job_heartbeat_failed", queue=self.queue, job_id=str(job.id), error=str(exc)
                )
                continue
            if not held:
                # Another worker took the job over (the lease ran out between two beats).
                log.warning("job_lease_lost", queue=self.queue, job_id=str(job.id))
                return

    async def sweep(self) -> None:
        """Delete finished jobs past their retention, a batch at a time (until cancelled)."""
        while True:
            try:
                async with self._pool.acquire() as conn:
                    deleted = await purge(
                        conn, self.queue, self.options.retention, self.options.sweep_batch
                    )
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("jobs_sweep_failed", queue=self.queue, error=str(exc))
                deleted = 0
            if deleted:
                log.info("jobs_purged", queue=self.queue, count=deleted)
            if deleted < self.options.sweep_batch:  # caught up: wait for the next sweep
                await asyncio.sleep(self.options.sweep_interval)

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
