"""Typed keys of the flows app's state."""

from __future__ import annotations

from aiohttp import web

from services.flows.flow_instances import FlowInstances
from services.flows.flows import Flows

FLOWS = web.AppKey("flows", Flows)
FLOW_INSTANCES = web.AppKey("flow_instances", FlowInstances)
