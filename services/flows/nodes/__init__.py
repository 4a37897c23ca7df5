"""Every node type a flow may use, by name: one module each (config model, runner, docs)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from services.flows.nodes.api_request import ApiRequest
from services.flows.nodes.apply_field_mapping import ApplyFieldMapping
from services.flows.nodes.base import NodeType
from services.flows.nodes.data_records import RECORD_NODES
from services.flows.nodes.delay import Delay
from services.flows.nodes.filter import Filter
from services.flows.nodes.for_each import ForEach
from services.flows.nodes.http_request import HttpRequest
from services.flows.nodes.run_action import RunAction
from services.flows.nodes.transform import Transform

REGISTRY: Mapping[str, NodeType] = MappingProxyType(
    {
        t.name: t
        for t in (
            HttpRequest(),
            ApiRequest(),
            Transform(),
            Filter(),
            Delay(),
            ForEach(),
            RunAction(),
            ApplyFieldMapping(),
            *RECORD_NODES,
        )
    }
)
"""The node types the runner can execute, by ``type`` name (read-only)."""
