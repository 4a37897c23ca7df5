"""Delete finished deliveries past ``TETHER_DELIVERY_RETENTION_DAYS``, a batch at a time.

Every replica sweeps (``libs/common/retention.py``); each batch is its own short transaction.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.common import retention
from services.notifications.settings import NotificationsOptions
from services.notifications.store import deliveries

BATCH = 500


def purging(retention_days: int) -> retention.Batch:
    """Return the batch that deletes finished deliveries older than ``retention_days``."""
    return lambda conn, limit: deliveries.purge(conn, retention_days, limit)


async def sweep_once(pool: asyncpg.Pool[Any], retention_days: int) -> int:
    """Delete finished deliveries older than the retention until none is left; return how many."""
    return await retention.sweep_once(pool, purging(retention_days), BATCH)


async def sweep(pool: asyncpg.Pool[Any], options: NotificationsOptions) -> None:
    """Sweep every ``retention_sweep_interval`` seconds until cancelled."""
    await retention.sweep_every(
        pool,
        purging(options.delivery_retention_days),
        limit=BATCH,
        interval=options.retention_sweep_interval,
        swept="deliveries_purged",
        failed="deliveries_sweep_failed",
    )
