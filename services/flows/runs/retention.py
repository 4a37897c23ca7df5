"""Drop old runs' node inputs and outputs after ``run_retention_days``; summaries stay.

A run's node executions keep their input and output for the retention, then lose both
(``output_dropped`` says so; sizes, states, attempts, timings, logs and errors stay, as
does the run itself with its input). Every replica sweeps (``libs/common/retention.py``):
a batch skips the rows another replica is sweeping right now, and each batch is its own
short transaction.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.common import retention
from services.flows.runs import store
from services.flows.settings import FlowsOptions

BATCH = 1000
"""Node executions one transaction of a sweep changes at most."""


def dropping(older_than: float) -> retention.Batch:
    """Return the batch that drops node inputs and outputs of runs ended ``older_than`` s ago."""
    return lambda conn, limit: store.drop_old_outputs(conn, older_than, limit)


async def sweep_once(pool: asyncpg.Pool[Any], older_than: float, batch: int = BATCH) -> int:
    """Drop the inputs and outputs of runs ended over ``older_than`` seconds ago; return how many."""
    return await retention.sweep_once(pool, dropping(older_than), batch)


async def sweep(pool: asyncpg.Pool[Any], options: FlowsOptions) -> None:
    """Sweep every ``run_retention_interval`` seconds until cancelled."""
    await retention.sweep_every(
        pool,
        dropping(options.run_retention_days * 86400.0),
        limit=BATCH,
        interval=options.run_retention_interval,
        swept="run_outputs_dropped",
        failed="run_retention_failed",
    )
