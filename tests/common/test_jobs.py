"""The durable job engine keeps every promise its module docstring makes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg
import pytest
from structlog.testing import capture_logs

from libs.common.db import Conn, create_pool, migrate
from libs.common.jobs import (
    Job,
    JobEngine,
    JobFailure,
    JobSpec,
    Outcome,
    QueueOptions,
    cancel,
    claim,
    enqueue,
    get_job,
    purge,
)
from tests.conftest import ROOT, Infra, eventually

Pool: TypeAlias = "asyncpg.Pool[Any]"
FAST = QueueOptions(lease=5.0, backoff_base=0.05, backoff_cap=0.2, poll_interval=0.05, stop_grace=1)


@pytest.fixture(scope="module")
async def schema(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh schema with only the common migrations, for this module alone."""
    name = f"jobs_{secrets.token_hex(4)}"
    await migrate(infra.database_url, name, tmp_path_factory.mktemp("no_migrations"))
    return name


@pytest.fixture(scope="module")
async def pool(infra: Infra, schema: str) -> AsyncIterator[Pool]:
    """A pool on the module's schema, with a table for handlers' side effects."""
    pool = await create_pool(infra.database_url, schema, min_size=1, max_size=20)
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE effects (idempotency_key uuid PRIMARY KEY, attempt int NOT NULL)"
        )
        await conn.execute("CREATE TABLE calls (job_id uuid NOT NULL, attempt int NOT NULL)")
    yield pool
    await pool.close()


@pytest.fixture
def queue() -> str:
    """A queue of this test's own."""
    return f"q_{secrets.token_hex(4)}"


@contextlib.asynccontextmanager
async def running(*engines: JobEngine, workers: int = 1) -> AsyncIterator[None]:
    """Run ``workers`` workers of each engine for the block."""
    tasks = [asyncio.create_task(e.work()) for e in engines for _ in range(workers)]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def put(pool: Pool, spec: JobSpec) -> Job:
    async with pool.acquire() as conn:
        return await enqueue(conn, spec)


async def fetch(pool: Pool, job_id: UUID, workspace_id: UUID | None = None) -> Job:
    async with pool.acquire() as conn:
        job = await get_job(conn, workspace_id, job_id)
    assert job is not None
    return job


def status_is(
    pool: Pool, job_id: UUID, status: str, workspace_id: UUID | None = None
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await fetch(pool, job_id, workspace_id)).status == status

    return check


async def test_jobs_success_runs_handler_once(pool: Pool, queue: str) -> None:
    seen: list[Job] = []

    async def handler(job: Job) -> None:
        seen.append(job)

    job = await put(pool, JobSpec(queue=queue, kind="k", payload={"n": 1}))
    assert job.status == "pending"
    async with running(JobEngine(pool, queue, {"k": handler}, FAST)):
        await eventually(status_is(pool, job.id, "succeeded"))
    done = await fetch(pool, job.id)
    assert (done.attempts, done.last_error, done.lease_owner) == (1, None, None)
    assert done.finished_at is not None
    assert [(j.id, j.payload, j.attempts) for j in seen] == [(job.id, {"n": 1}, 1)]


async def test_jobs_transient_failure_retried_with_backoff(pool: Pool, queue: str) -> None:
    started: list[datetime] = []

    async def flaky(job: Job) -> None:
        started.append(datetime.now(UTC))
        if job.attempts == 1:
            raise JobFailure("busy", transient=True, retry_after=0.5)
        if job.attempts == 2:
            raise JobFailure("busy again", transient=True)  # backoff: ~0.05 s

    job = await put(pool, JobSpec(queue=queue, kind="k", max_attempts=5))
    async with running(JobEngine(pool, queue, {"k": flaky}, FAST)):
        await eventually(status_is(pool, job.id, "succeeded"))
    done = await fetch(pool, job.id)
    assert (done.attempts, done.last_error) == (3, None)
    assert started[1] - started[0] >= timedelta(seconds=0.45)


