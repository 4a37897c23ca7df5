"""Assemble the flows service (no I/O until the runner starts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common.bus import Endpoint, endpoint
from libs.common.contracts import flows as c
from libs.common.runtime import BUS, POOL, ServiceSettings, service_app, system_endpoints
from services.flows.flow_instances import FlowInstances
from services.flows.flows import Flows
from services.flows.keys import FLOW_INSTANCES, FLOWS

NAME = "flows"
MIGRATIONS = Path(__file__).parent / "migrations"


def endpoints(app: web.Application) -> Sequence[Endpoint[Any, Any]]:
    """Return every operation flows answers.

    Subject ``tether.flows.<resource>.<op>`` is answered by ``<op>`` of the handlers in
    ``services/flows/<resource>.py``.
    """
    flows, flow_instances = app[FLOWS], app[FLOW_INSTANCES]
    return [
        *system_endpoints(NAME, app),
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
    ]


async def domain_context(app: web.Application) -> AsyncIterator[None]:
    """Build the handlers once the pool and the bus exist."""
    app[FLOWS] = Flows(app[POOL], app[BUS])
    app[FLOW_INSTANCES] = FlowInstances(app[POOL], app[BUS])
    yield


def create_app(settings: ServiceSettings) -> web.Application:
    """Build the flows application."""
    return service_app(
        name=NAME,
        settings=settings,
        migrations=MIGRATIONS,
        endpoints=endpoints,
        workers=[domain_context],
    )
