"""Run one service process: cleanup contexts for every resource, health routes, signals.

A service's ``create_app(settings)`` assembles an aiohttp application from these cleanup
contexts (no I/O happens until the runner starts it). Contexts open in the order they
are added and close in reverse, so a service that adds ``bus``, ``database``,
``outbox_relay``, its workers and then ``serve`` stops taking requests first, lets
in-flight ones finish, cancels its workers, and closes the pool and NATS last.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Self, TypeVar

import asyncpg
import structlog
from aiohttp import web
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from libs.common.bus import Bus, Endpoint, Handler, ServiceHost, connect, endpoint
from libs.common.config import (
    BusSettings,
    CryptoSettings,
    DatabaseSettings,
    LogSettings,
    RuntimeSettings,
)
from libs.common.contracts.base import EventType, EvtT, PingReply, PingRequest, ping_operation
from libs.common.contracts.system import (
    ServiceStatus,
    SystemStatusRequest,
    system_status_operation,
)
from libs.common.crypto import Keyring
from libs.common.db import create_pool, migrate
from libs.common.dead_letters import dead_letters_endpoint
from libs.common.metrics import (
    METRICS,
    SERVICE_METRICS,
    Metrics,
    ServiceMetrics,
    metrics_handler,
)
from libs.common.outbox import OutboxRelay, ensure_stream
from libs.common.reseal import SealedColumn, keys_endpoints
from libs.common.system_status import StatusReporter

log = structlog.get_logger(__name__)

POOL = web.AppKey("pool", asyncpg.Pool)
BUS = web.AppKey("bus", Bus)
HOST = web.AppKey("host", ServiceHost)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def tether_version() -> str:
    """Return the installed package version."""
    try:
        return version("tether")
    except PackageNotFoundError:
        return "0.0.0"


@dataclass(frozen=True)
class ServiceSettings:
    """Everything a back-end service process reads from its environment."""

    db: DatabaseSettings
    bus: BusSettings
    log: LogSettings = field(default_factory=LogSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)

    @classmethod
    def from_env(cls) -> ServiceSettings:
        """Read every concern from ``TETHER_*`` variables."""
        return cls(db=DatabaseSettings(), bus=BusSettings())


@dataclass(frozen=True)
class SealedServiceSettings:
    """Base of the settings of a service that seals columns: the common ones and master keys.

    A service's settings subclass this and add ``options`` (its :class:`ServiceOptions`
    subclass, with a default factory), so ``from_env`` reads everything.
    """

    service: ServiceSettings
    crypto: CryptoSettings

    @classmethod
    def from_env(cls) -> Self:
        """Read every concern from the environment."""
        return cls(service=ServiceSettings.from_env(), crypto=CryptoSettings())

    def keyring(self) -> Keyring:
        """Return the keyring of the configured master keys."""
        return Keyring.from_setting(self.crypto.master_keys.get_secret_value())


def bus_context(settings: BusSettings, name: str, *, events: bool = True) -> CleanupContext:
    """Connect to NATS (and make sure the events stream exists) for the app's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        metrics = app.get(METRICS)
        nc = await connect(
            settings.nats_url, name, on_reconnect=metrics.nats_reconnected if metrics else None
        )
        if metrics is not None:
            metrics.watch_nats(nc)
        bus = Bus(nc, timeout=settings.call_timeout)
        if events:
            await ensure_stream(bus.js, replicas=settings.events_replicas)
        app[BUS] = bus
        yield
        try:
            await asyncio.wait_for(nc.drain(), timeout=5)
        except Exception:  # a drain that cannot finish must not hold the process
            with contextlib.suppress(Exception):
                await nc.close()

    return ctx