async def test_jobs_permanent_failure_fails_at_once(pool: Pool, queue: str) -> None:
    async def refuse(_: Job) -> None:
        raise JobFailure("bad request: no such list")

    job = await put(pool, JobSpec(queue=queue, kind="k", max_attempts=5))
    async with running(JobEngine(pool, queue, {"k": refuse}, FAST)):
        await eventually(status_is(pool, job.id, "failed"))
    done = await fetch(pool, job.id)
    assert (done.attempts, done.last_error) == (1, "bad request: no such list")


async def test_jobs_crash_counts_against_the_cap(pool: Pool, queue: str) -> None:
    async def crash(_: Job) -> None:
        raise RuntimeError("bug")

    job = await put(pool, JobSpec(queue=queue, kind="k", max_attempts=3))
    with capture_logs() as logs:
        async with running(JobEngine(pool, queue, {"k": crash}, FAST)):
            await eventually(status_is(pool, job.id, "failed"))
    done = await fetch(pool, job.id)
    assert (done.attempts, done.last_error) == (3, "internal error")
    crashes = [e for e in logs if e["event"] == "job_crashed"]
    assert len(crashes) == 3
    assert all(e["log_level"] == "error" and e.get("exc_info") for e in crashes)


async def test_jobs_expired_lease_is_reclaimed_and_counted(pool: Pool, queue: str) -> None:
    """A worker that claimed and died: its job runs again once the lease ends."""
    ran: list[int] = []

    async def handler(job: Job) -> None:
        ran.append(job.attempts)

    job = await put(pool, JobSpec(queue=queue, kind="k", max_attempts=3))
    doomed = await put(pool, JobSpec(queue=queue, kind="k", max_attempts=1))
    async with pool.acquire() as conn, conn.transaction():
        dead = QueueOptions(lease=0.3)
        claimed = [await claim(conn, queue, "dead", dead) for _ in range(2)]
    assert {c.id for c in claimed if c is not None} == {job.id, doomed.id}
    async with running(JobEngine(pool, queue, {"k": handler}, FAST)):
        await eventually(status_is(pool, job.id, "succeeded"))
        await eventually(status_is(pool, doomed.id, "failed"))
    assert (await fetch(pool, job.id)).attempts == 2
    given_up = await fetch(pool, doomed.id)
    assert (given_up.attempts, given_up.last_error) == (2, "gave up: the job never finished")
    assert ran == [2]  # the job beyond its cap never ran again


async def test_jobs_heartbeat_keeps_a_long_job_leased(pool: Pool, queue: str) -> None:
    """A handler running 3 times its lease runs once; a worker that died is still taken over."""
    ran: list[tuple[UUID, int]] = []
    options = QueueOptions(lease=1.0, poll_interval=0.05, stop_grace=1)
    orphan = await put(pool, JobSpec(queue=queue, kind="k"))
    async with pool.acquire() as conn, conn.transaction():
        claimed = await claim(conn, queue, "dead", options)  # …and never heartbeats
    assert claimed is not None
    assert claimed.id == orphan.id
    long = await put(pool, JobSpec(queue=queue, kind="k"))

    async def handler(job: Job) -> None:
        ran.append((job.id, job.attempts))
        if job.id == long.id:
            await asyncio.sleep(3 * options.lease)

    replicas = [JobEngine(pool, queue, {"k": handler}, options) for _ in range(2)]
    async with running(*replicas, workers=2):
        await eventually(status_is(pool, orphan.id, "succeeded"))
        await eventually(status_is(pool, long.id, "succeeded"), timeout=10)
    assert (await fetch(pool, long.id)).attempts == 1
    assert (await fetch(pool, orphan.id)).attempts == 2
    assert sorted(ran) == sorted([(long.id, 1), (orphan.id, 2)])


