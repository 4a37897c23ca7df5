"""A flow's customisable document, on top of the one customisation mechanism.

The mechanism (merge patch, three-way upgrade, what a customer may set) is
``libs/common/customization.py``, shared with action instances; this module only says what
of a flow is customisable: ``{"nodes": <its nodes>, "parameters": {}}`` (a node the
customisation touches must still exist in a new revision).
"""

from __future__ import annotations

from typing import Any

from libs.common import customization as common
from libs.common.contracts import flows as c
from libs.common.customization import customer_customization, leaves

__all__ = ["apply", "conflicts", "customer_customization", "document", "leaves"]

COLLECTIONS = {"nodes": "node"}
"""The parts of a flow's document whose entries a customisation reaches into."""


def document(definition: c.FlowDefinition) -> dict[str, Any]:
    """Return the customisable part of a definition."""
    return {
        "nodes": {k: n.model_dump(mode="json") for k, n in definition.nodes.items()},
        "parameters": {},
    }


def apply(
    definition: c.FlowDefinition, customization: dict[str, Any]
) -> tuple[c.FlowDefinition, dict[str, Any]]:
    """Return the effective definition and parameter values (inputs untouched)."""
    merged = common.merge(document(definition), customization)
    nodes = merged.get("nodes")
    effective = definition.model_copy(
        update={
            "nodes": {
                k: c.Node.model_validate(v)
                for k, v in (nodes if isinstance(nodes, dict) else {}).items()
            }
        }
    )
    return effective, common.parameter_values(merged)


def conflicts(
    old: c.FlowDefinition, new: c.FlowDefinition, customization: dict[str, Any]
) -> list[dict[str, str]]:
    """Return the places where the customisation and the new revision disagree."""
    return common.conflicts(document(old), document(new), customization, COLLECTIONS)
