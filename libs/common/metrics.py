"""Count and sample Prometheus metrics: one registry per app, gauges read at scrape time.

What every app's metrics guarantee:

* **One registry per app**, never prometheus-client's global one: several services in one
  process (the tests) never share or collide. :class:`Metrics` is the registry and what
  every process reports (build, NATS, the requests its ``nats.micro`` handlers answer);
  :class:`ServiceMetrics` adds what every back-end service reports (outbox, events,
  consumers, dead letters, jobs, its pool); a service registers its own group (e.g.
  ``services/flows/metrics.py``) on the same registry. Each lives under a typed app key.
* **Bounded labels.** Label values come from closed sets: route templates, operation
  subjects, queue names, durable consumer names, outcomes, states and ranks. Never a
  workspace, customer, connection or run id.
* **Cheap to count.** An observation is a dict lookup and an increment: labelled
  children are cached per label tuple, so nothing per request builds label sets.
* **Sampled gauges are read at scrape time**, not by background loops: every sampler runs
  concurrently, each within ``sample_timeout`` seconds. One that fails or overruns leaves
  its gauges as they were and logs ``metrics_sample_failed``; a scrape never fails for it.
  The samplers' queries are system work across workspaces: aggregate counts only, no id
  leaves the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
import nats.js.errors
import structlog
from aiohttp import web
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from libs.common.contracts.base import EVENTS_STREAM
from libs.common.system_status import job_queues, lag_of, outbox_backlog

log = structlog.get_logger(__name__)

Sampler = Callable[[], Awaitable[None]]
"""Reads something (a table, the pool, JetStream) and sets gauges; run at each scrape."""

SAMPLE_TIMEOUT = 2.0
"""Seconds one sampler may take before the scrape goes on without it."""


class Labelled:
    """A labelled metric whose children are cached per label values (looked up once each)."""

    def __init__(self, metric: Counter | Gauge | Histogram) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def child(self, *values: str) -> Any:
        """Return the child of ``values`` (created once)."""
        found = self._children.get(values)
        if found is None:
            found = self._children[values] = self._metric.labels(*values)
        return found


class Metrics:
    """One app's registry, its samplers, and what every process reports."""

    def __init__(self, release: str, *, sample_timeout: float = SAMPLE_TIMEOUT) -> None:
        self.registry = CollectorRegistry()
        self.sample_timeout = sample_timeout
        self._samplers: dict[str, Sampler] = {}
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry
        build = Gauge(
            "tether_build_info", "The running release (always 1)", ["version"], registry=r
        )
        build.labels(release).set(1)
        self.nats_reconnects = Counter(
            "tether_nats_reconnects_total", "Reconnections to NATS", registry=r
        )
        self.nats_connected = Gauge(
            "tether_nats_connected", "1 while connected to NATS, else 0", registry=r
        )
        self._nats_requests = Labelled(
            Counter(
                "tether_nats_requests_total",
                "Requests this service's NATS handlers answered, by operation and status",
                ["operation", "status"],
                registry=r,
            )
        )
        self._nats_seconds = Labelled(
            Histogram(
                "tether_nats_request_duration_seconds",
                "Seconds this service's NATS handlers took, by operation",
                ["operation"],
                registry=r,
            )
        )

    # --- counting -----------------------------------------------------------------------

    def observe_nats(self, operation: str, status: int, seconds: float) -> None:
        """Count one answered request of ``operation`` (its subject) and time it."""
        self._nats_requests.child(operation, str(status)).inc()
        self._nats_seconds.child(operation).observe(seconds)

    def nats_reconnected(self) -> None:
        """Count one reconnection to NATS (the connection's reconnect callback)."""
        self.nats_reconnects.inc()

    # --- sampling -----------------------------------------------------------------------

    def add_sampler(self, name: str, sampler: Sampler) -> None:
        """Run ``sampler`` at every scrape (a second one of the same name replaces it)."""
        self._samplers[name] = sampler

    def watch_nats(self, nc: NatsClient) -> None:
        """Report whether ``nc`` is connected."""

        async def sample() -> None:
            self.nats_connected.set(1 if nc.is_connected else 0)

        self.add_sampler("nats", sample)

    async def sample(self) -> None:
        """Run every sampler at once, each bounded by ``sample_timeout``; never raise."""
        await asyncio.gather(*(self._run(n, s) for n, s in list(self._samplers.items())))

    async def _run(self, name: str, sampler: Sampler) -> None:
        try:
            async with asyncio.timeout(self.sample_timeout):
                await sampler()
        except Exception as exc:  # a sampler never fails the scrape: its gauges stay as they were
            log.warning("metrics_sample_failed", sampler=name, error=type(exc).__name__)

    async def exposition(self) -> bytes:
        """Sample, then return the registry in Prometheus' text format."""
        await self.sample()
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)


async def metrics_handler(request: web.Request) -> web.Response:
    """Serve ``GET /metrics``: the app's metrics in Prometheus' text format."""
    body = await request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def set_by_label(gauge: Labelled, counts: dict[str, float], known: Iterable[str]) -> None:
    """Set a gauge per label value: ``counts``, and 0 for every ``known`` value not in it."""
    for value in {*known, *counts}:
        gauge.child(value).set(counts.get(value, 0))


# --- every back-end service ------------------------------------------------------------

# System work across workspaces (aggregates only): the dead letters given up on. The
# outbox backlog and the job queues are read by the same queries as ``GET /system/status``.
DEAD_LETTERS_GIVEN_UP_SQL = "SELECT count(*) FROM dead_letters WHERE gave_up_at IS NOT NULL"


