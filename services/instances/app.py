"""Assemble the instances service (no I/O until the runner starts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common.bus import Endpoint, endpoint
from libs.common.contracts import instances as c
from libs.common.contracts import schemas
from libs.common.contracts.base import INBOUND_STREAM
from libs.common.jobs import JobEngine
from libs.common.metrics import METRICS, SERVICE_METRICS
from libs.common.outbox import EventConsumer, ensure_inbound_stream
from libs.common.runtime import (
    BUS,
    POOL,
    Work,
    background_tasks,
    service_app,
    status_reporter,
    system_endpoints,
)
from services.instances import lifecycle, sync_pass
from services.instances.action_instances import ActionInstances
from services.instances.action_request_types import ActionRequestTypes
from services.instances.action_runner import ActionRunner
from services.instances.action_runs import ActionRuns
from services.instances.action_runs import sweep as sweep_action_runs
from services.instances.actions import Actions
from services.instances.app_event_types import AppEventTypes
from services.instances.appclient import AppClient
from services.instances.collection_calls import AppCaller
from services.instances.consumers import DURABLE, EVENTS, on_connection_event
from services.instances.data_source_instances import DataSourceInstances
from services.instances.data_sources import DataSources
from services.instances.deployments import Deployments
from services.instances.field_mapping_instances import FieldMappingInstances
from services.instances.field_mappings import FieldMappings
from services.instances.inbound_webhooks import (
    INBOUND_DURABLE,
    INBOUND_EVENTS,
    on_inbound_webhook,
    sweep_deliveries,
)
from services.instances.keys import (
    ACTION_INSTANCES,
    ACTION_RUNS,
    ACTIONS,
    APP_EVENT_TYPES,
    DATA_SOURCE_INSTANCES,
    DATA_SOURCES,
    DEPLOYMENTS,
    ENGINE,
    FIELD_MAPPING_INSTANCES,
    FIELD_MAPPINGS,
    KEYRING,
    RECORDS,
    SETTINGS,
    SUBSCRIPTIONS,
    SYNC_ENGINE,
    SYNCED_RECORDS,
    SYNCS,
    WEBHOOKS,
)
from services.instances.metrics import INSTANCES_METRICS, InstancesMetrics
from services.instances.records import Records
from services.instances.sealed import SEALED
from services.instances.settings import InstancesSettings
from services.instances.steps import StepRunner
from services.instances.store.syncs import QUEUE as SYNC_QUEUE
from services.instances.subscriptions import Subscriptions
from services.instances.sync_schedule import run_schedule
from services.instances.synced_records import SyncedRecords
from services.instances.syncs import Syncs
from services.instances.system import System
from services.instances.webhook_routes import WebhookRoutes, listen_for_changes
from services.instances.webhooks import Webhooks

NAME = "instances"
MIGRATIONS = Path(__file__).parent / "migrations"


def endpoints(app: web.Application) -> Sequence[Endpoint[Any, Any]]:
    """Return every operation instances answers: subject ``<resource>.<op>`` → ``<resource>.py``."""
    types, sources, deployments = app[APP_EVENT_TYPES], app[DATA_SOURCES], app[DEPLOYMENTS]
    subscriptions, instances = app[SUBSCRIPTIONS], app[DATA_SOURCE_INSTANCES]
    return [
        *system_endpoints(
            NAME,
            app,
            status=System(status_reporter(NAME, app)).status,
            keyring=app[KEYRING],
            sealed=SEALED,
        ),
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
        endpoint(c.DATA_SOURCE_INSTANCES_GET, instances.get),
        endpoint(c.DATA_SOURCE_INSTANCES_REFRESH, instances.refresh_schema),
        endpoint(c.WEBHOOKS_RECEIVE, app[WEBHOOKS].receive),
        endpoint(c.ACTIONS_LIST, app[ACTIONS].list),
        endpoint(c.ACTIONS_CREATE, app[ACTIONS].create),
        endpoint(c.ACTIONS_GET, app[ACTIONS].get),
        endpoint(c.ACTIONS_PATCH, app[ACTIONS].patch),
        endpoint(c.ACTIONS_DELETE, app[ACTIONS].delete),
        endpoint(c.ACTIONS_REVISIONS, app[ACTIONS].revisions),
        endpoint(c.ACTIONS_REVISION, app[ACTIONS].revision),
        endpoint(c.ACTION_RUNS_START, app[ACTION_RUNS].start),
        endpoint(c.ACTION_INSTANCES_LIST, app[ACTION_INSTANCES].list),
        endpoint(c.ACTION_INSTANCES_CREATE, app[ACTION_INSTANCES].create),
        endpoint(c.ACTION_INSTANCES_GET, app[ACTION_INSTANCES].get),
        endpoint(c.ACTION_INSTANCES_PATCH, app[ACTION_INSTANCES].patch),
        endpoint(c.ACTION_INSTANCES_UPGRADE, app[ACTION_INSTANCES].upgrade),
        endpoint(c.ACTION_INSTANCES_RESET, app[ACTION_INSTANCES].reset),
        endpoint(c.ACTION_INSTANCES_RUN, app[ACTION_INSTANCES].run),
        endpoint(c.ACTION_INSTANCES_RUN_ON_CONNECTION, app[ACTION_INSTANCES].run_on_connection),
        endpoint(c.ACTION_RUNS_LIST, app[ACTION_RUNS].list),
        endpoint(c.ACTION_RUNS_GET, app[ACTION_RUNS].get),
        endpoint(schemas.ACTION_REQUEST_TYPES_LIST, ActionRequestTypes().list),
        endpoint(c.FIELD_MAPPINGS_LIST, app[FIELD_MAPPINGS].list),
        endpoint(c.FIELD_MAPPINGS_CREATE, app[FIELD_MAPPINGS].create),
        endpoint(c.FIELD_MAPPINGS_GET, app[FIELD_MAPPINGS].get),
        endpoint(c.FIELD_MAPPINGS_PATCH, app[FIELD_MAPPINGS].patch),
        endpoint(c.FIELD_MAPPINGS_DELETE, app[FIELD_MAPPINGS].delete),
        endpoint(c.FIELD_MAPPINGS_REVISIONS, app[FIELD_MAPPINGS].revisions),
        endpoint(c.FIELD_MAPPINGS_REVISION, app[FIELD_MAPPINGS].revision),
        endpoint(c.FIELD_MAPPING_INSTANCES_LIST, app[FIELD_MAPPING_INSTANCES].list),
        endpoint(c.FIELD_MAPPING_INSTANCES_GET, app[FIELD_MAPPING_INSTANCES].get),
        endpoint(c.FIELD_MAPPING_INSTANCES_PATCH, app[FIELD_MAPPING_INSTANCES].patch),
        endpoint(c.FIELD_MAPPING_INSTANCES_UPGRADE, app[FIELD_MAPPING_INSTANCES].upgrade),
        endpoint(c.FIELD_MAPPING_INSTANCES_RESET, app[FIELD_MAPPING_INSTANCES].reset),
        endpoint(c.FIELD_MAPPING_INSTANCES_RUN, app[FIELD_MAPPING_INSTANCES].run),
        endpoint(
            c.FIELD_MAPPING_INSTANCES_RUN_ON_CONNECTION,
            app[FIELD_MAPPING_INSTANCES].run_on_connection,
        ),
        endpoint(c.RECORDS_LIST, app[RECORDS].list),
        endpoint(c.RECORDS_GET, app[RECORDS].get),
        endpoint(c.RECORDS_CREATE, app[RECORDS].create),
        endpoint(c.RECORDS_UPDATE, app[RECORDS].update),
        endpoint(c.RECORDS_DELETE, app[RECORDS].delete),
        endpoint(c.SYNCS_START, app[SYNCS].start),
        endpoint(c.SYNCS_CONFIRM, app[SYNCS].confirm),
        endpoint(c.SYNCS_DISCARD, app[SYNCS].discard),
        endpoint(c.SYNC_PASSES_LIST, app[SYNCS].passes),
        endpoint(c.SYNCED_RECORDS_LIST, app[SYNCED_RECORDS].list),
    ]


async def domain_context(app: web.Application) -> AsyncIterator[None]:
    """Build the handlers once the pool and the bus exist (and the inbound work queue)."""
    options, pool, keyring = app[SETTINGS].options, app[POOL], app[KEYRING]
    await ensure_inbound_stream(
        app[BUS].js,
        duplicate_window=options.inbound_duplicate_window,
        max_age=options.inbound_max_age,
        replicas=app[SETTINGS].service.bus.events_replicas,
    )
    metrics, service_metrics = app[INSTANCES_METRICS], app[SERVICE_METRICS]
    metrics.watch(pool, lifecycle.QUEUE)
    runner = StepRunner(
        pool, keyring, AppClient(app[BUS], options.app_call_timeout), options.public_url
    )
    app[APP_EVENT_TYPES] = AppEventTypes(pool, keyring, options)
    app[DATA_SOURCES] = DataSources(pool, options)
    app[DEPLOYMENTS] = Deployments(pool, app[BUS], options)
    app[SUBSCRIPTIONS] = Subscriptions(pool, runner)
    app[DATA_SOURCE_INSTANCES] = DataSourceInstances(pool, app[BUS], runner)
    routes = WebhookRoutes(pool, options.webhook_route_cache_size, options.webhook_route_cache_ttl)
    app[WEBHOOKS] = Webhooks(routes, keyring, app[BUS].js, observe=metrics.inbound_webhook)
    # Actions run on request (no queue): the runner calls the app through the proxy.
    action_runner = ActionRunner(pool, app[BUS], options, metrics)
    app[ACTIONS] = Actions(pool, app[BUS])
    app[ACTION_INSTANCES] = ActionInstances(pool, app[BUS], action_runner)
    app[ACTION_RUNS] = ActionRuns(pool, app[BUS], action_runner, app[ACTION_INSTANCES].definitions)
    app[FIELD_MAPPINGS] = FieldMappings(pool, app[BUS])
    app[FIELD_MAPPING_INSTANCES] = FieldMappingInstances(pool, app[BUS])
    # Deployment steps are jobs of queue ``deployments`` (see lifecycle.py).
    app[ENGINE] = JobEngine(
        pool,
        lifecycle.QUEUE,
        {lifecycle.STEP_JOB: runner.handle},
        lifecycle.queue_options(options),
        on_start=lifecycle.on_start,
        on_finish=metrics.counting_steps(lifecycle.record),
        metrics=service_metrics,
    )
    # Records and syncs: passes are jobs of queue ``syncs``, one at a time per instance.
    caller = AppCaller(app[BUS], options.app_call_timeout)
    app[RECORDS] = Records(pool, caller)
    app[SYNCS] = Syncs(pool, options)
    app[SYNCED_RECORDS] = SyncedRecords(pool)
    syncer = sync_pass.SyncRunner(pool, caller, metrics)
    app[SYNC_ENGINE] = JobEngine(
        pool,
        SYNC_QUEUE,
        {sync_pass.SYNC_JOB: syncer.handle},
        options.sync_queue(),
        on_finish=syncer.on_finish,
        metrics=service_metrics,
    )
    yield


def workers(app: web.Application) -> dict[str, Work]:
    """Return the background tasks: the event and inbound-webhook consumers, the workers."""
    runtime, options = app[SETTINGS].service.runtime, app[SETTINGS].options
    consumer = EventConsumer(
        app[POOL],
        app[BUS],
        DURABLE,
        EVENTS,
        partial(on_connection_event, options=options),
        max_attempts=runtime.event_max_attempts,
        backoff=runtime.event_backoff,
        metrics=app[SERVICE_METRICS],
    )
    inbound = EventConsumer(
        app[POOL],
        app[BUS],
        INBOUND_DURABLE,
        INBOUND_EVENTS,
        on_inbound_webhook,
        max_attempts=runtime.event_max_attempts,
        backoff=runtime.event_backoff,
        ack_wait=options.inbound_ack_wait,
        stream=INBOUND_STREAM,
        metrics=app[SERVICE_METRICS],
    )
    tasks: dict[str, Work] = {"connection-events": consumer.run, "inbound-webhooks": inbound.run}
    tasks["webhook-routes"] = partial(listen_for_changes, app[POOL], NAME, app[WEBHOOKS].routes)
    tasks["action-run-retention"] = partial(sweep_action_runs, app[POOL], options)
    tasks["webhook-delivery-retention"] = partial(sweep_deliveries, app[POOL], options)
    tasks.update(app[ENGINE].tasks(options.deploy_workers))
    tasks.update(app[SYNC_ENGINE].tasks(options.sync_workers))
    tasks["sync-schedule"] = partial(run_schedule, app[POOL], options)
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
    app[INSTANCES_METRICS] = InstancesMetrics(app[METRICS])
    return app
