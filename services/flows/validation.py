"""Check a flow: its scope, its definition, and the parameter values an instance sets.

A definition's problems (node types and configs, every expression, links, cycles, for-each
inner graphs, the trigger's cron, timezone, filter and input schema, the parameters schema)
are reported with the field each is about (``nodes.<key>.config.<field>``,
``nodes.<key>.config.nodes.<inner>.config.<field>``), all at once, so an editor can show
each at its node. Config values that are expressions are checked to compile; their type is
checked when the node runs (:meth:`NodeType.prepare`); literal values are checked here.

A flow's scope (its level with the integration and customer it names) decides where it may
run: :func:`check_scope` when it is written, :func:`fits` when it is deployed to a connection.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ValidationError

from libs.common import expressions
from libs.common.contracts import flows as c
from libs.common.errors import InvalidInput
from services.flows.nodes import REGISTRY
from services.flows.nodes.base import config_errors
from services.flows.nodes.for_each import ForEach, inner_graph


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", details=[{"field": field, "message": message}])


def check_scope(
    level: c.Level, integration_key: str | None, customer_id: str | None, trigger: c.Trigger
) -> None:
    """Refuse a level whose scope fields do not fit it, or a trigger the level cannot have."""
    if level == "universal" and (integration_key or customer_id):
        raise _invalid("level", "a universal flow names no integration and no customer")
    if level == "app" and (not integration_key or customer_id):
        raise _invalid("integrationKey", "an app-level flow names one integration and no customer")
    if level == "customer" and not customer_id:
        raise _invalid("customerId", "a customer-level flow names its customer")
    if isinstance(trigger, c.AppEventTrigger | c.DataRecordTrigger) and not integration_key:
        raise _invalid("trigger.type", f"a {trigger.type} trigger needs the flow's integrationKey")


def fits(
    level: c.Level,
    flow_integration_key: str | None,
    flow_customer_id: str | None,
    *,
    customer_id: str,
    integration_key: str,
) -> bool:
    """Tell whether a flow of this scope may run on a connection of this customer and app."""
    if level == "app":
        return flow_integration_key == integration_key
    if level == "customer":
        return flow_customer_id == customer_id and flow_integration_key in (None, integration_key)
    return True


MAX_NESTING = 3
"""for-each nodes inside for-each nodes, at most this deep."""


def config_model(node_type: str) -> type[BaseModel] | None:
    """Return the config model of a node type, or None when the type is unknown."""
    known = REGISTRY.get(node_type)
    return known.config if known is not None else None


def problems(definition: c.FlowDefinition) -> list[dict[str, str]]:
    """Return every problem of a definition as ``{field, message}``."""
    found = graph_problems(definition.nodes, "nodes")
    found += trigger_problems(definition.trigger)
    if definition.parameters is not None:
        try:
            Draft202012Validator.check_schema(definition.parameters)
        except SchemaError as exc:
            found.append(
                {"field": "parameters", "message": f"not a valid JSON Schema: {exc.message}"}
            )
    return found


def graph_problems(nodes: dict[str, c.Node], field: str, depth: int = 0) -> list[dict[str, str]]:
    """Return the problems of a graph of nodes (a flow's, or a for-each's inner one)."""
    found: list[dict[str, str]] = []
    for key, node in nodes.items():
        found += node_problems(node, f"{field}.{key}", depth)
        for i, link in enumerate(node.links):
            if link.to not in nodes:
                found.append(
                    {
                        "field": f"{field}.{key}.links.{i}.to",
                        "message": f"no node named {link.to!r}",
                    }
                )
    cycle = find_cycle(nodes)
    if cycle:
        found.append(
            {
                "field": f"{field}.{cycle[0]}.links",
                "message": "the links form a cycle: " + " → ".join(cycle),
            }
        )
    return found


def node_problems(node: c.Node, field: str, depth: int = 0) -> list[dict[str, str]]:
    """Return the problems of one node: its type, its config's expressions and literals."""
    model = config_model(node.type)
    if model is None:
        known = ", ".join(sorted(REGISTRY))
        return [
            {
                "field": f"{field}.type",
                "message": f"unknown node type {node.type!r} (known: {known})",
            }
        ]
    node_type = REGISTRY.get(node.type)
    raw_fields = node_type.raw_fields if node_type is not None else frozenset()
    where = f"{field}.config"
    evaluated = {k: v for k, v in node.config.items() if k not in raw_fields}
    found = expressions.check(evaluated, where)
    found += config_problems(model, node.config, where, raw_fields)
    if node.type == ForEach.name:
        inner = inner_graph(node.config)
        if (
            inner is not None
            and depth + 1 >= MAX_NESTING
            and any(n.type == ForEach.name for n in inner.values())
        ):
            found.append(
                {
                    "field": f"{where}.nodes",
                    "message": f"for-each nodes nest at most {MAX_NESTING} deep",
                }
            )
        elif inner is not None:
            found += graph_problems(inner, f"{where}.nodes", depth + 1)
    return found


