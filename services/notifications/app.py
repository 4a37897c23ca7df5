"""Assemble the notifications service (no I/O until the runner starts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common.bus import Endpoint, endpoint
from libs.common.contracts import notifications as c
from libs.common.jobs import JobEngine
from libs.common.metrics import METRICS, SERVICE_METRICS
from libs.common.outbox import EventConsumer
from libs.common.runtime import (
    BUS,
    POOL,
    Work,
    background_tasks,
    service_app,
    status_reporter,
    system_endpoints,
)
from libs.common.ssrf import guarded_session
from services.notifications import delivery, retention
from services.notifications.consumers import DURABLE, EVENTS, on_event
from services.notifications.deliveries import Deliveries
from services.notifications.endpoints import Endpoints
from services.notifications.event_types import EventTypes
from services.notifications.keys import (
    DELIVERIES,
    ENDPOINTS,
    ENGINE,
    EVENT_TYPES,
    KEYRING,
    SENDER,
    SETTINGS,
)
from services.notifications.metrics import NOTIFICATIONS_METRICS, NotificationsMetrics
from services.notifications.sealed import SEALED
from services.notifications.sender import Sender
from services.notifications.settings import NotificationsSettings
from services.notifications.system import System

NAME = "notifications"
MIGRATIONS = Path(__file__).parent / "migrations"


def endpoints(app: web.Application) -> Sequence[Endpoint[Any, Any]]:
    """Return every operation notifications answers: ``<resource>.<op>`` → ``<resource>.py``."""
    hooks, log, types = app[ENDPOINTS], app[DELIVERIES], app[EVENT_TYPES]
    return [
        *system_endpoints(
            NAME,
            app,
            status=System(status_reporter(NAME, app)).status,
            keyring=app[KEYRING],
            sealed=SEALED,
        ),
        endpoint(c.ENDPOINTS_LIST, hooks.list),
        endpoint(c.ENDPOINTS_CREATE, hooks.create),
        endpoint(c.ENDPOINTS_GET, hooks.get),
        endpoint(c.ENDPOINTS_PATCH, hooks.patch),
        endpoint(c.ENDPOINTS_DELETE, hooks.delete),
        endpoint(c.ENDPOINTS_ROTATE_SECRET, hooks.rotate_secret),
        endpoint(c.ENDPOINTS_TEST, hooks.test),
        endpoint(c.DELIVERIES_LIST, log.list),
        endpoint(c.DELIVERIES_GET, log.get),
        endpoint(c.DELIVERIES_REDELIVER, log.redeliver),
        endpoint(c.DELIVERIES_REPLAY, log.replay),
        endpoint(c.EVENT_TYPES_LIST, types.list),
    ]


async def domain_context(app: web.Application) -> AsyncIterator[None]:
    """Open the outbound HTTP session and build the handlers once the pool exists."""
    options, pool, keyring = app[SETTINGS].options, app[POOL], app[KEYRING]
    async with guarded_session(options.url_policy()) as http:
        sender = Sender(http, options.url_policy(), options.delivery_timeout)
        app[SENDER] = sender
        app[ENDPOINTS] = Endpoints(pool, keyring, sender, options)
        app[DELIVERIES] = Deliveries(pool, options)
        app[EVENT_TYPES] = EventTypes()
        deliverer = delivery.Deliverer(pool, keyring, sender, options, app[NOTIFICATIONS_METRICS])
        app[ENGINE] = JobEngine(
            pool,
            delivery.QUEUE,
            {delivery.DELIVER_JOB: deliverer.handle},
            delivery.queue_options(options),
            on_finish=delivery.on_finish,
            metrics=app[SERVICE_METRICS],
        )
        yield


def workers(app: web.Application) -> dict[str, Work]:
    """Return the background tasks: the events consumer, delivery workers, the retention sweep."""
    runtime, options = app[SETTINGS].service.runtime, app[SETTINGS].options
    consumer = EventConsumer(
        app[POOL],
        app[BUS],
        DURABLE,
        EVENTS,
        partial(on_event, options=options),
        max_attempts=runtime.event_max_attempts,
        backoff=runtime.event_backoff,
        metrics=app[SERVICE_METRICS],
    )
    tasks: dict[str, Work] = {
        "notification-events": consumer.run,
        "deliveries-retention": partial(retention.sweep, app[POOL], options),
    }
    tasks.update(app[ENGINE].tasks(options.delivery_workers))
    return tasks


def create_app(settings: NotificationsSettings) -> web.Application:
    """Build the notifications application."""
    app = service_app(
        name=NAME,
        settings=settings.service,
        migrations=MIGRATIONS,
        endpoints=endpoints,
        workers=[domain_context, background_tasks(workers)],
    )
    app[SETTINGS] = settings
    app[KEYRING] = settings.keyring()
    app[NOTIFICATIONS_METRICS] = NotificationsMetrics(app[METRICS])
    return app
