"""Assemble the flows service (no I/O until the runner starts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common.bus import Endpoint, endpoint
from libs.common.contracts import flows as c
from libs.common.contracts import schemas
from libs.common.jobs import JobEngine, QueueOptions
from libs.common.metrics import METRICS, SERVICE_METRICS
from libs.common.runtime import (
    BUS,
    POOL,
    Work,
    background_tasks,
    service_app,
    status_reporter,
    system_endpoints,
)
from libs.common.ssrf import UrlPolicy, guarded_session
from services.flows.flow_instances import FlowInstances
from services.flows.flow_runs import FlowRuns
from services.flows.flows import Flows
from services.flows.keys import ENGINE, FLOW_INSTANCES, FLOW_RUNS, FLOWS, SETTINGS
from services.flows.metrics import FLOWS_METRICS, FlowsMetrics
from services.flows.node_types import NodeTypes
from services.flows.nodes import REGISTRY
from services.flows.nodes.base import NodeServices
from services.flows.runs import retention
from services.flows.runs.runner import Runner
from services.flows.runs.start import QUEUE, RUN_JOB
from services.flows.settings import FlowsOptions, FlowsSettings
from services.flows.system import System
from services.flows.trigger_types import TriggerTypes
from services.flows.triggers import workers as triggers

NAME = "flows"
MIGRATIONS = Path(__file__).parent / "migrations"


def endpoints(app: web.Application) -> Sequence[Endpoint[Any, Any]]:
    """Return every operation flows answers.

    Subject ``tether.flows.<resource>.<op>`` is answered by ``<op>`` of the handlers in
    ``services/flows/<resource>.py``.
    """
    flows, flow_instances, flow_runs = app[FLOWS], app[FLOW_INSTANCES], app[FLOW_RUNS]
    return [
        *system_endpoints(NAME, app, status=System(status_reporter(NAME, app)).status),
        endpoint(c.FLOWS_LIST, flows.list),
        endpoint(c.FLOWS_CREATE, flows.create),
        endpoint(c.FLOWS_GET, flows.get),
        endpoint(c.FLOWS_PUT, flows.put),
        endpoint(c.FLOWS_PATCH, flows.patch),
        endpoint(c.FLOWS_DELETE, flows.delete),
        endpoint(c.FLOWS_REVISIONS, flows.revisions),
        endpoint(c.FLOWS_REVISION, flows.revision),
        endpoint(c.FLOW_INSTANCES_LIST, flow_instances.list),
        endpoint(c.FLOW_INSTANCES_CREATE, flow_instances.create),
        endpoint(c.FLOW_INSTANCES_GET, flow_instances.get),
        endpoint(c.FLOW_INSTANCES_PATCH, flow_instances.patch),
        endpoint(c.FLOW_INSTANCES_UPGRADE, flow_instances.upgrade),
        endpoint(c.FLOW_INSTANCES_RESET, flow_instances.reset),
        endpoint(c.FLOW_INSTANCES_ENSURE, flow_instances.ensure),
        endpoint(c.FLOW_RUNS_START, flow_runs.start),
        endpoint(c.FLOW_RUNS_LIST, flow_runs.list),
        endpoint(c.FLOW_RUNS_GET, flow_runs.get),
        endpoint(c.FLOW_RUNS_NODE, flow_runs.node),
        endpoint(c.FLOW_RUNS_STOP, flow_runs.stop),
        endpoint(c.FLOW_RUNS_RERUN, flow_runs.rerun),
        endpoint(schemas.FLOW_NODE_TYPES_LIST, NodeTypes(REGISTRY).list),
        endpoint(schemas.FLOW_TRIGGER_TYPES_LIST, TriggerTypes().list),
    ]


def queue_options(options: FlowsOptions) -> QueueOptions:
    """Return how the runs' job queue is claimed: one partition per connection."""
    return QueueOptions(
        partition_limit=options.runs_per_connection,
        lease=options.run_lease,
        poll_interval=options.run_poll_interval,
        backoff_base=1.0,
        backoff_cap=60.0,
    )


async def domain_context(app: web.Application) -> AsyncIterator[None]:
    """Build the handlers and the runs' engine once the pool and the bus exist.

    Nodes reach the outside through one SSRF-guarded HTTP session, open for the app's
    lifetime (closed after the workers stop: this context closes after theirs).
    """
    pool, bus, options = app[POOL], app[BUS], app[SETTINGS].options
    app[FLOWS] = Flows(pool, bus)
    app[FLOW_INSTANCES] = FlowInstances(pool, bus)
    app[FLOW_RUNS] = FlowRuns(pool, options, app[FLOWS_METRICS])
    policy = UrlPolicy(allow_private=options.allow_private_urls)
    async with guarded_session(policy) as http:
        services = NodeServices(
            bus=bus, http=http, url_policy=policy, request_timeout=options.node_request_timeout
        )
        app[FLOWS_METRICS].watch(pool, QUEUE)
        runner = Runner(pool, bus, options, services, REGISTRY, app[FLOWS_METRICS])
        app[ENGINE] = JobEngine(
            pool,
            QUEUE,
            {RUN_JOB: runner.handle},
            queue_options(options),
            on_start=runner.on_start,
            on_finish=runner.on_finish,
            metrics=app[SERVICE_METRICS],
        )
        yield


def run_tasks(app: web.Application) -> dict[str, Work]:
    """Return the runs' background work: the job workers and the retention sweep."""
    options = app[SETTINGS].options
    tasks = app[ENGINE].tasks(options.run_workers)
    tasks["run-retention"] = partial(retention.sweep, app[POOL], options)
    return tasks


def trigger_tasks(app: web.Application) -> dict[str, Work]:
    """Return the triggers' background work: event consumers and the scheduler.

    The one place ``services/flows/triggers`` plugs its tasks in.
    """
    settings = app[SETTINGS]
    return triggers.tasks(
        app[POOL],
        app[BUS],
        settings.service.runtime,
        settings.options,
        settings.triggers,
        metrics=app[SERVICE_METRICS],
    )


WORKERS = (run_tasks, trigger_tasks)
"""Every group of background tasks a flows replica runs (each: app → named tasks)."""


def workers(app: web.Application) -> dict[str, Work]:
    """Return every background task of :data:`WORKERS`, by name."""
    tasks: dict[str, Work] = {}
    for group in WORKERS:
        tasks.update(group(app))
    return tasks


def create_app(settings: FlowsSettings) -> web.Application:
    """Build the flows application."""
    app = service_app(
        name=NAME,
        settings=settings.service,
        migrations=MIGRATIONS,
        endpoints=endpoints,
        workers=[domain_context, background_tasks(workers)],
    )
    app[SETTINGS] = settings
    app[FLOWS_METRICS] = FlowsMetrics(app[METRICS])
    return app
