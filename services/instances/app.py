"""Assemble the instances service (no I/O until the runner starts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common.bus import Endpoint, endpoint
from libs.common.contracts import instances as c
from libs.common.jobs import JobEngine
from libs.common.outbox import EventConsumer
from libs.common.runtime import (
    BUS,
    POOL,
    Work,
    background_tasks,
    service_app,
    system_endpoints,
)
from services.instances import lifecycle
from services.instances.app_event_types import AppEventTypes
from services.instances.appclient import AppClient
from services.instances.consumers import DURABLE, EVENTS, on_connection_event
from services.instances.data_source_instances import DataSourceInstances
from services.instances.data_sources import DataSources
from services.instances.deployments import Deployments
from services.instances.keys import (
    APP_EVENT_TYPES,
    DATA_SOURCE_INSTANCES,
    DATA_SOURCES,
    DEPLOYMENTS,
    ENGINE,
    KEYRING,
    SETTINGS,
    SUBSCRIPTIONS,
    WEBHOOKS,
)
from services.instances.sealed import SEALED
from services.instances.settings import InstancesSettings
from services.instances.steps import StepRunner
from services.instances.subscriptions import Subscriptions
from services.instances.webhooks import Webhooks

NAME = "instances"
MIGRATIONS = Path(__file__).parent / "migrations"


def endpoints(app: web.Application) -> Sequence[Endpoint[Any, Any]]:
    """Return every operation instances answers: subject ``<resource>.<op>`` → ``<resource>.py``."""
    types, sources, deployments = app[APP_EVENT_TYPES], app[DATA_SOURCES], app[DEPLOYMENTS]
    subscriptions, instances = app[SUBSCRIPTIONS], app[DATA_SOURCE_INSTANCES]
    return [
        *system_endpoints(NAME, app, keyring=app[KEYRING], sealed=SEALED),
        endpoint(c.APP_EVENT_TYPES_LIST, types.list),
        endpoint(c.APP_EVENT_TYPES_CREATE, types.create),
        endpoint(c.APP_EVENT_TYPES_GET, types.get),
        endpoint(c.APP_EVENT_TYPES_PATCH, types.patch),
        endpoint(c.APP_EVENT_TYPES_DELETE, types.delete),
        endpoint(c.APP_EVENT_TYPES_DEPLOY, types.deploy),
        endpoint(c.DATA_SOURCES_LIST, sources.list),
        endpoint(c.DATA_SOURCES_CREATE, sources.create),
        endpoint(c.DATA_SOURCES_GET, sources.get),
        endpoint(c.DATA_SOURCES_PATCH, sources.patch),
        endpoint(c.DATA_SOURCES_DELETE, sources.delete),
        endpoint(c.DATA_SOURCES_DEPLOY, sources.deploy),
        endpoint(c.DEPLOYMENTS_GET, deployments.get),
        endpoint(c.DEPLOYMENTS_LIST, deployments.list),
        endpoint(c.DEPLOYMENTS_START, deployments.start),
        endpoint(c.SUBSCRIPTIONS_LIST, subscriptions.list),
        endpoint(c.DATA_SOURCE_INSTANCES_LIST, instances.list),
        endpoint(c.DATA_SOURCE_INSTANCES_REFRESH, instances.refresh_schema),
        endpoint(c.WEBHOOKS_RECEIVE, app[WEBHOOKS].receive),
    ]


async def domain_context(app: web.Application) -> AsyncIterator[None]:
    """Build the handlers once the pool and the bus exist."""
    options, pool, keyring = app[SETTINGS].options, app[POOL], app[KEYRING]
    runner = StepRunner(
        pool, keyring, AppClient(app[BUS], options.app_call_timeout), options.public_url
    )
    app[APP_EVENT_TYPES] = AppEventTypes(pool, keyring, options)
    app[DATA_SOURCES] = DataSources(pool, options)
    app[DEPLOYMENTS] = Deployments(pool, app[BUS], options)
    app[SUBSCRIPTIONS] = Subscriptions(pool, runner)
    app[DATA_SOURCE_INSTANCES] = DataSourceInstances(pool, app[BUS], runner)
    app[WEBHOOKS] = Webhooks(pool, keyring)
    # Deployment steps are jobs of queue ``deployments`` (see lifecycle.py).
    app[ENGINE] = JobEngine(
        pool,
        lifecycle.QUEUE,
        {lifecycle.STEP_JOB: runner.handle},
        lifecycle.queue_options(options),
        on_start=lifecycle.on_start,
        on_finish=lifecycle.record,
    )
    yield


def workers(app: web.Application) -> dict[str, Work]:
    """Return the background tasks: the connection-events consumer and the deployment workers."""
    runtime, options = app[SETTINGS].service.runtime, app[SETTINGS].options
    consumer = EventConsumer(
        app[POOL],
        app[BUS],
        DURABLE,
        EVENTS,
        partial(on_connection_event, options=options),
        max_attempts=runtime.event_max_attempts,
        backoff=runtime.event_backoff,
    )
    tasks: dict[str, Work] = {"connection-events": consumer.run}
    tasks.update(app[ENGINE].tasks(options.deploy_workers))
    return tasks


def create_app(settings: InstancesSettings) -> web.Application:
    """Build the instances application."""
    app = service_app(
        name=NAME,
        settings=settings.service,
        migrations=MIGRATIONS,
        endpoints=endpoints,
        workers=[domain_context, background_tasks(workers)],
    )
    app[SETTINGS] = settings
    app[KEYRING] = settings.keyring()
    return app
