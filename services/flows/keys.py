"""Typed keys of the flows app's state."""

from __future__ import annotations

from aiohttp import web

from services.flows.flows import Flows
from services.flows.instances import FlowInstances

FLOWS = web.AppKey("flows", Flows)
INSTANCES = web.AppKey("instances", FlowInstances)
