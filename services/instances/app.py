"""Assemble the instances service (no I/O until the runner starts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common.bus import Endpoint, endpoint
from libs.common.contracts import instances as c
from libs.common.crypto import Keyring
from libs.common.dead_letters import dead_letters_endpoint
from libs.common.outbox import EventConsumer
from libs.common.reseal import keys_endpoints
from libs.common.runtime import BUS, POOL, Work, background_tasks, ping_endpoint, standard_contexts
from services.instances.appclient import AppClient
from services.instances.consumers import DURABLE, EVENTS, on_connection_event
from services.instances.deployments import Deployments
from services.instances.elements import Elements
from services.instances.engine import DeployEngine
from services.instances.keys import DEPLOYMENTS, ELEMENTS, ENGINE, KEYRING, SETTINGS, WEBHOOKS
from services.instances.sealed import SEALED
from services.instances.settings import InstancesSettings
from services.instances.steps import StepRunner
from services.instances.webhooks import Webhooks

NAME = "instances"
MIGRATIONS = Path(__file__).parent / "migrations"


def endpoints(app: web.Application) -> Sequence[Endpoint[Any, Any]]:
    """Return every operation instances answers."""
    elements, deployments = app[ELEMENTS], app[DEPLOYMENTS]
    return [
        ping_endpoint(NAME, app),
        dead_letters_endpoint(NAME, app[POOL]),
        *keys_endpoints(NAME, app[POOL], app[KEYRING], SEALED),
        endpoint(c.APP_EVENT_TYPES_LIST, elements.list_app_event_types),
        endpoint(c.APP_EVENT_TYPES_CREATE, elements.create_app_event_type),
        endpoint(c.APP_EVENT_TYPES_GET, elements.get_app_event_type),
        endpoint(c.APP_EVENT_TYPES_PATCH, elements.patch_app_event_type),
        endpoint(c.APP_EVENT_TYPES_DELETE, elements.delete_app_event_type),
        endpoint(c.APP_EVENT_TYPES_DEPLOY, elements.deploy_app_event_type),
        endpoint(c.DATA_SOURCES_LIST, elements.list_data_sources),
        endpoint(c.DATA_SOURCES_CREATE, elements.create_data_source),
        endpoint(c.DATA_SOURCES_GET, elements.get_data_source),
        endpoint(c.DATA_SOURCES_PATCH, elements.patch_data_source),
        endpoint(c.DATA_SOURCES_DELETE, elements.delete_data_source),
        endpoint(c.DATA_SOURCES_DEPLOY, elements.deploy_data_source),
        endpoint(c.DEPLOYMENTS_GET, deployments.get),
        endpoint(c.DEPLOYMENTS_LIST, deployments.list),
        endpoint(c.DEPLOYMENTS_START, deployments.start),
        endpoint(c.SUBSCRIPTIONS_LIST, deployments.subscriptions),
        endpoint(c.DATA_SOURCE_INSTANCES_LIST, deployments.data_source_instances),
        endpoint(c.DATA_SOURCE_INSTANCES_REFRESH, deployments.refresh_schema),
        endpoint(c.WEBHOOKS_RECEIVE, app[WEBHOOKS].receive),
    ]


async def domain_context(app: web.Application) -> AsyncIterator[None]:
    """Build the handlers once the pool and the bus exist."""
    options, pool, keyring = app[SETTINGS].options, app[POOL], app[KEYRING]
    runner = StepRunner(
        pool, keyring, AppClient(app[BUS], options.app_call_timeout), options.public_url
    )
    app[ELEMENTS] = Elements(pool, keyring)
    app[DEPLOYMENTS] = Deployments(pool, app[BUS], runner)
    app[WEBHOOKS] = Webhooks(pool, keyring)
    app[ENGINE] = DeployEngine(pool, runner, options)
    yield


def workers(app: web.Application) -> dict[str, Work]:
    """Return the background jobs: the connection-events consumer and the deployment workers."""
    runtime = app[SETTINGS].service.runtime
    consumer = EventConsumer(
        app[POOL],
        app[BUS],
        DURABLE,
        EVENTS,
        on_connection_event,
        max_attempts=runtime.event_max_attempts,
        backoff=runtime.event_backoff,
    )
    jobs: dict[str, Work] = {"connection-events": consumer.run}
    jobs.update(
        {f"deploy-{i}": app[ENGINE].work for i in range(app[SETTINGS].options.deploy_workers)}
    )
    return jobs


def create_app(settings: InstancesSettings) -> web.Application:
    """Build the instances application."""
    app = web.Application()
    app[SETTINGS] = settings
    app[KEYRING] = Keyring.from_setting(settings.crypto.master_keys.get_secret_value())
    standard_contexts(
        app,
        name=NAME,
        settings=settings.service,
        migrations=MIGRATIONS,
        endpoints=endpoints,
        workers=[domain_context, background_tasks(workers)],
    )
    return app