async def test_jobs_lost_lease_is_logged_and_not_recorded(pool: Pool, queue: str) -> None:
    """A heartbeat that finds the job taken over says so; the outcome is not written."""
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(_: Job) -> None:
        started.set()
        await release.wait()

    job = await put(pool, JobSpec(queue=queue, kind="k"))
    options = QueueOptions(lease=0.6, poll_interval=0.05, stop_grace=1)
    with capture_logs() as logs:
        async with running(JobEngine(pool, queue, {"k": handler}, options)):
            await asyncio.wait_for(started.wait(), 5)
            async with pool.acquire() as conn:  # another worker took the job over
                await conn.execute("UPDATE jobs SET lease_owner = 'thief' WHERE id = $1", job.id)
            await eventually(lambda: _logged(logs, "job_lease_lost"))
            release.set()
            await eventually(lambda: _logged(logs, "job_finished"))
    taken = await fetch(pool, job.id)
    assert (taken.status, taken.lease_owner) == ("running", "thief")


async def _logged(logs: Sequence[MutableMapping[str, Any]], event: str) -> bool:
    return any(e["event"] == event for e in logs)


async def test_jobs_finished_jobs_are_deleted_after_retention(pool: Pool, queue: str) -> None:
    """Old finished jobs go (freeing their dedupe keys); recent and unfinished ones stay."""
    old = datetime.now(UTC) - timedelta(days=2)
    rows: dict[str, Job] = {}
    for name, status, finished_at in (
        ("old_succeeded", "succeeded", old),
        ("old_failed", "failed", old),
        ("old_cancelled", "cancelled", old),
        ("recent_succeeded", "succeeded", datetime.now(UTC)),
        ("old_pending", "pending", None),
        ("old_running", "running", None),
    ):
        job = await put(pool, JobSpec(queue=queue, kind="k", dedupe_key=name))
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET status = $2, finished_at = $3, created_at = $4 WHERE id = $1",
                job.id,
                status,
                finished_at,
                old,
            )
        rows[name] = job
    elsewhere = await put(pool, JobSpec(queue=f"{queue}_b", kind="k"))
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET status = 'succeeded', finished_at = $2 WHERE id = $1",
            elsewhere.id,
            old,
        )
    options = QueueOptions(retention=24 * 3600, sweep_batch=2, sweep_interval=60)
    engine = JobEngine(pool, queue, {}, options)
    assert f"jobs-{queue}-sweep" in engine.tasks(workers=0)  # offered to every replica
    sweep = asyncio.create_task(engine.sweep())
    kept = {"recent_succeeded", "old_pending", "old_running"}
    try:

        async def swept() -> bool:  # in two batches
            async with pool.acquire() as conn:
                left = {name for name, job in rows.items() if await get_job(conn, None, job.id)}
            return left == kept

        await eventually(swept)
    finally:
        sweep.cancel()
        await asyncio.gather(sweep, return_exceptions=True)
    async with pool.acquire() as conn:
        assert await get_job(conn, None, elsewhere.id) is not None  # another queue's own sweep
        assert await purge(conn, queue, options.retention, 10) == 0
    again = await put(pool, JobSpec(queue=queue, kind="k", dedupe_key="old_succeeded"))
    assert again.id != rows["old_succeeded"].id  # the key is free once its job is gone
    same = await put(pool, JobSpec(queue=queue, kind="k", dedupe_key="recent_succeeded"))
    assert same.id == rows["recent_succeeded"].id  # …and holds within the retention


async def test_jobs_not_before_is_respected(pool: Pool, queue: str) -> None:
    started: list[datetime] = []

    async def handler(_: Job) -> None:
        started.append(datetime.now(UTC))

    at = datetime.now(UTC) + timedelta(seconds=0.7)
    job = await put(pool, JobSpec(queue=queue, kind="k", not_before=at))
    async with running(JobEngine(pool, queue, {"k": handler}, FAST), workers=2):
        await eventually(status_is(pool, job.id, "succeeded"))
    assert started[0] >= at


