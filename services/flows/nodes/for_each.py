"""The ``for-each`` node: run an inner graph once per item of a list, collect the outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, TypeAdapter, ValidationError

from libs.common.contracts import flows as c
from services.flows.nodes.base import NodeCall, NodeConfig, NodeError, NodeResult, NodeType

MAX_PARALLELISM = 20
_GRAPH = TypeAdapter(dict[str, c.Node])


class ForEachConfig(NodeConfig):
    """Run ``nodes`` once per item of ``items``, ``parallelism`` items at a time."""

    items: list[Any] | None = Field(description="A list (usually an expression giving one)")
    nodes: dict[str, c.Node] = Field(min_length=1, description="The graph run for each item")
    parallelism: int = Field(default=1, ge=1, le=MAX_PARALLELISM)


def inner_graph(config: Mapping[str, Any]) -> dict[str, c.Node] | None:
    """Return a for-each config's inner graph, or None when it is not a valid graph."""
    try:
        return _GRAPH.validate_python(config.get("nodes"))
    except ValidationError:
        return None


class ForEach(NodeType):
    """Repeat a sub-graph for each item."""

    name = "for-each"
    config = ForEachConfig
    raw_fields = frozenset({"nodes"})
    docs = (
        "Runs an inner graph once for each item of a list and collects what each produced. "
        "Config: `items`, the list (usually an expression such as "
        '`{"$expr": "nodes.fetch.body.contacts"}`; null counts as empty), `nodes`, the '
        "inner graph (nodes and links as in a flow; links stay inside it; for-each nodes nest "
        "at most 3 deep), and `parallelism`, how many items run at once (1 to 20, default 1: "
        "one after another). Inside, expressions also see `item` (the current item), `index` "
        "(its position from 0) and the inner nodes' outputs of the same item under `nodes`; "
        "outbound calls carry `Idempotency-Key: <runId>:<forEachKey>.<innerKey>:<index>`. "
        "Output: a list with one entry per item, in the items' order, each an object of the "
        "inner nodes' outputs by key. Errors: `item_failed` when an item's inner graph "
        "failed (`data` holds the item's index and its error); `too_many_nodes` when the run "
        "would execute more nodes than its limit."
    )

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Hand the items to the runner's ``each``; output the list of their results."""
        assert isinstance(config, ForEachConfig)
        if call.each is None:
            raise NodeError("not_supported", "this runner cannot run for-each nodes")
        items = config.items or []
        call.log("for_each_started", items=len(items), parallelism=config.parallelism)
        return NodeResult(output=await call.each(items, config.parallelism))
