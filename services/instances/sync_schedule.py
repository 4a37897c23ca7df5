"""Schedule sync passes every ``intervalMinutes`` per instance, once across replicas.

Every replica looks for due schedules every ``sync_schedule_interval`` seconds. A look is
one transaction: instances of data sources with a ``sync`` that have no schedule get one
(due now), then due schedules are claimed ``FOR UPDATE SKIP LOCKED`` (a replica never waits
for, nor takes, a row another is scheduling), each gets one sync job and its next due time.
The job's dedupe key names the instance and the due time, so even two looks that both saw
a row due (one committed between the other's read and lock) enqueue one pass. A replica
that was down catches up with one pass, not one per missed interval.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from libs.common import jobs
from libs.common.db import Conn
from libs.common.jobs import JobSpec
from services.instances.settings import InstancesOptions
from services.instances.store import syncs
from services.instances.store.syncs import QUEUE
from services.instances.sync_pass import SYNC_JOB

log = structlog.get_logger(__name__)


def sync_job(
    workspace_id: Any, instance_id: Any, options: InstancesOptions, dedupe_key: str | None = None
) -> JobSpec:
    """Return the job of one pass of an instance."""
    return JobSpec(
        queue=QUEUE,
        kind=SYNC_JOB,
        payload={"instanceId": str(instance_id)},
        workspace_id=workspace_id,
        partition_key=str(instance_id),
        max_attempts=options.sync_max_attempts,
        dedupe_key=dedupe_key,
    )


async def schedule_due(conn: Conn, options: InstancesOptions) -> int:
    """Enqueue one pass per due schedule (in the caller's transaction); count them."""
    await syncs.add_schedules(conn)
    due = await syncs.claim_due(conn, options.sync_schedule_batch)
    now = datetime.now(UTC)
    for item in due:
        key = f"sync:{item.instance_id}:{int(item.next_due_at.timestamp())}"
        await jobs.enqueue(conn, sync_job(item.workspace_id, item.instance_id, options, key))
        interval = timedelta(minutes=max(1, item.interval_minutes))
        await syncs.set_due(conn, item, max(item.next_due_at + interval, now))
    return len(due)


async def run_schedule(pool: asyncpg.Pool[asyncpg.Record], options: InstancesOptions) -> None:
    """Look for due schedules every ``sync_schedule_interval`` seconds (until cancelled)."""
    while True:
        try:
            async with pool.acquire() as conn, conn.transaction():
                count = await schedule_due(conn, options)
            if count:
                log.info("syncs_scheduled", count=count)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("sync_schedule_failed", error=str(exc))
        await asyncio.sleep(options.sync_schedule_interval)