def pool_waiting(pool: asyncpg.Pool[Any]) -> int:
    """Return how many acquirers wait for one of ``pool``'s connections.

    asyncpg has no public count: this reads the waiters of the pool's holder queue (an
    ``asyncio.Queue``), and answers 0 should that layout ever change.
    """
    queue = getattr(pool, "_queue", None)
    getters = getattr(queue, "_getters", None) or ()
    return sum(1 for waiter in getters if not waiter.done())


class ServiceMetrics:
    """What every back-end service reports: events in and out, jobs, dead letters, its pool."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        r = metrics.registry
        self.outbox_pending = Gauge(
            "tether_outbox_pending_rows", "Outbox rows not yet published", registry=r
        )
        self.outbox_lag = Gauge(
            "tether_outbox_publish_lag_seconds",
            "Age of the oldest unpublished outbox row (0 when none)",
            registry=r,
        )
        self._published = Counter(
            "tether_events_published_total", "Events the outbox relay published", registry=r
        )
        self._consumer_pending = Labelled(
            Gauge(
                "tether_consumer_pending_messages",
                "Messages not yet delivered to a durable consumer of this service",
                ["consumer"],
                registry=r,
            )
        )
        self._consumer_ack_pending = Labelled(
            Gauge(
                "tether_consumer_ack_pending_messages",
                "Messages delivered to a durable consumer and not yet acknowledged",
                ["consumer"],
                registry=r,
            )
        )
        self._consumer_redelivered = Labelled(
            Gauge(
                "tether_consumer_redelivered_messages",
                "Messages a durable consumer has had delivered more than once",
                ["consumer"],
                registry=r,
            )
        )
        self._handled = Labelled(
            Counter(
                "tether_events_handled_total",
                "Events a consumer handled, by outcome (ok|duplicate|retry|dead_lettered)",
                ["consumer", "outcome"],
                registry=r,
            )
        )
        self.dead_letters = Gauge(
            "tether_dead_letters", "Dead letters given up on (rows in dead_letters)", registry=r
        )
        self._jobs_pending = Labelled(
            Gauge(
                "tether_jobs_pending",
                "Jobs due (pending, not-before passed) per queue",
                ["queue"],
                registry=r,
            )
        )
        self._jobs_finished = Labelled(
            Counter(
                "tether_jobs_finished_total",
                "Job attempts finished, by queue and outcome (succeeded|retry|failed|lease_lost)",
                ["queue", "outcome"],
                registry=r,
            )
        )
        self._pool = Labelled(
            Gauge(
                "tether_db_pool_connections",
                "Connections of the database pool (state: in_use|idle|max)",
                ["state"],
                registry=r,
            )
        )
        self.pool_waiting = Gauge(
            "tether_db_pool_waiting", "Acquirers waiting for a pool connection", registry=r
        )
        self._consumers: set[tuple[str, str]] = set()  # (stream, durable)
        self._queues: set[str] = set()

    # --- counting -----------------------------------------------------------------------

    def events_published(self, count: int) -> None:
        """Count events the relay published (after the batch committed as sent)."""
        self._published.inc(count)

    def event_handled(self, consumer: str, outcome: str) -> None:
        """Count one delivery a consumer settled: ok, duplicate, retry or dead_lettered."""
        self._handled.child(consumer, outcome).inc()

    def job_finished(self, queue: str, outcome: str) -> None:
        """Count one job attempt's end: succeeded, retry, failed or lease_lost."""
        self._jobs_finished.child(queue, outcome).inc()

    def watch_consumer(self, durable: str, stream: str = EVENTS_STREAM) -> None:
        """Report the JetStream backlog of ``durable`` on ``stream`` (a consumer this service owns)."""
        self._consumers.add((stream, durable))

    def watch_queue(self, queue: str) -> None:
        """Report ``queue``'s pending jobs (0 when none, rather than no series)."""
        self._queues.add(queue)

    # --- sampling -----------------------------------------------------------------------

    def watch(self, pool: asyncpg.Pool[Any], js: JetStreamContext) -> None:
        """Sample the service's tables and pool through ``pool``, its consumers through ``js``."""

        async def tables() -> None:
            async with pool.acquire() as conn:
                outbox = await outbox_backlog(conn)
                queues = await job_queues(conn)
                given_up = await conn.fetchval(DEAD_LETTERS_GIVEN_UP_SQL)
            self.outbox_pending.set(outbox.pending)
            self.outbox_lag.set(outbox.lag_seconds)
            self.dead_letters.set(given_up)
            set_by_label(self._jobs_pending, {q.queue: q.due for q in queues}, self._queues)

        async def connections() -> None:
            size, idle = pool.get_size(), pool.get_idle_size()
            self._pool.child("in_use").set(size - idle)
            self._pool.child("idle").set(idle)
            self._pool.child("max").set(pool.get_max_size())
            self.pool_waiting.set(pool_waiting(pool))

        async def consumers() -> None:
            await asyncio.gather(
                *(self._sample_consumer(js, s, d) for s, d in sorted(self._consumers))
            )

        self._metrics.add_sampler("tables", tables)
        self._metrics.add_sampler("pool", connections)
        self._metrics.add_sampler("consumers", consumers)

    async def _sample_consumer(self, js: JetStreamContext, stream: str, durable: str) -> None:
        try:
            info = await js.consumer_info(stream, durable)
        except nats.js.errors.NotFoundError:
            return  # not created yet: its consumer creates it when it starts
        lag = lag_of(info)
        self._consumer_pending.child(durable).set(lag.pending)
        self._consumer_ack_pending.child(durable).set(lag.ack_pending)
        self._consumer_redelivered.child(durable).set(lag.redelivered)


SERVICE_METRICS = web.AppKey("service_metrics", ServiceMetrics)