def database_context(settings: DatabaseSettings, schema: str, migrations: Path) -> CleanupContext:
    """Migrate the service's schema, then open its pool for the app's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await migrate(settings.database_url, schema, migrations)
        pool = await create_pool(
            settings.database_url,
            schema,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )
        app[POOL] = pool
        yield
        await pool.close()

    return ctx


Work = Callable[[], Awaitable[None]]

T = TypeVar("T")


async def uninterrupted(unit: Awaitable[T], *, grace: float) -> T:
    """Run one unit of a background loop's work to its end, even when the loop is cancelled.

    A graceful stop cancels background tasks (see :func:`background_tasks`). A loop whose
    unit of work calls out and then commits what it was told (a token renewal: the provider
    answers with a rotated refresh token, the commit keeps it) must not be cut between the
    two, or the answer is lost. Wrapped in this, a cancellation waits up to ``grace``
    seconds for the unit to finish and commit, then goes on, so the loop stops *between*
    units; only a unit still running after the grace is cancelled as well.
    """
    task = asyncio.ensure_future(unit)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            await asyncio.wait({task}, timeout=grace)
        finally:
            if not task.done():
                task.cancel()
                log.warning("unit_of_work_cancelled", grace=grace)
            await asyncio.gather(task, return_exceptions=True)  # retrieved, never re-raised
        raise


def background_tasks(jobs: Callable[[web.Application], dict[str, Work]]) -> CleanupContext:
    """Run each named job as a task for the app's lifetime; cancel and await them on exit.

    A job that crashes is logged and restarted after a pause rather than left dead.
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def guarded(name: str, run: Work) -> None:
            while True:
                try:
                    await run()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("background_task_crashed", task=name)
                    await asyncio.sleep(1.0)  # restart after a pause rather than spin

        tasks = [
            asyncio.create_task(guarded(name, run), name=name) for name, run in jobs(app).items()
        ]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ctx


def background(name: str, run: Callable[[web.Application], Awaitable[None]]) -> CleanupContext:
    """Run ``run(app)`` as one background task (see :func:`background_tasks`)."""
    return background_tasks(lambda app: {name: lambda: run(app)})


def outbox_relay_context(schema: str, settings: RuntimeSettings) -> CleanupContext:
    """Relay the service's outbox to JetStream in the background."""

    async def run(app: web.Application) -> None:
        relay = OutboxRelay(
            app[POOL],
            app[BUS].js,
            schema,
            sweep_interval=settings.outbox_sweep_interval,
            metrics=app.get(SERVICE_METRICS),
        )
        await relay.run()

    return background(f"{schema}-outbox-relay", run)


def serve_context(
    name: str,
    endpoints: Callable[[web.Application], Sequence[Endpoint[Any, Any]]],
    settings: RuntimeSettings,
) -> CleanupContext:
    """Serve the service's endpoints over NATS; on exit stop and drain within the grace period."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        metrics = app.get(METRICS)
        host = ServiceHost(
            app[BUS].nc,
            name,
            tether_version(),
            endpoints(app),
            observe=metrics.observe_nats if metrics is not None else None,
        )
        await host.start()
        app[HOST] = host
        log.info("service_started", instance=host.instance_id)
        yield
        await host.stop(settings.shutdown_grace)
        log.info("service_stopped", instance=host.instance_id)

    return ctx


def ping_endpoint(name: str, app: web.Application) -> Endpoint[PingRequest, PingReply]:
    """Return the service's ``tether.<name>.system.ping`` endpoint."""

    release = tether_version()  # read once: it is package metadata on disk

    async def ping(_: PingRequest) -> PingReply:
        instance = app[HOST].instance_id if HOST in app else ""
        return PingReply(service=name, instance=instance, version=release, time=datetime.now(UTC))

    return endpoint(ping_operation(name), ping)


def status_reporter(name: str, app: web.Application) -> StatusReporter:
    """Return the reporter of the service's ``system.status`` (see :mod:`libs.common.system_status`)."""
    return StatusReporter(
        name,
        app[POOL],
        app[BUS],
        tether_version(),
        lambda: app[HOST].instance_id if HOST in app else "",
    )


def system_endpoints(
    name: str,
    app: web.Application,
    *,
    status: Handler[SystemStatusRequest, ServiceStatus],
    keyring: Keyring | None = None,
    sealed: Sequence[SealedColumn] = (),
) -> list[Endpoint[Any, Any]]:
    """Return the operations every service answers: ping, status, dead letters (and keys).

    ``status`` is the service's own ``system.status`` handler (``services/<name>/system.py``,
    built on :func:`status_reporter`). A service that seals ``sealed`` columns with
    ``keyring`` also answers key status and reseal (see :mod:`libs.common.reseal`).
    """
    system: list[Endpoint[Any, Any]] = [
        ping_endpoint(name, app),
        endpoint(system_status_operation(name), status),
        dead_letters_endpoint(name, app[POOL]),
    ]
    if keyring is not None:
        system.extend(keys_endpoints(name, app[POOL], keyring, sealed))
    return system