@pytest.mark.parametrize("limit", [1, 3])
async def test_jobs_partition_limit_holds_across_workers(
    pool: Pool, queue: str, limit: int
) -> None:
    """Two "replicas" with four workers each never run more than ``limit`` of one partition."""
    now = 0
    peak = 0
    order: list[int] = []
    full = asyncio.Event()

    async def handler(job: Job) -> None:
        nonlocal now, peak
        order.append(job.payload["n"])
        now += 1
        peak = max(peak, now)
        if now == limit:
            full.set()
        with contextlib.suppress(TimeoutError):  # hold the first jobs until the limit is reached
            await asyncio.wait_for(full.wait(), 5)
        await asyncio.sleep(0.02)  # work that takes a while, so that jobs would overlap
        now -= 1

    options = QueueOptions(
        lease=5.0, poll_interval=0.02, partition_limit=limit, backoff_base=0.05, stop_grace=1
    )
    jobs = [
        await put(pool, JobSpec(queue=queue, kind="k", partition_key="conn-1", payload={"n": n}))
        for n in range(16)
    ]
    replicas = [JobEngine(pool, queue, {"k": handler}, options) for _ in range(2)]
    async with running(*replicas, workers=4):
        for job in jobs:
            await eventually(status_is(pool, job.id, "succeeded"))
    assert peak == limit
    if limit == 1:
        assert order == list(range(16))  # FIFO within the partition
    else:
        assert sorted(order) == list(range(16))


async def test_jobs_deep_partition_does_not_delay_another(pool: Pool, queue: str) -> None:
    """One worker, a partition 30 deep, then one job of another: it runs second, not last."""
    order: list[str] = []

    async def handler(job: Job) -> None:
        order.append(job.partition_key or "")

    deep = [
        await put(pool, JobSpec(queue=queue, kind="k", partition_key="deep")) for _ in range(30)
    ]
    other = await put(pool, JobSpec(queue=queue, kind="k", partition_key="other"))
    async with running(JobEngine(pool, queue, {"k": handler}, FAST)):
        await eventually(status_is(pool, other.id, "succeeded"))
        await eventually(status_is(pool, deep[-1].id, "succeeded"))
    assert order.index("other") <= 1


async def test_jobs_dedupe_key_enqueues_once(pool: Pool, queue: str) -> None:
    first = await put(pool, JobSpec(queue=queue, kind="k", dedupe_key="sync:conn-1"))
    again = await put(
        pool, JobSpec(queue=queue, kind="k", dedupe_key="sync:conn-1", payload={"x": 1})
    )
    assert again.id == first.id
    assert again.payload == {}
    other = await put(pool, JobSpec(queue=f"{queue}_b", kind="k", dedupe_key="sync:conn-1"))
    assert other.id != first.id  # per queue


async def test_jobs_cancel_pending(pool: Pool, queue: str) -> None:
    ran: list[UUID] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)

    workspace = UUID(int=7)
    job = await put(pool, JobSpec(queue=queue, kind="k", workspace_id=workspace))
    kept = await put(pool, JobSpec(queue=queue, kind="k", workspace_id=workspace))
    async with pool.acquire() as conn:
        assert await cancel(conn, UUID(int=8), [job.id]) == []  # another workspace's
        [cancelled] = await cancel(conn, workspace, [job.id])
        assert await get_job(conn, UUID(int=8), job.id) is None
    assert cancelled.status == "cancelled"
    async with running(JobEngine(pool, queue, {"k": handler}, FAST)):
        await eventually(status_is(pool, kept.id, "succeeded", workspace))
    assert ran == [kept.id]
    assert (await fetch(pool, job.id, workspace)).status == "cancelled"


async def test_jobs_on_finish_commits_with_the_outcome(pool: Pool, queue: str) -> None:
    """``on_finish`` writes with the outcome; when it fails, neither is recorded."""
    async with pool.acquire() as conn:
        await conn.execute(f"CREATE TABLE {queue}_steps (job_id uuid PRIMARY KEY, status text)")
    fail_once = [True]

    async def on_start(conn: Conn, job: Job) -> None:
        await conn.execute(
            f"INSERT INTO {queue}_steps VALUES ($1, 'running') ON CONFLICT (job_id) DO UPDATE SET status = 'running'",
            job.id,
        )

    async def on_finish(conn: Conn, job: Job, outcome: Outcome) -> None:
        await conn.execute(
            f"UPDATE {queue}_steps SET status = $2 WHERE job_id = $1", job.id, outcome.status
        )
        if fail_once.pop() if fail_once else False:
            raise RuntimeError("the domain write failed")

    async def handler(_: Job) -> None:
        pass

    options = QueueOptions(lease=0.3, poll_interval=0.05, stop_grace=1)
    job = await put(pool, JobSpec(queue=queue, kind="k"))
    engine = JobEngine(pool, queue, {"k": handler}, options, on_start=on_start, on_finish=on_finish)
    async with running(engine):
        await eventually(status_is(pool, job.id, "succeeded"))
    async with pool.acquire() as conn:
        step = await conn.fetchval(f"SELECT status FROM {queue}_steps WHERE job_id = $1", job.id)
    assert step == "succeeded"
    # The first outcome rolled back with its on_finish; the lease ended and a second
    # attempt recorded both.
    assert (await fetch(pool, job.id)).attempts == 2


