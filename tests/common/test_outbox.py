"""The outbox never loses an event and never delivers one twice to a consumer."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict
from uuid import UUID, uuid4

import asyncpg
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy

from libs.common.bus import Bus, connect
from libs.common.contracts.base import EVENTS_STREAM, Event, EventType
from libs.common.db import Conn, create_pool, migrate
from libs.common.outbox import EventConsumer, OutboxRelay, emit, ensure_stream
from tests.conftest import Infra, eventually


class ThingHappened(Event):
    thing_id: str


class Retries(TypedDict):
    """The retry keywords of `EventConsumer`."""

    max_attempts: int
    backoff: tuple[float, ...]


FAST = Retries(max_attempts=3, backoff=(0.05, 0.1))
"""Retry settings that keep the tests quick (production waits seconds to minutes)."""


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
        env.pool, env.bus, f"c_{env.schema}", [env.event_type], handler, ack_wait=2, **FAST
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
    assert await env.pool.fetchval("SELECT count(*) FROM dead_letters") == 0  # retry succeeded


async def _acked_all(env: Env, durable: str) -> bool:
    info: ConsumerInfo = await env.bus.js.consumer_info(EVENTS_STREAM, durable)  # untyped there
    return info.num_ack_pending == 0 and info.num_pending == 0


async def _consume_all(env: Env, expect: int) -> list[UUID]:
    seen: list[UUID] = []

    async def handler(_: Conn, __: EventType[Any], ev: Event) -> None:
        seen.append(ev.event_id)

    durable = f"c_{env.schema}_{secrets.token_hex(2)}"
    consumer = EventConsumer(env.pool, env.bus, durable, [env.event_type], handler, **FAST)
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _acked_all_after(env, durable, seen, expect), timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return seen


async def _acked_all_after(env: Env, durable: str, seen: list[UUID], expect: int) -> bool:
    if len(seen) < expect:
        return False
    return await _acked_all(env, durable)


# --- poison events: given up visibly, never redelivered forever --------------------------


@contextlib.asynccontextmanager
async def running(consumer: EventConsumer) -> AsyncIterator[None]:
    """Run ``consumer`` for the block."""
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _publish(env: Env, data: bytes) -> None:
    await env.bus.js.publish(
        env.event_type.subject, data, headers={"Nats-Msg-Id": secrets.token_hex(8)}
    )


async def _dead_letters(env: Env, durable: str) -> list[asyncpg.Record]:
    return list(
        await env.pool.fetch(
            "SELECT * FROM dead_letters WHERE consumer = $1 ORDER BY stream_seq", durable
        )
    )


async def test_consumer_terms_unreadable_events_and_keeps_going(env: Env) -> None:
    """Garbage and wrong-schema payloads are dead letters at once; later events still flow."""
    durable = f"c_{env.schema}"
    handled: list[str] = []

    async def handler(_: Conn, __: EventType[Any], ev: Event) -> None:
        assert isinstance(ev, ThingHappened)
        handled.append(ev.thing_id)

    await _publish(env, b"\x00\xff not json {")
    await _publish(env, b'{"thingId": "no workspace"}')
    good = ThingHappened(workspace_id=uuid4(), thing_id="good")
    await _publish(env, good.model_dump_json().encode())
    consumer = EventConsumer(env.pool, env.bus, durable, [env.event_type], handler, **FAST)
    async with running(consumer):

        async def settled() -> bool:
            return handled == ["good"] and await _acked_all(env, durable)

        await eventually(settled)
    garbage, wrong = await _dead_letters(env, durable)
    assert (garbage["deliveries"], wrong["deliveries"]) == (1, 1)  # terminated, not retried
    assert garbage["gave_up_at"] is not None
    assert wrong["gave_up_at"] is not None
    assert garbage["event_id"] is None
    assert garbage["payload"] == "\ufffd\ufffd not json {"  # NUL and bad UTF-8, shown
    assert garbage["payload_size"] == 13
    assert garbage["error"].startswith("unreadable event: ")
    assert "workspaceId: Field required" in wrong["error"]
    assert "no workspace" not in wrong["error"]  # the error names fields, not input values
    info = await env.bus.js.consumer_info(EVENTS_STREAM, durable)
    assert info.num_redelivered == 0


async def test_consumer_gives_up_on_a_failing_handler_after_max_attempts(env: Env) -> None:
    """A handler that always fails sees the event max_attempts times, then a dead letter."""
    durable = f"c_{env.schema}"
    calls: dict[str, int] = {}

    async def handler(conn: Conn, _: EventType[Any], ev: Event) -> None:
        assert isinstance(ev, ThingHappened)
        calls[ev.thing_id] = calls.get(ev.thing_id, 0) + 1
        if ev.thing_id == "bad":
            raise RuntimeError("boom")

    bad = ThingHappened(workspace_id=uuid4(), thing_id="bad")
    await _publish(env, bad.model_dump_json().encode())
    await _publish(
        env, ThingHappened(workspace_id=uuid4(), thing_id="good").model_dump_json().encode()
    )
    consumer = EventConsumer(env.pool, env.bus, durable, [env.event_type], handler, **FAST)
    async with running(consumer):

        async def given_up() -> bool:
            rows = await _dead_letters(env, durable)
            return bool(rows) and rows[0]["gave_up_at"] is not None and "good" in calls

        await eventually(given_up)
        await eventually(lambda: _acked_all(env, durable))
        await _publish(
            env, ThingHappened(workspace_id=uuid4(), thing_id="later").model_dump_json().encode()
        )

        async def later_handled() -> bool:
            return "later" in calls and await _acked_all(env, durable)

        await eventually(later_handled)
    assert calls == {"bad": 3, "good": 1, "later": 1}  # never delivered to the handler again
    [row] = await _dead_letters(env, durable)
    assert (row["deliveries"], row["error"]) == (3, "RuntimeError: boom")
    assert (row["event_id"], row["workspace_id"]) == (bad.event_id, bad.workspace_id)
    assert row["first_failed_at"] < row["last_failed_at"] <= row["gave_up_at"]
    assert row["subject"] == env.event_type.subject
    assert ThingHappened.model_validate_json(row["payload"]) == bad
    processed = await env.pool.fetchval(
        "SELECT count(*) FROM processed_events WHERE consumer = $1 AND event_id = $2",
        durable,
        bad.event_id,
    )
    assert processed == 0


async def test_consumer_records_an_unanswered_last_delivery_without_running_it(env: Env) -> None:
    """A delivery nobody answered (its process died) is recorded on JetStream's spare one."""
    durable = f"c_{env.schema}"
    calls: list[str] = []

    async def handler(_: Conn, __: EventType[Any], ev: Event) -> None:
        calls.append(str(ev.event_id))

    consumer = EventConsumer(
        env.pool,
        env.bus,
        durable,
        [env.event_type],
        handler,
        max_attempts=1,
        backoff=(0.05,),
        ack_wait=1,
    )
    await env.bus.js.add_consumer(EVENTS_STREAM, consumer.config())
    event = ThingHappened(workspace_id=uuid4(), thing_id="killer")
    await _publish(env, event.model_dump_json().encode())
    dying = await env.bus.js.pull_subscribe_bind(durable=durable, stream=EVENTS_STREAM)
    [taken] = await dying.fetch(1, timeout=5)  # the only attempt; its process dies with it
    assert taken.metadata.num_delivered == 1
    await dying.unsubscribe()
    async with running(consumer):

        async def recorded() -> bool:
            rows = await _dead_letters(env, durable)
            return bool(rows) and await _acked_all(env, durable)

        await eventually(recorded)
    assert calls == []  # the spare delivery records; it never runs the handler
    [row] = await _dead_letters(env, durable)
    assert (row["deliveries"], row["event_id"]) == (2, event.event_id)
    assert row["error"].startswith("its last delivery went unanswered")


