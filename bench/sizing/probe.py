"""Read the running stack: the CPU of its processes, and when the work it was given is done.

:class:`Meter` reads ``/proc`` at one instant; :func:`settle` waits until every outbox is
drained and every JetStream consumer has caught up; :func:`measure` runs a load between
two reads, waits for the work it caused to settle, and returns its CPU per request.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import nats

from bench.common import Result
from bench.sizing.model import (
    Snapshot,
    cpu_delta,
    parse_busy_ticks,
    read_all_stats,
    snapshot,
    us_per_request,
)
from bench.sizing.tables import Measured

TICKS = os.sysconf("SC_CLK_TCK")
"""Clock ticks per second, the unit of /proc/<pid>/stat CPU times."""
OUTBOXES_SQL = "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
UNSENT_SQL = "SELECT count(*) FROM {}.outbox WHERE sent_at IS NULL"
EVENTS_SQL = "SELECT count(*) FROM {}.outbox"


class Meter:
    """Reads the CPU of a set of processes, and of the whole machine, at one instant.

    A component named ``postgres`` counts its processes' descendants too (the backends).
    """

    def __init__(self, components: Mapping[str, list[int]]) -> None:
        self.components = components

    def read(self) -> tuple[Snapshot, float, int]:
        """Return (ticks per process, monotonic time, the machine's busy ticks)."""
        stats = read_all_stats()
        busy, _ = parse_busy_ticks(Path("/proc/stat").read_text())
        return snapshot(stats, self.components, trees=("postgres",)), time.monotonic(), busy


async def outboxes(db: asyncpg.Pool[Any]) -> list[str]:
    """Return the schemas that hold an outbox (system work: the whole stack)."""
    return [r["table_schema"] for r in await db.fetch(OUTBOXES_SQL)]


async def events_written(db: asyncpg.Pool[Any]) -> int:
    """Return how many events every outbox ever held (system work: the whole stack)."""
    return sum([await db.fetchval(EVENTS_SQL.format(s)) for s in await outboxes(db)])


async def settle(db: asyncpg.Pool[Any], nats_url: str, timeout: float = 600) -> None:
    """Wait until every outbox is drained and every JetStream consumer has caught up.

    System work across all workspaces: it watches the whole stack, not one tenant.
    """
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        schemas = await outboxes(db)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            unsent = [await db.fetchval(UNSENT_SQL.format(s)) for s in schemas]
            if not any(unsent):  # then the consumers: the events are all on JetStream
                behind = [
                    (c.num_pending or 0) + (c.num_ack_pending or 0)
                    for s in await js.streams_info()
                    for c in await js.consumers_info(s.config.name or "")
                ]
                if not any(behind):
                    return
            await asyncio.sleep(0.1)  # polling: the stack announces no "all quiet"
        raise TimeoutError(f"the stack did not settle within {timeout} s")
    finally:
        await nc.close()


async def measure(
    components: Mapping[str, list[int]],
    db: asyncpg.Pool[Any],
    nats_url: str,
    work: Callable[[], Awaitable[Result]],
    idle: Mapping[str, float],
) -> Measured:
    """Run ``work``, let the stack settle, and return the CPU per request it cost."""
    meter = Meter(components)
    events = await events_written(db)
    before, started, busy_before = meter.read()
    result = await work()
    print(result.line())
    if result.errors:
        print(f"    warning: {result.errors} requests failed; only the others are counted")
    await settle(db, nats_url)
    after, ended, busy_after = meter.read()
    events = await events_written(db) - events
    window = ended - started
    cpu = cpu_delta(before, after, TICKS)
    others = max(0.0, (busy_after - busy_before) / TICKS - sum(cpu.seconds.values())) / window
    us = us_per_request(cpu.seconds, result.requests, window, idle)
    return Measured(result, window, us, cpu, others, events / max(1, result.requests))


async def idle_rate(components: Mapping[str, list[int]], seconds: float) -> dict[str, float]:
    """Return the CPU seconds per second each component spends with no load."""
    meter = Meter(components)
    before, started, _ = meter.read()
    await asyncio.sleep(seconds)  # this is the measurement: the stack's background CPU
    after, ended, _ = meter.read()
    return {k: v / (ended - started) for k, v in cpu_delta(before, after, TICKS).seconds.items()}
