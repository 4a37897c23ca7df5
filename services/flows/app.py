"""Assemble the flows service (no I/O until the runner starts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common.bus import Endpoint, endpoint
from libs.common.contracts import flows as c
from libs.common.dead_letters import dead_letters_endpoint
from libs.common.runtime import BUS, POOL, ServiceSettings, ping_endpoint, standard_contexts
from services.flows.flows import Flows
from services.flows.instances import FlowInstances
from services.flows.keys import FLOWS, INSTANCES

NAME = "flows"
MIGRATIONS = Path(__file__).parent / "migrations"


def endpoints(app: web.Application) -> Sequence[Endpoint[Any, Any]]:
    """Return every operation flows answers."""
    flows, instances = app[FLOWS], app[INSTANCES]
    return [
        ping_endpoint(NAME, app),
        dead_letters_endpoint(NAME, app[POOL]),
        endpoint(c.FLOWS_LIST, flows.list),
        endpoint(c.FLOWS_CREATE, flows.create),
        endpoint(c.FLOWS_GET, flows.get),
        endpoint(c.FLOWS_PUT, flows.put),
        endpoint(c.FLOWS_PATCH, flows.patch),
        endpoint(c.FLOWS_DELETE, flows.delete),
        endpoint(c.FLOWS_REVISIONS, flows.revisions),
        endpoint(c.FLOWS_REVISION, flows.revision),
        endpoint(c.FLOW_INSTANCES_LIST, instances.list),
        endpoint(c.FLOW_INSTANCES_CREATE, instances.create),
        endpoint(c.FLOW_INSTANCES_GET, instances.get),
        endpoint(c.FLOW_INSTANCES_PATCH, instances.patch),
        endpoint(c.FLOW_INSTANCES_UPGRADE, instances.upgrade),
        endpoint(c.FLOW_INSTANCES_RESET, instances.reset),
        endpoint(c.FLOW_INSTANCES_ENSURE, instances.ensure),
    ]


async def domain_context(app: web.Application) -> AsyncIterator[None]:
    """Build the handlers once the pool and the bus exist."""
    app[FLOWS] = Flows(app[POOL], app[BUS])
    app[INSTANCES] = FlowInstances(app[POOL], app[BUS])
    yield


def create_app(settings: ServiceSettings) -> web.Application:
    """Build the flows application."""
    app = web.Application()
    standard_contexts(
        app,
        name=NAME,
        settings=settings,
        migrations=MIGRATIONS,
        endpoints=endpoints,
        workers=[domain_context],
    )
    return app
