"""The outbox never loses an event and never delivers one twice to a consumer."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from libs.common.bus import Bus, connect
from libs.common.contracts.base import EVENTS_STREAM, Event, EventType
from libs.common.db import Conn, create_pool, migrate
from libs.common.outbox import EventConsumer, OutboxRelay, emit, ensure_stream
from tests.conftest import Infra, eventually


class ThingHappened(Event):
    thing_id: str


@dataclass
class Env:
    pool: asyncpg.Pool[Any]
    bus: Bus
    schema: str
    event_type: EventType[ThingHappened]

    async def emit(self, thing_id: str) -> ThingHappened:
        event = ThingHappened(workspace_id=uuid4(), thing_id=thing_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await emit(conn, self.event_type, event)
        return event

    async def stream_count(self) -> int:
        info = await self.bus.js.stream_info(EVENTS_STREAM, subjects_filter=self.event_type.subject)
        return (info.state.subjects or {}).get(self.event_type.subject, 0)

    async def pending(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))


@pytest.fixture
async def env(infra: Infra, tmp_path: Path) -> AsyncIterator[Env]:
    schema = f"o_{secrets.token_hex(4)}"
    await migrate(infra.database_url, schema, tmp_path)
    pool = await create_pool(infra.database_url, schema, min_size=1, max_size=5)
    nc = await connect(infra.nats_url, "outbox-test")
    bus = Bus(nc)
    await ensure_stream(bus.js)
    try:
        yield Env(
            pool, bus, schema, EventType(f"tether.evt.{schema}.thing.happened", ThingHappened)
        )
    finally:
        await pool.close()
        await nc.close()


class CrashAfterPublish(OutboxRelay):
    """A relay that dies between publishing and marking the rows sent."""

    async def after_publish(self, rows: Sequence[asyncpg.Record]) -> None:
        raise RuntimeError("killed after publish")


class CrashBeforePublish(OutboxRelay):
    """A relay that dies before publishing anything."""

    async def publish(self, rows: Sequence[asyncpg.Record]) -> None:
        raise RuntimeError("killed before publish")


async def test_outbox_rolled_back_change_publishes_nothing(env: Env) -> None:
    async def failing_change() -> None:
        async with env.pool.acquire() as conn, conn.transaction():
            await emit(conn, env.event_type, ThingHappened(workspace_id=uuid4(), thing_id="x"))
            raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    assert await OutboxRelay(env.pool, env.bus.js, env.schema).relay_once() == 0
    assert await env.stream_count() == 0


async def test_outbox_crash_after_publish_delivers_once(env: Env) -> None:
    event = await env.emit("a")
    with pytest.raises(RuntimeError, match="after publish"):
        await CrashAfterPublish(env.pool, env.bus.js, env.schema).relay_once()
    assert await env.pending() == 1  # the row was not marked sent
    assert await env.stream_count() == 1
    assert await OutboxRelay(env.pool, env.bus.js, env.schema).relay_once() == 1
    assert await env.pending() == 0
    assert await env.stream_count() == 1  # JetStream dropped the duplicate (same Nats-Msg-Id)
    seen = await _consume_all(env, expect=1)
    assert seen == [event.event_id]


async def test_outbox_crash_before_publish_loses_nothing(env: Env) -> None:
    events = [await env.emit(str(i)) for i in range(5)]
    with pytest.raises(RuntimeError, match="before publish"):
        await CrashBeforePublish(env.pool, env.bus.js, env.schema).relay_once()
    assert await env.pending() == 5
    assert await env.stream_count() == 0
    assert await OutboxRelay(env.pool, env.bus.js, env.schema).relay_once() == 5
    seen = await _consume_all(env, expect=5)
    assert sorted(map(str, seen)) == sorted(str(e.event_id) for e in events)


async def test_outbox_relay_wakes_on_notify(env: Env) -> None:
    relay = OutboxRelay(
        env.pool, env.bus.js, env.schema, sweep_interval=60
    )  # sweeps would be too slow
    task = asyncio.create_task(relay.run())
    try:
        await env.emit("woken")

        async def published() -> bool:
            return await env.stream_count() == 1

        await eventually(published, timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_consumer_skips_redelivered_event_and_retries_failures(env: Env) -> None:
    event = ThingHappened(workspace_id=uuid4(), thing_id="dup")
    for msg_id in ("first", "second"):  # the same event arriving twice (e.g. two relays)
        await env.bus.js.publish(
            env.event_type.subject,
            event.model_dump_json().encode(),
            headers={"Nats-Msg-Id": msg_id},
        )
    calls: list[str] = []
    failures = [True]  # the first attempt fails: the event must come back

    async def handler(conn: Conn, _: EventType[Any], ev: Event) -> None:
        calls.append(str(ev.event_id))
        await conn.execute(
            "INSERT INTO outbox (id, workspace_id, subject, payload) VALUES ($1, $2, 'x', '{}')",
            uuid4(),
            ev.workspace_id,
        )
        if failures:
            failures.pop()
            raise RuntimeError("transient")

    consumer = EventConsumer(
        env.pool, env.bus.js, f"c_{env.schema}", [env.event_type], handler, ack_wait=2
    )
    task = asyncio.create_task(consumer.run())
    try:

        async def handled() -> bool:
            return (
                await env.pool.fetchval("SELECT count(*) FROM processed_events") == 1
                and len(calls) >= 2
            )

        await eventually(handled, timeout=15)
        info = await env.bus.js.consumer_info(EVENTS_STREAM, f"c_{env.schema}")
        await eventually(lambda: _acked_all(env, f"c_{env.schema}"), timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert info is not None
    assert calls == [str(event.event_id)] * 2  # one failure, one success, the duplicate skipped
    # The failed attempt's write was rolled back; the successful one committed once.
    assert await env.pool.fetchval("SELECT count(*) FROM outbox WHERE subject = 'x'") == 1


async def _acked_all(env: Env, durable: str) -> bool:
    info = await env.bus.js.consumer_info(EVENTS_STREAM, durable)
    return info.num_ack_pending == 0 and info.num_pending == 0


async def _consume_all(env: Env, expect: int) -> list[Any]:
    seen: list[Any] = []

    async def handler(_: Conn, __: EventType[Any], ev: Event) -> None:
        seen.append(ev.event_id)

    durable = f"c_{env.schema}_{secrets.token_hex(2)}"
    consumer = EventConsumer(env.pool, env.bus.js, durable, [env.event_type], handler)
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _acked_all_after(env, durable, seen, expect), timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return seen


async def _acked_all_after(env: Env, durable: str, seen: list[Any], expect: int) -> bool:
    if len(seen) < expect:
        return False
    return await _acked_all(env, durable)
