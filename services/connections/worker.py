"""Background work shared by every replica: renew due tokens, check tokens without expiry.

Each worker claims one due connection at a time with ``FOR UPDATE SKIP LOCKED`` (oldest
due first, so claiming is fair) and renews it while holding that row lock: replicas never
overlap, and an on-demand caller of the same connection waits for the result instead of
calling the provider again. A failed renewal pushes the connection's next attempt out by
its backoff, so one broken connection cannot monopolise the workers.

A graceful stop lands between renewals, never inside one: each claim, provider call and
commit runs as one :func:`~libs.common.runtime.uninterrupted` unit, which a stop lets
finish (within the shutdown grace). Cut after the provider answered and before the
commit, a strictly rotating provider's new refresh token would be lost, and with it the
connection.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from libs.common.runtime import uninterrupted
from services.connections.connections import Connections
from services.connections.refresh import Refresher
from services.connections.settings import ConnectionsOptions
from services.connections.store import connections as connection_store
from services.connections.store.connections import ConnectionRecord

log = structlog.get_logger(__name__)


#: What a lost or failing database raises (a killed backend surfaces as InterfaceError
#: when the transaction block closes): a worker logs it, waits a poll and goes on.
DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def renew_one_due(pool: asyncpg.Pool[Any], refresher: Refresher) -> bool:
    """Claim one due connection and renew it, committing the result; False when none is due."""
    async with pool.acquire() as conn, conn.transaction():
        claimed = await connection_store.claim_due(conn, "refresh")
        if claimed is None:
            return False
        record = await connection_store.select_connection(conn, *claimed, for_update=True)
        if record is not None:
            await refresher.renew_locked(conn, record)
    return True


async def refresh_worker(
    pool: asyncpg.Pool[Any], refresher: Refresher, options: ConnectionsOptions, *, grace: float
) -> None:
    """Renew due connections until cancelled; idle for the poll interval when none is due.

    Cancelled mid-renewal, the renewal still finishes and commits (up to ``grace`` seconds).
    """
    while True:
        try:
            renewed = await uninterrupted(renew_one_due(pool, refresher), grace=grace)
        except DATABASE_ERRORS as exc:
            log.warning("refresh_worker_failed", error=str(exc))
            renewed = False
        if not renewed:
            await asyncio.sleep(options.refresh_poll_interval)  # nothing due: poll again later


async def _claim_check(
    pool: asyncpg.Pool[Any], options: ConnectionsOptions
) -> ConnectionRecord | None:
    """Claim one due check and schedule the next one; return the connection if still connected.

    The next check is written before this one runs, so a check that fails (or a process
    that dies mid-check) is tried again an interval later, never in a tight loop.
    """
    async with pool.acquire() as conn:
        async with conn.transaction():
            claimed = await connection_store.claim_due(conn, "check")
            if claimed is None:
                return None
            next_check = datetime.now(UTC) + timedelta(seconds=options.check_interval)
            await connection_store.set_check_due(conn, *claimed, next_check)
        record = await connection_store.select_connection(conn, *claimed)
    return record if record is not None and record.state == "connected" else None


async def check_worker(
    pool: asyncpg.Pool[Any], connections: Connections, options: ConnectionsOptions
) -> None:
    """Run the test request for connections whose tokens never said when they expire."""
    idle = options.refresh_poll_interval * 5  # checks are rare
    while True:
        try:
            record = await _claim_check(pool, options)
        except DATABASE_ERRORS as exc:
            log.warning("check_worker_failed", error=str(exc))
            await asyncio.sleep(idle)
            continue
        if record is None:
            await asyncio.sleep(idle)
            continue
        try:
            await connections.check(record)
        except Exception:  # one connection's failure must not stop the others' checks
            log.exception("connection_check_failed", connection_id=str(record.id))
