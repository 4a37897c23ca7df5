"""Never lose an event: write it with the state change, relay it, consume it once.

* :func:`emit` inserts an event into the service's ``outbox`` inside the caller's
  transaction and wakes the relay with ``NOTIFY`` (delivered only on commit).
* :class:`OutboxRelay` claims pending rows (``FOR UPDATE SKIP LOCKED``, so replicas never
  publish the same row at once), publishes them concurrently to JetStream with
  ``Nats-Msg-Id`` = event id, and marks them sent in the same transaction. A relay that
  dies after publishing but before committing leaves the rows pending; the next relay
  publishes them again and JetStream drops the duplicates inside its window.
* :class:`EventConsumer` reads a durable consumer, runs the handler and records the event
  id in ``processed_events`` in one transaction, and acks only after that commit.

What a consumer guarantees, per event:

* **At least once to the handler.** A message is acked only after the handler's
  transaction committed; until then JetStream delivers it again (after a failure, after
  a retry delay; after a crash, when the ack wait runs out).
* **Never handled twice.** The handler's writes commit together with the event id; an
  id recorded before is acked without running the handler again.
* **Given up after N attempts, visibly.** A message that can never be handled (it does
  not parse, or its subject has no handler) is terminated at once; a handler that keeps
  failing is tried ``max_attempts`` times, ``backoff`` apart, then terminated. Either way
  the message first becomes a row in ``dead_letters`` (``libs/common/dead_letters.py``)
  with its payload and the error, which ``tether dead-letters`` lists. A failing message
  waits out its retry delays aside: it never holds up the ones behind it.
* **Nothing dropped silently.** JetStream's own cap (``max_deliver``) is one delivery
  more than the handler gets: that last delivery, which only comes when nobody answered
  the last attempt (its process died or the handler hung) or recording the dead letter
  failed, records the dead letter without running the handler. Should JetStream still
  give up on a message (that delivery went unanswered too, or a durable made by an older
  version already held it past the new cap), its max-deliveries advisory is turned into
  a dead letter. Only when no replica hears that advisory (core NATS, at most once) is a
  given-up message in no table; it is still in the stream for the stream's max age.

The relay, the consumer and dead letters are system work across workspaces: they are the
only queries not filtered by ``workspace_id``; every event row they touch still carries one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from pydantic import ValidationError

from libs.common import tracing
from libs.common.backoff import scheduled_delay, spread
from libs.common.bus import Bus
from libs.common.contracts.base import (
    EVENTS_STREAM,
    EVENTS_SUBJECTS,
    INBOUND_STREAM,
    INBOUND_SUBJECTS,
    Event,
    EventType,
)
from libs.common.db import Conn
from libs.common.dead_letters import Failure, describe, forget_failure, record_failure
from libs.common.metrics import ServiceMetrics

log = structlog.get_logger(__name__)

DUPLICATE_WINDOW_SECONDS = 600.0

INSERT_OUTBOX_SQL = """
INSERT INTO outbox (id, workspace_id, subject, payload, trace_context)
VALUES ($1, $2, $3, $4, $5)
"""
NOTIFY_SQL = "SELECT pg_notify('tether_outbox_' || current_schema(), '')"
# One event: the row and the relay's wake-up in one round trip (NOTIFY is sent on commit).
EMIT_SQL = """
WITH queued AS (
    INSERT INTO outbox (id, workspace_id, subject, payload, trace_context)
    VALUES ($1, $2, $3, $4, $5)
    RETURNING 1)
SELECT pg_notify('tether_outbox_' || current_schema(), '') FROM queued
"""
CLAIM_PENDING_SQL = """
SELECT id, subject, payload::text AS payload, trace_context
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
        EMIT_SQL,
        event.event_id,
        event.workspace_id,
        event_type.subject,
        event.model_dump(mode="json"),
        tracing.current_traceparent(),
    )


async def emit_many(conn: Conn, events: Sequence[tuple[EventType[Any], Event]]) -> int:
    """Queue many events in the caller's transaction (one pipelined insert, one NOTIFY)."""
    rows = []
    traceparent = tracing.current_traceparent()
    for event_type, event in events:
        if not isinstance(event, event_type.model):
            raise TypeError(f"{event_type.subject} carries {event_type.model.__name__}")
        rows.append(
            (
                event.event_id,
                event.workspace_id,
                event_type.subject,
                event.model_dump(mode="json"),
                traceparent,
            )
        )
    if rows:
        await conn.executemany(INSERT_OUTBOX_SQL, rows)
        await conn.execute(NOTIFY_SQL)
    return len(rows)


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
    await _ensure(js, config, patience)