async def subscribe_events(
    bus: Bus, event_type: EventType[EvtT], on_event: Callable[[EvtT], None]
) -> Subscription:
    """Hear every ``event_type`` event in this replica (cache invalidation; at most once).

    Events are published to JetStream, whose subjects plain subscribers hear too; a missed
    one only means a cache entry lives until its TTL, so no durable consumer is needed.
    """

    async def handle(msg: Msg) -> None:
        try:
            on_event(event_type.model.model_validate_json(msg.data))
        except ValidationError:
            log.warning("event_unreadable", subject=msg.subject)

    return await bus.nc.subscribe(event_type.subject, cb=handle)


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    app = request.app
    ready = (
        BUS in app and app[BUS].nc.is_connected and (POOL not in app or not app[POOL].is_closing())
    )
    return web.json_response({"ready": ready}, status=200 if ready else 503)


def add_health_routes(app: web.Application) -> None:
    """Add ``GET /healthz`` (alive), ``GET /readyz`` (dependencies up) and ``GET /metrics``.

    ``/metrics`` (Prometheus text) is there when the app has :data:`~libs.common.metrics.METRICS`.
    """
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    if METRICS in app:
        app.router.add_get("/metrics", metrics_handler)


async def service_metrics_context(app: web.Application) -> AsyncIterator[None]:
    """Sample the service's tables, pool and consumers at each scrape once the pool is open."""
    app[SERVICE_METRICS].watch(app[POOL], app[BUS].js)
    yield


async def serve_until_signalled(
    app: web.Application, host: str, port: int | None, stop_deadline: float = 20.0
) -> None:
    """Start ``app`` (and its HTTP port when given); stop cleanly on SIGTERM or SIGINT."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        if port is not None:
            await web.TCPSite(runner, host, port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("process_ready", port=port)
        await stop.wait()
        log.info("process_stopping")
    finally:
        # With NATS or PostgreSQL already gone, draining can wait forever: bound it. Not
        # wait_for: it waits for the cancelled cleanup to finish, which a task that outlives
        # its cancel (a drain retrying a dead server) never does. Past the deadline the
        # process exits as kill -9 would leave it, which every piece of background work
        # survives by design (leases, the outbox, durable consumers).
        cleanup = asyncio.ensure_future(runner.cleanup())
        done, _ = await asyncio.wait({cleanup}, timeout=stop_deadline)
        if not done:
            log.warning("shutdown_timed_out", seconds=stop_deadline)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_SHUTDOWN_TIMED_OUT)
        cleanup.result()


EXIT_SHUTDOWN_TIMED_OUT = 75
"""The exit status of a process whose shutdown overran its deadline (EX_TEMPFAIL)."""


def run(main: Coroutine[Any, Any, None], *, use_uvloop: bool = True) -> None:
    """Run ``main`` on uvloop when installed and wanted, else on asyncio's loop."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def run_service(app: web.Application, settings: ServiceSettings) -> None:
    """Run a back-end service until signalled."""
    run(
        serve_until_signalled(
            app,
            settings.runtime.health_host,
            settings.runtime.health_port,
            stop_deadline=settings.runtime.shutdown_grace + 5,
        ),
        use_uvloop=settings.runtime.uvloop,
    )


def standard_contexts(
    app: web.Application,
    *,
    name: str,
    settings: ServiceSettings,
    migrations: Path,
    endpoints: Callable[[web.Application], Sequence[Endpoint[Any, Any]]],
    workers: Sequence[CleanupContext] = (),
) -> None:
    """Add the contexts every service needs, in the order that makes shutdown clean.

    The app gets its :class:`~libs.common.metrics.Metrics` (``METRICS``) and the group every
    service reports (``SERVICE_METRICS``) here, before any context runs.
    """
    app[METRICS] = Metrics(tether_version())
    app[SERVICE_METRICS] = ServiceMetrics(app[METRICS])
    app.cleanup_ctx.append(bus_context(settings.bus, name))
    app.cleanup_ctx.append(database_context(settings.db, name, migrations))
    app.cleanup_ctx.append(service_metrics_context)
    app.cleanup_ctx.append(outbox_relay_context(name, settings.runtime))
    app.cleanup_ctx.extend(workers)
    app.cleanup_ctx.append(serve_context(name, endpoints, settings.runtime))
    add_health_routes(app)


def service_app(
    *,
    name: str,
    settings: ServiceSettings,
    migrations: Path,
    endpoints: Callable[[web.Application], Sequence[Endpoint[Any, Any]]],
    workers: Sequence[CleanupContext] = (),
) -> web.Application:
    """Return a service's application with :func:`standard_contexts` (no I/O until started).

    The caller puts its own state (settings, keyring) under its typed keys afterwards.
    """
    app = web.Application()
    standard_contexts(
        app,
        name=name,
        settings=settings,
        migrations=migrations,
        endpoints=endpoints,
        workers=workers,
    )
    return app
