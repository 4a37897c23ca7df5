"""The ``transform`` node: reshape the run context with one JMESPath expression."""

from __future__ import annotations

from pydantic import Field, field_validator

from libs.common.contracts.flows import JmesPath
from libs.common.expressions import ExpressionError, compile_expression, search
from services.flows.nodes.base import NodeCall, NodeConfig, NodeError, NodeResult, NodeType


def valid_jmespath(expression: str) -> str:
    """Refuse an expression that does not compile (a pydantic field validator)."""
    try:
        compile_expression(expression)
    except ExpressionError as exc:
        raise ValueError(exc.reason) from exc
    return expression


class TransformConfig(NodeConfig):
    """Reshape the run context with JMESPath."""

    expression: JmesPath = Field(description="JMESPath over the run context")
    _check = field_validator("expression")(valid_jmespath)


class Transform(NodeType):
    """Compute a value from the run context."""

    name = "transform"
    config = TransformConfig
    docs = (
        "Computes a new value from the run context with one JMESPath expression and passes "
        "it on; it calls nothing. Config: `expression`, JMESPath over the run context "
        "`{input, nodes: {<key>: output}, parameters, customer: {id, name, fields}, "
        "connection: {id, integrationKey}}` (plus `item` and `index` inside a for-each), "
        "for example `{email: input.contact.email, owner: nodes.lookup.body.id}`. Output: "
        "the expression's value (any JSON; null when a path is missing). Errors: "
        "`expression_failed` when the expression cannot be evaluated (a function given the "
        "wrong type), never retried."
    )
    pure = True

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Evaluate the expression over the run context."""
        assert isinstance(config, TransformConfig)
        try:
            return NodeResult(output=search(config.expression, call.scope, "config.expression"))
        except ExpressionError as exc:
            raise NodeError("expression_failed", exc.message) from exc