async def ensure_inbound_stream(
    js: JetStreamContext,
    *,
    duplicate_window: float,
    max_age: float,
    replicas: int = 1,
    patience: float = 60.0,
) -> None:
    """Create the inbound work queue if it is missing (idempotent across replicas).

    ``TETHER_INBOUND`` holds what a service accepted from outside (an app's webhook
    delivery) until its consumer has handled it: file storage, work-queue retention (a
    message is gone once acked), at most ``max_age`` seconds old. A publish repeating a
    ``Nats-Msg-Id`` within ``duplicate_window`` seconds is acknowledged as a duplicate and
    not stored again.
    """
    config = StreamConfig(
        name=INBOUND_STREAM,
        subjects=[INBOUND_SUBJECTS],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=duplicate_window,
        max_age=max_age,
        num_replicas=replicas,
    )
    await _ensure(js, config, patience)


async def _ensure(js: JetStreamContext, config: StreamConfig, patience: float) -> None:
    """Create ``config``'s stream unless it exists, waiting out a recovering cluster."""
    assert config.name is not None
    deadline = asyncio.get_running_loop().time() + patience
    pause = 0.2
    while True:
        try:
            try:
                await js.stream_info(config.name)
            except nats.js.errors.NotFoundError:
                try:
                    await js.add_stream(config)
                except nats.js.errors.BadRequestError:
                    await js.stream_info(config.name)  # another replica created it first
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
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._pool = pool
        self._js = js
        self._channel = f"tether_outbox_{schema}"
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval
        self._metrics = metrics

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
                    # Not wait_for: on 3.11 it swallows a cancel that lands as the NOTIFY
                    # does, and the relay of a stopping service would run on forever.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._sweep_interval):
                            await wake.wait()
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
        if self._metrics is not None:
            self._metrics.events_published(len(rows))
        return len(rows)

    async def publish(self, rows: Sequence[asyncpg.Record]) -> None:
        """Publish rows concurrently; any failure rolls the whole batch back to pending."""
        await asyncio.gather(
            *(
                self._js.publish(
                    r["subject"],
                    r["payload"].encode(),
                    headers=message_headers(str(r["id"]), r["trace_context"]),
                )
                for r in rows
            )
        )

    async def after_publish(self, rows: Sequence[asyncpg.Record]) -> None:
        """Run between publishing and marking sent; a seam for crash tests, a no-op here."""

    async def _purge(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(PURGE_SENT_SQL, "1 day")


def message_headers(msg_id: str, traceparent: str | None) -> dict[str, str]:
    """Return a JetStream message's headers: its id (JetStream dedupes by it) and its trace."""
    headers = {"Nats-Msg-Id": msg_id}
    if traceparent:
        headers[tracing.TRACEPARENT] = traceparent
    return headers


EventHandler = Callable[[Conn, EventType[Any], Event], Awaitable[None]]
"""Handles one event (told which of the consumer's event types it is) in a transaction."""

MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"


class EventConsumer:
    """Run a handler once per event from a durable JetStream consumer; give up visibly."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        bus: Bus,
        durable: str,
        events: Sequence[EventType[Any]],
        handler: EventHandler,
        *,
        max_attempts: int,
        backoff: Sequence[float],
        batch_size: int = 64,
        ack_wait: float = 30.0,
        metrics: ServiceMetrics | None = None,
        stream: str = EVENTS_STREAM,
    ) -> None:
        """Consume ``events`` as ``durable`` (services pass ``TETHER_EVENT_*`` settings).

        The handler is tried at most ``max_attempts`` times per event; ``backoff`` gives the
        seconds before the 2nd, 3rd, … attempt (the last value repeats). With ``metrics``,
        each settled delivery is counted and the durable's backlog sampled. ``stream`` is the
        stream the durable reads (``TETHER_EVENTS`` unless a service's own work queue).
        """
        if max_attempts < 1 or not backoff:
            raise ValueError("a consumer needs at least one attempt and one backoff delay")
        self._pool = pool
        self._bus = bus
        self._js = bus.js
        self._durable = durable
        self._stream = stream  # TETHER_EVENTS, or a work queue such as TETHER_INBOUND
        self._types = {e.subject: e for e in events}
        self._handler = handler
        self._batch_size = batch_size
        self._ack_wait = ack_wait
        self._max_attempts = max_attempts
        self._backoff = tuple(backoff)
        self._metrics = metrics
        if metrics is not None:
            metrics.watch_consumer(durable, stream)

    def config(self) -> ConsumerConfig:
        """Return the durable consumer's configuration, applied (created or updated) on start."""
        return ConsumerConfig(
            durable_name=self._durable,
            name=self._durable,
            filter_subjects=list(self._types),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait,
            # One delivery more than the handler gets: the last records the dead letter.
            max_deliver=self._max_attempts + 1,
            # With a backoff JetStream waits backoff[n-1] (not ack_wait) for an answer to
            # the nth delivery: never less than the ack wait, longer as attempts mount.
            backoff=[max(self._ack_wait, self._delay(n)) for n in range(1, self._max_attempts + 1)],
            max_ack_pending=1000,
        )

    def _delay(self, attempt: int) -> float:
        """Return the seconds between a failed ``attempt`` and the next one."""
        return scheduled_delay(attempt, self._backoff)

    async def run(self) -> None:
        """Consume until cancelled."""
        # Listen before applying the configuration: lowering an older durable's cap makes
        # JetStream give up on messages that already had more deliveries than that.
        advisories = await self._bus.nc.subscribe(
            f"{MAX_DELIVERIES_ADVISORY}.{self._stream}.{self._durable}",
            queue=self._durable,
            cb=self._on_max_deliveries,
        )
        try:
            await self._js.add_consumer(self._stream, self.config())
            sub = await self._js.pull_subscribe_bind(durable=self._durable, stream=self._stream)
            try:
                while True:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        # nats-py's fetch (wait_for) swallows a stop that lands as a batch does
                        raise asyncio.CancelledError
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
        finally:
            with contextlib.suppress(nats.errors.Error):
                await advisories.unsubscribe()

    async def handle(self, msg: Msg) -> None:
        """Handle one message: run the handler and record the id in one transaction, then ack.

        Everything that can go wrong is decided here, inside the guard: an unreadable
        message is given up at once, a failed attempt is retried after its delay, the last
        failed attempt (or a delivery beyond the attempts) is given up.
        """
        meta = msg.metadata
        delivery, seq = meta.num_delivered, meta.sequence.stream
        kind = self._types.get(msg.subject)
        if kind is None:
            await self._give_up(msg, f"no handler for {msg.subject}")
            return
        try:
            event = kind.model.model_validate_json(msg.data)
        except ValidationError as exc:
            await self._give_up(msg, describe(exc))  # it will never parse: no retries
            return
        if delivery > self._max_attempts:
            await self._give_up(msg, None)  # nobody answered the last attempt
            return
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                first = await conn.fetchval(INSERT_PROCESSED_SQL, self._durable, event.event_id)
                if first is not None:
                    with tracing.continued(
                        f"event {msg.subject}",
                        (msg.headers or {}).get(tracing.TRACEPARENT),
                        attributes={"tether.consumer": self._durable},
                    ):
                        await self._handler(conn, kind, event)
                if delivery > 1:
                    await forget_failure(conn, self._durable, seq)
        except Exception as exc:
            log.exception(
                "event_handler_failed",
                consumer=self._durable,
                subject=msg.subject,
                event_id=str(event.event_id),
                delivery=delivery,
            )
            if delivery >= self._max_attempts:
                await self._give_up(msg, describe(exc))
            else:
                await self._retry(msg, describe(exc))
            return
        await msg.ack()
        self._count("ok" if first is not None else "duplicate")

    async def _retry(self, msg: Msg, error: str) -> None:
        """Note the failure (best effort: the retry matters more), then ask for a redelivery."""
        await self._record(self._failure(msg, error), gave_up=False)
        delay = self._delay(msg.metadata.num_delivered)
        self._count("retry")
        await msg.nak(delay=spread(delay))

    async def _give_up(self, msg: Msg, error: str | None) -> None:
        """Record the message as a dead letter, then terminate it (never delivered again)."""
        if await self._record(self._failure(msg, error), gave_up=True):
            self._count("dead_lettered")
            await msg.term()
        else:  # it must come back: the spare delivery (or the advisory) records it
            await msg.nak(delay=self._delay(msg.metadata.num_delivered))

    async def _on_max_deliveries(self, advisory: Msg) -> None:
        """Record a message JetStream itself gave up on (see the module docstring)."""
        try:
            notice = json.loads(advisory.data)
            seq, deliveries = int(notice["stream_seq"]), int(notice["deliveries"])
        except (ValueError, KeyError, TypeError):
            log.warning("advisory_unreadable", consumer=self._durable)
            return
        subject, data = "", b""
        with contextlib.suppress(nats.js.errors.NotFoundError):  # gone past the stream's max age
            stored = await self._js.get_msg(self._stream, seq)
            subject, data = stored.subject or "", stored.data or b""
        if await self._record(
            Failure.of(self._durable, seq, subject, data, deliveries, None, self._types),
            gave_up=True,
        ):
            self._count("dead_lettered")

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.event_handled(self._durable, outcome)

    def _failure(self, msg: Msg, error: str | None) -> Failure:
        meta = msg.metadata
        return Failure.of(
            self._durable,
            meta.sequence.stream,
            msg.subject,
            msg.data,
            meta.num_delivered,
            error,
            self._types,
        )

    async def _record(self, failure: Failure, *, gave_up: bool) -> bool:
        """Write the message's dead-letters row; False (and logged) when that failed."""
        try:
            async with self._pool.acquire() as conn:
                await record_failure(conn, failure, gave_up=gave_up)
        except Exception:  # the database may be what failed the handler
            log.exception(
                "dead_letter_unrecorded", consumer=self._durable, stream_seq=failure.stream_seq
            )
            return False
        if gave_up:
            log.error(
                "event_given_up",
                consumer=self._durable,
                subject=failure.subject,
                stream_seq=failure.stream_seq,
                deliveries=failure.deliveries,
                error=failure.error,
            )
        return True