def config_problems(
    model: type[BaseModel],
    config: dict[str, Any],
    field: str,
    raw_fields: frozenset[str] = frozenset(),
) -> list[dict[str, str]]:
    """Check a config's literal values against its model.

    A value that is an expression (or inside one) is not type-checked here: it gets its
    value, and is checked, when the node runs. Raw fields are never expressions.
    """
    try:
        model.model_validate(config)
    except ValidationError as exc:
        return config_errors(
            exc,
            config,
            field,
            keep=lambda path: not path or path[0] in raw_fields or not _evaluated(config, path),
        )
    return []


def _evaluated(value: Any, path: tuple[Any, ...]) -> bool:
    """Tell whether the value at ``path`` (or one holding it) is an expression."""
    for part in path:
        if expressions.is_expression(value):
            return True
        if isinstance(value, dict) and part in value:
            value = value[part]
            continue
        if not (isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)):
            return False
        value = value[part]
    return expressions.is_expression(value)


def trigger_problems(trigger: c.Trigger) -> list[dict[str, str]]:
    """Return the problems of a trigger: cron, timezone, filter, input schema."""
    found: list[dict[str, str]] = []
    if isinstance(trigger, c.ScheduleTrigger):
        if not croniter.is_valid(trigger.cron):
            found.append(
                {
                    "field": "trigger.cron",
                    "message": f"{trigger.cron!r} is not a valid cron expression",
                }
            )
        try:
            ZoneInfo(trigger.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            found.append(
                {
                    "field": "trigger.timezone",
                    "message": f"{trigger.timezone!r} is not an IANA time zone (e.g. Europe/Paris)",
                }
            )
    if isinstance(trigger, c.AppEventTrigger | c.DataRecordTrigger) and trigger.filter is not None:
        try:
            expressions.compile_expression(trigger.filter, "trigger.filter")
        except expressions.ExpressionError as exc:
            found.append({"field": exc.field, "message": exc.reason})
    if isinstance(trigger, c.ApiTrigger) and trigger.input_schema is not None:
        try:
            Draft202012Validator.check_schema(trigger.input_schema)
        except SchemaError as exc:
            found.append(
                {
                    "field": "trigger.inputSchema",
                    "message": f"not a valid JSON Schema: {exc.message}",
                }
            )
    return found


def find_cycle(nodes: dict[str, c.Node]) -> list[str] | None:
    """Return one cycle (as node keys, first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(key: str) -> list[str] | None:
        state[key] = 1
        path.append(key)
        for link in nodes[key].links:
            if link.to not in nodes:
                continue
            if state.get(link.to) == 1:
                return [*path[path.index(link.to) :], link.to]
            if link.to not in state and (cycle := visit(link.to)):
                return cycle
        path.pop()
        state[key] = 2
        return None

    for key in nodes:
        if key not in state and (cycle := visit(key)):
            return cycle
    return None


def require_valid(definition: c.FlowDefinition, prefix: str = "") -> None:
    """Raise InvalidInput naming each problem (fields prefixed, e.g. for the effective flow)."""
    found = problems(definition)
    if found:
        details = [{**p, "field": prefix + p["field"]} for p in found]
        raise InvalidInput(
            f"the flow is not valid: {details[0]['field']}: {details[0]['message']}",
            details=details,
        )
