"""Answer ``tether.flows.node_types.list``: every node type with its config's JSON Schema.

The catalogue is built once from the node registry (it changes only with a deployment) and
is the same for every workspace. A config property may hold an expression unless the node
type leaves it raw (``NodeType.raw_fields``, e.g. a for-each's inner ``nodes``): those
properties are marked ``x-tether-expression`` (see ``libs/common/contracts/schemas.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from libs.common.contracts import schemas as s
from services.flows.nodes.base import NodeType


def node_type_info(node: NodeType) -> s.NodeTypeInfo:
    """Return what the catalogue says of one node type."""
    title = s.humanize(node.name)
    keys = [field.alias or name for name, field in node.config.model_fields.items()]
    return s.NodeTypeInfo(
        type=node.name,
        title=title,
        description=node.docs,
        config_schema=s.publish(
            node.config,
            title=title,
            expressions=[key for key in keys if key not in node.raw_fields],
        ),
    )


class NodeTypes:
    """Handler of the node type catalogue."""

    def __init__(self, registry: Mapping[str, NodeType]) -> None:
        self._types = s.NodeTypeList(items=[node_type_info(t) for t in registry.values()])

    async def list(self, req: s.TypeListRequest) -> s.NodeTypeList:
        """Return every node type a flow may use, in the registry's order."""
        req.ctx.workspace()
        return self._types
