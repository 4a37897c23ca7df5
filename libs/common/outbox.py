"""Never lose an event: write it with the state change, relay it, consume it once.

* :func:`emit` inserts an event into the service's ``outbox`` inside the caller's
  transaction and wakes the relay with ``NOTIFY`` (delivered only on commit).
* :class:`OutboxRelay` claims pending rows (``FOR UPDATE SKIP LOCKED``, so replicas never
  publish the same row at once), publishes them concurrently to JetStream with
  ``Nats-Msg-Id`` = event id, and marks them sent in the same transaction. A relay that
  dies after publishing but before committing leaves the rows pending; the next relay
  publishes them again and JetStream drops the duplicates inside its window.
* :class:`EventConsumer` reads a durable consumer, runs the handler and records the event
  id in ``processed_events`` in one transaction, and acks only after that commit; an
  event id seen before is acked without running the handler again.

The relay and the consumer are system work across workspaces: they are the only queries
not filtered by ``workspace_id``; every row they touch still carries one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from libs.common.contracts.base import EVENTS_STREAM, EVENTS_SUBJECTS, Event, EventType
from libs.common.db import Conn

log = structlog.get_logger(__name__)

DUPLICATE_WINDOW_SECONDS = 600.0

INSERT_OUTBOX_SQL = """
INSERT INTO outbox (id, workspace_id, subject, payload) VALUES ($1, $2, $3, $4)
"""
NOTIFY_SQL = "SELECT pg_notify('tether_outbox_' || current_schema(), '')"
CLAIM_PENDING_SQL = """
SELECT id, subject, payload::text AS payload
FROM outbox WHERE sent_at IS NULL
ORDER BY created_at
LIMIT $1
FOR UPDATE SKIP LOCKED
"""
MARK_SENT_SQL = "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::uuid[])"
PURGE_SENT_SQL = "DELETE FROM outbox WHERE sent_at < now() - $1::interval"
INSERT_PROCESSED_SQL = """
INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING RETURNING event_id
"""


async def emit(conn: Conn, event_type: EventType[Any], event: Event) -> None:
    """Queue ``event`` in the caller's transaction; it is published only if that commits."""
    if not isinstance(event, event_type.model):
        raise TypeError(f"{event_type.subject} carries {event_type.model.__name__}")
    await conn.execute(
        INSERT_OUTBOX_SQL,
        event.event_id,
        event.workspace_id,
        event_type.subject,
        event.model_dump(mode="json"),
    )
    await conn.execute(NOTIFY_SQL)


async def ensure_stream(js: JetStreamContext, *, replicas: int = 1, patience: float = 60.0) -> None:
    """Create the events stream if it is missing (idempotent across replicas).

    While a NATS cluster recovers (a node just restarted, no meta leader yet) the
    JetStream API times out or answers 503: keep asking for up to ``patience`` seconds
    rather than failing the service's start.
    """
    config = StreamConfig(
        name=EVENTS_STREAM,
        subjects=[EVENTS_SUBJECTS],
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        max_age=7 * 24 * 3600.0,
        num_replicas=replicas,
    )
    deadline = asyncio.get_running_loop().time() + patience
    pause = 0.2
    while True:
        try:
            try:
                await js.stream_info(EVENTS_STREAM)
            except nats.js.errors.NotFoundError:
                try:
                    await js.add_stream(config)
                except nats.js.errors.BadRequestError:
                    await js.stream_info(EVENTS_STREAM)  # another replica created it first
            return
        except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("jetstream_not_ready", error=type(exc).__name__)
            await asyncio.sleep(pause)  # back off while the cluster elects a leader
            pause = min(pause * 2, 3.0)