WORKER = """
import asyncio, sys
from libs.common.db import create_pool
from libs.common.jobs import Job, JobEngine, QueueOptions

async def main(dsn: str, schema: str, queue: str) -> None:
    pool = await create_pool(dsn, schema, min_size=1, max_size=4)

    async def handler(job: Job) -> None:
        async with pool.acquire() as conn:
            await conn.execute("INSERT INTO calls VALUES ($1, $2)", job.id, job.attempts)
            await conn.execute(
                "INSERT INTO effects VALUES ($1, $2) ON CONFLICT DO NOTHING", job.id, job.attempts
            )
        await asyncio.Event().wait()  # hang mid-job until killed

    await JobEngine(pool, queue, {"k": handler}, QueueOptions(lease=1.0, poll_interval=0.05)).work()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_jobs_survive_kill_9_mid_job(
    pool: Pool, queue: str, infra: Infra, schema: str, tmp_path: Path
) -> None:
    """A worker process killed mid-job: another completes it, the side effect exists once."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    job = await put(pool, JobSpec(queue=queue, kind="k", max_attempts=3))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        infra.database_url,
        schema,
        queue,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:

        async def effect_written() -> bool:
            async with pool.acquire() as conn:
                return bool(
                    await conn.fetchval("SELECT count(*) FROM calls WHERE job_id = $1", job.id)
                )

        await eventually(effect_written, timeout=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def handler(job: Job) -> None:  # the same idempotent side effect, then done
        async with pool.acquire() as conn:
            await conn.execute("INSERT INTO calls VALUES ($1, $2)", job.id, job.attempts)
            await conn.execute(
                "INSERT INTO effects VALUES ($1, $2) ON CONFLICT DO NOTHING", job.id, job.attempts
            )

    async with running(JobEngine(pool, queue, {"k": handler}, FAST)):
        await eventually(status_is(pool, job.id, "succeeded"))
    assert (await fetch(pool, job.id)).attempts == 2
    async with pool.acquire() as conn:
        calls = await conn.fetch(
            "SELECT attempt FROM calls WHERE job_id = $1 ORDER BY attempt", job.id
        )
        effects = await conn.fetch("SELECT * FROM effects WHERE idempotency_key = $1", job.id)
    assert [c["attempt"] for c in calls] == [1, 2]  # ran twice, with the same key…
    assert [(e["idempotency_key"], e["attempt"]) for e in effects] == [(job.id, 1)]  # …took once


async def test_jobs_failing_on_start_counts_as_a_crash(pool: Pool, queue: str) -> None:
    """A job whose ``on_start`` always fails ends failed at its cap and blocks no other job."""
    ran: list[UUID] = []
    bad = await put(pool, JobSpec(queue=queue, kind="k", max_attempts=2))
    good = await put(pool, JobSpec(queue=queue, kind="k"))

    async def on_start(_: Conn, job: Job) -> None:
        if job.id == bad.id:
            raise RuntimeError("the domain row is gone")

    async def handler(job: Job) -> None:
        ran.append(job.id)

    engine = JobEngine(pool, queue, {"k": handler}, FAST, on_start=on_start)
    async with running(engine):
        await eventually(status_is(pool, good.id, "succeeded"))
        await eventually(status_is(pool, bad.id, "failed"))
    failed = await fetch(pool, bad.id)
    assert (failed.attempts, failed.last_error) == (2, "internal error")
    assert ran == [good.id]
