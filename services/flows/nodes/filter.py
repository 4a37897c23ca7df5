"""The ``filter`` node: end its branch unless a JMESPath condition holds."""

from __future__ import annotations

from pydantic import Field, field_validator

from libs.common.contracts.flows import JmesPath
from libs.common.expressions import ExpressionError, search, truthy
from services.flows.nodes.base import NodeCall, NodeConfig, NodeError, NodeResult, NodeType
from services.flows.nodes.transform import valid_jmespath


class FilterConfig(NodeConfig):
    """Continue only when the JMESPath condition is truthy."""

    condition: JmesPath = Field(description="JMESPath over the run context")
    _check = field_validator("condition")(valid_jmespath)


class Filter(NodeType):
    """Let the branch go on only when a condition holds."""

    name = "filter"
    config = FilterConfig
    docs = (
        "Lets its branch go on only when a condition holds. Config: `condition`, JMESPath "
        "over the run context, for example `contains(input.tags, 'lead') && input.contact.vip`. "
        "JMESPath truthiness decides: null, false, an empty string, list or object are false; "
        "anything else (0 included) is true. When false, the nodes after it on this branch "
        "are skipped; the run itself goes on (other branches run) and completes. Output: "
        "`{passed: true|false}`. Errors: `expression_failed` when the condition cannot be "
        "evaluated, never retried."
    )
    pure = True

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Evaluate the condition; a falsy one ends the branch."""
        assert isinstance(config, FilterConfig)
        try:
            value = search(config.condition, call.scope, "config.condition")
        except ExpressionError as exc:
            raise NodeError("expression_failed", exc.message) from exc
        passed = truthy(value)
        return NodeResult(output={"passed": passed}, stop_branch=not passed)