class OutboxRelay:
    """Publish a schema's pending outbox rows to JetStream."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        js: JetStreamContext,
        schema: str,
        *,
        batch_size: int = 256,
        sweep_interval: float = 1.0,
    ) -> None:
        self._pool = pool
        self._js = js
        self._channel = f"tether_outbox_{schema}"
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval

    async def run(self) -> None:
        """Relay until cancelled: on every NOTIFY, and on a periodic sweep."""
        wake = asyncio.Event()

        def on_notify(*_: object) -> None:
            wake.set()

        sweeps = 0
        async with self._pool.acquire() as listener:
            await listener.add_listener(self._channel, on_notify)
            try:
                while True:
                    try:
                        while await self.relay_once() == self._batch_size:
                            pass
                        sweeps += 1
                        if sweeps % 3600 == 0:
                            await self._purge()
                    except (OSError, asyncpg.PostgresError, nats.errors.Error) as exc:
                        log.warning("outbox_relay_failed", error=str(exc))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self._sweep_interval)
                    wake.clear()
            finally:
                await listener.remove_listener(self._channel, on_notify)

    async def relay_once(self) -> int:
        """Publish one batch of pending events; return how many were sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(CLAIM_PENDING_SQL, self._batch_size)
            if not rows:
                return 0
            await self.publish(rows)
            await self.after_publish(rows)
            await conn.execute(MARK_SENT_SQL, [r["id"] for r in rows])
        return len(rows)

    async def publish(self, rows: Sequence[asyncpg.Record]) -> None:
        """Publish rows concurrently; any failure rolls the whole batch back to pending."""
        await asyncio.gather(
            *(
                self._js.publish(
                    r["subject"], r["payload"].encode(), headers={"Nats-Msg-Id": str(r["id"])}
                )
                for r in rows
            )
        )

    async def after_publish(self, rows: Sequence[asyncpg.Record]) -> None:
        """Run between publishing and marking sent; a seam for crash tests, a no-op here."""

    async def _purge(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(PURGE_SENT_SQL, "1 day")


EventHandler = Callable[[Conn, EventType[Any], Event], Awaitable[None]]
"""Handles one event (told which of the consumer's event types it is) in a transaction."""


class EventConsumer:
    """Run a handler once per event from a durable JetStream consumer."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        js: JetStreamContext,
        durable: str,
        events: Sequence[EventType[Any]],
        handler: EventHandler,
        *,
        batch_size: int = 64,
        ack_wait: float = 30.0,
    ) -> None:
        self._pool = pool
        self._js = js
        self._durable = durable
        self._types = {e.subject: e for e in events}
        self._handler = handler
        self._batch_size = batch_size
        self._ack_wait = ack_wait

    async def run(self) -> None:
        """Consume until cancelled."""
        await self._js.add_consumer(
            EVENTS_STREAM,
            ConsumerConfig(
                durable_name=self._durable,
                name=self._durable,
                filter_subjects=list(self._types),
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self._ack_wait,
                max_ack_pending=1000,
            ),
        )
        sub = await self._js.pull_subscribe_bind(durable=self._durable, stream=EVENTS_STREAM)
        try:
            while True:
                try:
                    msgs = await sub.fetch(self._batch_size, timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                except nats.errors.Error as exc:
                    log.warning("event_fetch_failed", consumer=self._durable, error=str(exc))
                    await asyncio.sleep(0.5)  # back off while NATS reconnects
                    continue
                for msg in msgs:
                    await self.handle(msg)
        finally:
            # A pull subscription left open makes the connection's drain wait for it.
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()

    async def handle(self, msg: Msg) -> None:
        """Handle one message: run the handler and record the id in one transaction, then ack."""
        kind = self._types.get(msg.subject)
        if kind is None:
            await msg.term()
            return
        event = kind.model.model_validate_json(msg.data)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                first = await conn.fetchval(INSERT_PROCESSED_SQL, self._durable, event.event_id)
                if first is not None:
                    await self._handler(conn, kind, event)
        except Exception:
            attempt = msg.metadata.num_delivered if msg.metadata else 1
            log.exception("event_handler_failed", consumer=self._durable, subject=msg.subject)
            await msg.nak(delay=min(30.0, 0.2 * 2**attempt) * (0.5 + random.random()))  # noqa: S311
            return
        await msg.ack()
