"""Typed keys of the flows app's state."""

from __future__ import annotations

from aiohttp import web

from libs.common.jobs import JobEngine
from services.flows.flow_instances import FlowInstances
from services.flows.flow_runs import FlowRuns
from services.flows.flows import Flows
from services.flows.settings import FlowsSettings

SETTINGS = web.AppKey("settings", FlowsSettings)
FLOWS = web.AppKey("flows", Flows)
FLOW_INSTANCES = web.AppKey("flow_instances", FlowInstances)
FLOW_RUNS = web.AppKey("flow_runs", FlowRuns)
ENGINE = web.AppKey("engine", JobEngine)
"""The job engine of queue ``flow_runs`` (the runs' workers)."""
