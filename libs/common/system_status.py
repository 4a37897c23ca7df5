"""Compute what every service's ``system.status`` reports, once for all services.

Each service answers ``tether.<service>.system.status`` (see
:mod:`libs.common.contracts.system`) through a :class:`StatusReporter`, handing it the
checks only it can make (``services/<service>/system.py``). The reporter adds what is the
same everywhere:

* the outbox backlog, the job queues and the service's durable consumers: system work
  across workspaces (the relay's, the job engine's and JetStream's own view), reported
  as counts and ages only, never an id or a payload;
* the caller's workspace's dead letters, counted with ``workspace_id`` = the caller's.

What it guarantees: a status is computed from one pool connection and one JetStream
listing, concurrently; a JetStream that does not answer in :data:`JETSTREAM_TIMEOUT`
becomes a problem sentence, not a failed status. The limits below decide what is
worded as a problem; figures under them are reported without comment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from libs.common.bus import Bus
from libs.common.contracts.base import EVENTS_STREAM, INBOUND_STREAM, Context
from libs.common.contracts.system import (
    ConsumerLag,
    DeadLetterCount,
    JobQueue,
    OutboxBacklog,
    ServiceStatus,
    StatusCheck,
)
from libs.common.db import Conn

OUTBOX_LAG_LIMIT = 30.0
"""Seconds the oldest unpublished event may wait before it is a problem (the relay sweeps every second)."""
JOB_LAG_LIMIT = 60.0
"""Seconds the oldest due job may wait for a worker before it is a problem."""
CONSUMER_PENDING_LIMIT = 1000
"""Undelivered messages a durable consumer may be behind before it is a problem."""
JETSTREAM_TIMEOUT = 2.0
"""Seconds the listing of the stream's consumers may take."""
CONSUMERS_PAGE = 256
"""Consumers JetStream lists per page."""

OUTBOX_BACKLOG_SQL = """
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8 AS lag
FROM outbox WHERE sent_at IS NULL
"""
JOB_QUEUES_SQL = """
SELECT queue,
       count(*) FILTER (WHERE status = 'pending' AND not_before <= now()) AS due,
       count(*) FILTER (WHERE status = 'running') AS running,
       coalesce(extract(epoch FROM now() - min(not_before)
           FILTER (WHERE status = 'pending' AND not_before <= now())), 0)::float8 AS lag
FROM jobs WHERE status IN ('pending', 'running')
GROUP BY queue ORDER BY queue
"""
DEAD_LETTER_COUNT_SQL = """
SELECT count(*) FILTER (WHERE gave_up_at IS NOT NULL) AS given_up,
       count(*) FILTER (WHERE gave_up_at IS NULL) AS retrying
FROM dead_letters WHERE workspace_id = $1
"""

