"""Run schedule triggers: each tick of a flow instance's cron starts one run, on any replica.

Two loops in every flows replica share the table ``flow_schedules`` (one row per scheduled
instance, with ``next_at``, the next tick to run):

* **Reconcile** (every ``schedule_reconcile_interval`` s) makes the table match the enabled,
  non-archived instances whose *base revision* has a schedule trigger (customisation never
  changes a trigger): a new one gets a row with its first tick after now; a changed cron or
  time zone starts again from now; a disabled, archived or re-triggered instance loses its
  row. One replica reconciles at a time (a transaction-scoped advisory lock; the others skip).
* **Tick** (every ``schedule_poll_interval`` s) takes the due rows ``FOR UPDATE SKIP LOCKED``
  and, per row and in one transaction, starts the run (trigger ``{type: schedule, tick}``,
  input ``{tick}``, dedupe key ``tick:<tick ISO time>``) and moves ``next_at`` to the first
  tick *after now*.

What that guarantees:

* **Once per tick across replicas.** A due row is locked by one replica; the run and the
  moved ``next_at`` commit together, so the next replica to see the row sees the next tick.
  A replica killed mid-transaction commits nothing and another takes the row. Should a
  tick ever be taken twice all the same, the dedupe key returns the first run.
* **Missed ticks run once.** Ticks that passed while no replica ran (or the queue was
  behind) collapse into one run, labelled with the oldest missed tick; the next is the first
  tick after now, never a backlog.
* **Late by at most** about ``schedule_poll_interval`` while a replica runs; a new, changed
  or disabled schedule is noticed within ``schedule_reconcile_interval``.
* **A tick that cannot run is skipped, visibly**: an instance disabled since the last
  reconcile, or a full run queue (``queue_full``), moves ``next_at`` on and logs
  ``schedule_tick_skipped``. A cron or time zone that cannot be used (saved before
  validation checked it) gets ``next_at`` NULL and logs ``schedule_unusable`` once.

Ticks follow :mod:`services.flows.triggers.cron` (time zones, daylight-saving changes).
The reconcile and the tick are system work across workspaces, like job claims: the only
queries here not filtered by ``workspace_id``; every row still carries one.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict

from libs.common.contracts import flows as c
from libs.common.db import Conn
from libs.common.errors import Conflict, NotFound, RateLimited
from libs.common.rows import many
from services.flows.runs.start import start_run
from services.flows.settings import FlowsOptions
from services.flows.triggers.cron import BadSchedule, next_tick
from services.flows.triggers.settings import TriggerOptions

log = structlog.get_logger(__name__)

RECONCILE_LOCK = "tether.flows.schedules.reconcile"

_WANTED = """
WITH wanted AS (
    SELECT fi.id AS flow_instance_id, fi.workspace_id,
           r.definition -> 'trigger' ->> 'cron' AS cron,
           coalesce(r.definition -> 'trigger' ->> 'timezone', 'UTC') AS timezone
    FROM flow_instances fi
    JOIN flow_revisions r
      ON r.workspace_id = fi.workspace_id AND r.flow_id = fi.flow_id
     AND r.revision = fi.base_revision
    WHERE fi.enabled AND fi.archived_at IS NULL
      AND r.definition -> 'trigger' ->> 'type' = 'schedule'
)
"""
TRY_RECONCILE_LOCK_SQL = "SELECT pg_try_advisory_xact_lock(hashtext($1))"
SELECT_CHANGED_SQL = f"""{_WANTED}
SELECT w.flow_instance_id, w.workspace_id, w.cron, w.timezone, now() AS now
FROM wanted w LEFT JOIN flow_schedules s ON s.flow_instance_id = w.flow_instance_id
WHERE s.flow_instance_id IS NULL OR s.cron <> w.cron OR s.timezone <> w.timezone
"""
DELETE_UNWANTED_SQL = f"""{_WANTED}
DELETE FROM flow_schedules s
WHERE NOT EXISTS (SELECT 1 FROM wanted w WHERE w.flow_instance_id = s.flow_instance_id)
RETURNING s.flow_instance_id
"""
UPSERT_SCHEDULE_SQL = """
INSERT INTO flow_schedules (flow_instance_id, workspace_id, cron, timezone, next_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (flow_instance_id) DO UPDATE
SET cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, next_at = EXCLUDED.next_at,
    updated_at = now()
WHERE flow_schedules.workspace_id = EXCLUDED.workspace_id
"""
CLAIM_DUE_SQL = """
SELECT flow_instance_id, workspace_id, cron, timezone, next_at, now() AS now
FROM flow_schedules WHERE next_at <= now()
ORDER BY next_at LIMIT $1
FOR UPDATE SKIP LOCKED
"""
SET_NEXT_SQL = """
UPDATE flow_schedules SET next_at = $3, updated_at = now()
WHERE workspace_id = $1 AND flow_instance_id = $2
"""


class Wanted(BaseModel):
    """A scheduled instance whose row is missing or out of date, and the database's now."""

    model_config = ConfigDict(frozen=True)

    flow_instance_id: UUID
    workspace_id: UUID
    cron: str
    timezone: str
    now: datetime


class Due(BaseModel):
    """A locked row whose tick has come, and the database's now."""

    model_config = ConfigDict(frozen=True)

    flow_instance_id: UUID
    workspace_id: UUID
    cron: str
    timezone: str
    next_at: datetime
    now: datetime


class Reconciled(BaseModel):
    """What one reconcile changed (None from :func:`reconcile`: another replica holds it)."""

    model_config = ConfigDict(frozen=True)

    upserted: int
    deleted: int


def first_tick(cron: str, timezone: str, now: datetime) -> datetime | None:
    """Return the tick a new (or changed) schedule waits for: the first after ``now``.

    None when it never ticks; BadSchedule when ``cron`` or ``timezone`` cannot be used.
    """
    return next_tick(cron, timezone, now)


def following_tick(cron: str, timezone: str, due: datetime, now: datetime) -> datetime | None:
    """Return the tick after running the one ``due`` at ``now``: the first after both.

    Ticks between ``due`` and ``now`` (missed while nothing ran) are skipped: they were
    covered by the one run just started.
    """
    return next_tick(cron, timezone, max(due, now))


async def reconcile(conn: Conn) -> Reconciled | None:
    """Make ``flow_schedules`` match the scheduled instances, in the caller's transaction.

    Returns None (and does nothing) when another replica is reconciling right now.
    """
    if not await conn.fetchval(TRY_RECONCILE_LOCK_SQL, RECONCILE_LOCK):
        return None
    gone = await conn.fetch(DELETE_UNWANTED_SQL)
    changed = many(Wanted, await conn.fetch(SELECT_CHANGED_SQL))
    for row in changed:
        try:
            next_at = first_tick(row.cron, row.timezone, row.now)
        except BadSchedule as exc:
            next_at = None
            log.warning(
                "schedule_unusable",
                workspace_id=str(row.workspace_id),
                flow_instance_id=str(row.flow_instance_id),
                error=str(exc),
            )
        await conn.execute(
            UPSERT_SCHEDULE_SQL,
            row.flow_instance_id,
            row.workspace_id,
            row.cron,
            row.timezone,
            next_at,
        )
    return Reconciled(upserted=len(changed), deleted=len(gone))


async def run_due(conn: Conn, options: FlowsOptions, *, limit: int) -> int:
    """Start the runs of up to ``limit`` due ticks in the caller's transaction.

    Returns how many rows were taken, so a caller knows whether more may be due. A row whose
    run failed unexpectedly stays due (and locked until the caller commits): it is tried
    again on the next poll, under the same tick and dedupe key.
    """
    due = many(Due, await conn.fetch(CLAIM_DUE_SQL, limit))
    for row in due:
        try:
            following = following_tick(row.cron, row.timezone, row.next_at, row.now)
        except BadSchedule as exc:  # the reconcile checked it; a zone may have gone since
            following = None
            log.warning(
                "schedule_unusable", flow_instance_id=str(row.flow_instance_id), error=str(exc)
            )
        else:
            if not await _start(conn, row, options):
                continue  # left due: tried again on the next poll
        await conn.execute(SET_NEXT_SQL, row.workspace_id, row.flow_instance_id, following)
    return len(due)


async def _start(conn: Conn, row: Due, options: FlowsOptions) -> bool:
    """Start the run of one due tick (in a savepoint); False when it must be tried again."""
    tick = row.next_at
    ids: dict[str, Any] = {
        "workspace_id": str(row.workspace_id),
        "flow_instance_id": str(row.flow_instance_id),
        "tick": tick.isoformat(),
    }
    try:
        async with conn.transaction():  # a savepoint: one bad row leaves the others
            run, created = await start_run(
                conn,
                workspace_id=row.workspace_id,
                instance_id=row.flow_instance_id,
                ctx=None,
                input={"tick": tick.isoformat()},
                trigger=c.RunTrigger(type="schedule", tick=tick),
                dedupe_key=f"tick:{tick.isoformat()}",
                options=options,
            )
    except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
        raise  # the connection is gone: nothing more can be done in this transaction
    except Exception as exc:
        if _consumes_tick(exc):
            log.warning("schedule_tick_skipped", reason=getattr(exc, "code", ""), **ids)
            return True  # the reconcile drops a disabled instance's row
        log.exception("schedule_tick_failed", **ids)
        return False
    if not created:
        log.warning("schedule_tick_repeated", run_id=str(run.id), **ids)
    return True


def _consumes_tick(exc: Exception) -> bool:
    """Tell whether ``exc`` means the tick cannot run at all (skip it) rather than not yet."""
    if isinstance(exc, NotFound | RateLimited):
        return True
    return isinstance(exc, Conflict) and exc.code == "flow_instance_disabled"


class Scheduler:
    """Reconcile and tick until cancelled (one per replica; see the module docstring)."""

    def __init__(
        self, pool: asyncpg.Pool[Any], flows: FlowsOptions, options: TriggerOptions
    ) -> None:
        self._pool = pool
        self._flows = flows
        self._options = options

    async def run(self) -> None:
        """Loop: reconcile when its interval has passed, run every due tick, then wait."""
        loop = asyncio.get_running_loop()
        reconciled_at: float | None = None
        while True:
            try:
                now = loop.time()
                if (
                    reconciled_at is None
                    or now - reconciled_at >= self._options.schedule_reconcile_interval
                ):
                    await self.reconcile_once()
                    reconciled_at = now
                while await self.tick_once() == self._options.schedule_batch:
                    pass
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("schedule_loop_failed", error=str(exc))
            await asyncio.sleep(self._options.schedule_poll_interval)

    async def reconcile_once(self) -> Reconciled | None:
        """Run one reconcile in its own transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            done = await reconcile(conn)
        if done is not None and (done.upserted or done.deleted):
            log.info("schedules_reconciled", upserted=done.upserted, deleted=done.deleted)
        return done

    async def tick_once(self) -> int:
        """Run one batch of due ticks in its own transaction; return the rows taken."""
        async with self._pool.acquire() as conn, conn.transaction():
            return await run_due(conn, self._flows, limit=self._options.schedule_batch)