async def test_consumer_updates_an_older_durable_and_records_what_jetstream_dropped(
    env: Env,
) -> None:
    """A durable from before the cap gets it on start; what it already exceeded is recorded."""
    durable = f"c_{env.schema}"
    old = ConsumerConfig(
        durable_name=durable,
        name=durable,
        filter_subjects=[env.event_type.subject],
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=30,
        max_ack_pending=1000,
    )
    await env.bus.js.add_consumer(EVENTS_STREAM, old)
    poison = ThingHappened(workspace_id=uuid4(), thing_id="poison")
    await _publish(env, poison.model_dump_json().encode())
    looping = await env.bus.js.pull_subscribe_bind(durable=durable, stream=EVENTS_STREAM)
    for _ in range(3):  # the older version's endless retries
        [msg] = await looping.fetch(1, timeout=5)
        await msg.nak()
    await looping.unsubscribe()
    calls: list[str] = []

    async def handler(_: Conn, __: EventType[Any], ev: Event) -> None:
        calls.append(str(ev.event_id))

    consumer = EventConsumer(
        env.pool, env.bus, durable, [env.event_type], handler, max_attempts=2, backoff=(0.05,)
    )
    async with running(consumer):

        async def recorded() -> bool:
            return bool(await _dead_letters(env, durable))

        await eventually(recorded)
        info = await env.bus.js.consumer_info(EVENTS_STREAM, durable)
    assert (info.config.max_deliver, info.config.backoff) == (3, [30.0, 30.0])
    assert calls == []
    [row] = await _dead_letters(env, durable)
    assert (row["deliveries"], row["event_id"]) == (3, poison.event_id)
    assert row["gave_up_at"] is not None
