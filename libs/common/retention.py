"""Sweep rows past their retention, a batch at a time, on every replica, until cancelled.

A service gives only its batch: a function that runs its SQL on a connection — delete (or
null the bulky columns of) at most ``limit`` rows past the retention, skipping the rows
another replica's sweep holds (``FOR UPDATE SKIP LOCKED``) — and returns how many it
changed. Then:

* each batch is one statement on a pooled connection, its own short transaction: a sweep
  never holds many rows, or a connection, for long;
* :func:`sweep_once` runs batches until one comes back short and returns the total;
* :func:`sweep_every` does that every ``interval`` seconds until cancelled. A database that
  fails (``OSError``, ``asyncpg.PostgresError``) is logged as the ``failed`` event and
  tried again after the interval; a sweep that changed rows is logged as the ``swept``
  event with their ``count``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import asyncpg
import structlog

from libs.common.db import Conn

log = structlog.get_logger(__name__)

Batch: TypeAlias = Callable[[Conn, int], Awaitable[int]]
"""Change at most ``limit`` rows past the retention on ``conn``; return how many."""


async def sweep_once(pool: asyncpg.Pool[Any], batch: Batch, limit: int) -> int:
    """Run ``batch`` until it changes fewer than ``limit`` rows; return how many it changed."""
    total = 0
    while True:
        async with pool.acquire() as conn:
            changed = await batch(conn, limit)
        total += changed
        if changed < limit:
            return total


async def sweep_every(
    pool: asyncpg.Pool[Any],
    batch: Batch,
    *,
    limit: int,
    interval: float,
    swept: str,
    failed: str,
) -> None:
    """Sweep every ``interval`` seconds until cancelled; log ``swept`` and ``failed`` events."""
    while True:
        try:
            changed = await sweep_once(pool, batch, limit)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning(failed, error=str(exc))
        else:
            if changed:
                log.info(swept, count=changed)
        await asyncio.sleep(interval)