Checks = Callable[[Conn, UUID], Awaitable[list[StatusCheck]]]
"""A service's own checks of one workspace: (connection, workspace id) → checks."""


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """Return ``1 run`` or ``3 runs`` (``nouns`` when the plural is not ``noun + 's'``)."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


async def count_check(
    conn: Conn, workspace_id: UUID, key: str, sql: str, summary: Callable[[int], str]
) -> StatusCheck:
    """Run ``sql`` as a check that fails when it finds anything in the workspace.

    ``sql`` takes the workspace id as ``$1`` and returns one row: ``n`` (how many) and
    ``sample`` (some of their ids as text, at most :data:`~libs.common.contracts.system.SAMPLE_SIZE`, or null).
    """
    row = await conn.fetchrow(sql, workspace_id)
    assert row is not None  # an aggregate always returns a row
    return StatusCheck(
        key=key,
        ok=not row["n"],
        count=row["n"],
        summary=summary(row["n"]),
        sample=row["sample"] or [],
    )


async def outbox_backlog(conn: Conn) -> OutboxBacklog:
    """Return the schema's unpublished events: how many, and how old the oldest is.

    System work across workspaces (the relay's view): counts only.
    """
    row = await conn.fetchrow(OUTBOX_BACKLOG_SQL)
    assert row is not None  # an aggregate always returns a row
    return OutboxBacklog(pending=row["pending"], lag_seconds=round(row["lag"], 3))


async def job_queues(conn: Conn) -> list[JobQueue]:
    """Return each job queue with pending or running jobs: due, running, the oldest due's wait.

    System work across workspaces (the job engine's view): counts only.
    """
    rows = await conn.fetch(JOB_QUEUES_SQL)
    return [
        JobQueue(
            queue=r["queue"], due=r["due"], running=r["running"], lag_seconds=round(r["lag"], 3)
        )
        for r in rows
    ]


async def dead_letter_count(conn: Conn, workspace_id: UUID) -> DeadLetterCount:
    """Count the workspace's dead letters in this schema (given up, and still retrying)."""
    row = await conn.fetchrow(DEAD_LETTER_COUNT_SQL, workspace_id)
    assert row is not None
    return DeadLetterCount(given_up=row["given_up"], retrying=row["retrying"])


def lag_of(info: ConsumerInfo) -> ConsumerLag:
    """Return a durable consumer's backlog as JetStream reports it (status and metrics)."""
    return ConsumerLag(
        consumer=info.name,
        pending=info.num_pending or 0,
        ack_pending=info.num_ack_pending or 0,
        redelivered=info.num_redelivered or 0,
    )


async def consumer_lags(js: JetStreamContext, service: str) -> list[ConsumerLag]:
    """Return the service's durable consumers (events and inbound streams), as JetStream counts them.

    A service's durables are named ``<service>-…`` (``flows-app-events``); system work
    across workspaces, counts only. Raises ``nats.errors.Error`` (or ``TimeoutError``)
    when JetStream does not answer.
    """
    found: list[ConsumerLag] = []
    for stream in (EVENTS_STREAM, INBOUND_STREAM):
        offset = 0
        while True:
            try:
                page = await js.consumers_info(stream, offset=offset or None)
            except nats.js.errors.NotFoundError:
                break  # a stream nobody has created yet holds no consumer
            found.extend(lag_of(info) for info in page if info.name.startswith(f"{service}-"))
            if len(page) < CONSUMERS_PAGE:
                break
            offset += len(page)
    return sorted(found, key=lambda c: c.consumer)


def problems_of(
    outbox: OutboxBacklog,
    consumers: Sequence[ConsumerLag],
    jobs: Sequence[JobQueue],
    dead_letters: DeadLetterCount,
    checks: Sequence[StatusCheck],
) -> list[str]:
    """Word what needs attention, one sentence each (the limits of this module decide)."""
    found: list[str] = []
    if outbox.lag_seconds > OUTBOX_LAG_LIMIT:
        found.append(
            f"outbox lag {outbox.lag_seconds:.0f} s "
            f"({plural(outbox.pending, 'event')} waiting to be published)"
        )
    for c in consumers:
        if c.pending > CONSUMER_PENDING_LIMIT:
            found.append(
                f"consumer {c.consumer}: {plural(c.pending, 'event')} waiting to be delivered"
            )
        if c.redelivered:
            found.append(
                f"consumer {c.consumer}: {plural(c.redelivered, 'event')} being redelivered "
                "(a handler keeps failing or timing out)"
            )
    for q in jobs:
        if q.lag_seconds > JOB_LAG_LIMIT:
            found.append(
                f"job queue {q.queue}: the oldest due job has waited {q.lag_seconds:.0f} s "
                f"({q.due} due)"
            )
    if dead_letters.given_up:
        found.append(
            f"{plural(dead_letters.given_up, 'event')} of this workspace given up "
            "(dead letters: `tether dead-letters`)"
        )
    found.extend(check.summary for check in checks if not check.ok)
    return found


class StatusReporter:
    """Answer one service's ``system.status``: the shared figures plus the service's checks."""

    def __init__(
        self,
        service: str,
        pool: asyncpg.Pool[Any],
        bus: Bus,
        version: str,
        instance: Callable[[], str],
    ) -> None:
        """Report for ``service``; ``instance`` returns this replica's id (known once serving)."""
        self._service = service
        self._pool = pool
        self._bus = bus
        self._version = version
        self._instance = instance

    async def report(self, ctx: Context, checks: Checks) -> ServiceStatus:
        """Return the status, with ``checks`` of the caller's workspace.

        For an admin of a workspace (or a system caller naming one); anyone else is refused.
        """
        workspace_id = ctx.admin_workspace()

        async def from_database() -> tuple[
            OutboxBacklog, list[JobQueue], DeadLetterCount, list[StatusCheck]
        ]:
            async with self._pool.acquire() as conn:
                return (
                    await outbox_backlog(conn),
                    await job_queues(conn),
                    await dead_letter_count(conn, workspace_id),
                    await checks(conn, workspace_id),
                )

        (outbox, jobs, dead, found), (consumers, trouble) = await asyncio.gather(
            from_database(), self._consumers()
        )
        problems = problems_of(outbox, consumers, jobs, dead, found)
        if trouble:
            problems.insert(0, trouble)
        return ServiceStatus(
            service=self._service,
            instance=self._instance(),
            version=self._version,
            time=datetime.now(UTC),
            ok=not problems,
            problems=problems,
            outbox=outbox,
            consumers=consumers,
            jobs=jobs,
            dead_letters=dead,
            checks=found,
        )

    async def _consumers(self) -> tuple[list[ConsumerLag], str | None]:
        """Return the consumers, or none and why JetStream could not list them."""
        try:
            async with asyncio.timeout(JETSTREAM_TIMEOUT):
                return await consumer_lags(self._bus.js, self._service), None
        except (nats.errors.Error, TimeoutError) as exc:
            why = str(exc) or type(exc).__name__
            return [], f"JetStream did not list the event consumers ({why})"
