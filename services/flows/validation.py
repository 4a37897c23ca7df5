"""Check a flow: its scope, its definition, and the parameter values an instance sets.

A definition's problems (node configs by type, links, cycles, cron, parameters schema) are
reported with the field each is about (``nodes.<key>.config.<field>``), all at once, so an
editor can show each at its node. A flow's scope (its level with the integration and
customer it names) decides where it may run: :func:`check_scope` when it is written,
:func:`fits` when it is deployed to a connection.
"""

from __future__ import annotations

from typing import Any, Literal

import jmespath
import jmespath.exceptions
from croniter import croniter
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from libs.common.contracts import flows as c
from libs.common.errors import InvalidInput


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


def parameter_problems(
    schema: dict[str, Any] | None, values: dict[str, Any]
) -> list[dict[str, str]]:
    """Check an instance's parameter values against its flow's parameters schema."""
    if not schema:
        return []
    return [
        {
            "field": ".".join(["customization", "parameters", *map(str, e.absolute_path)]),
            "message": e.message,
        }
        for e in Draft202012Validator(schema).iter_errors(values)
    ]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _jmespath(expression: str) -> str:
    try:
        jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"not a valid JMESPath expression: {exc}") from exc
    return expression


class HttpRequestConfig(_Config):
    """Call any URL."""

    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class ApiRequestConfig(_Config):
    """Call the app's API through the flow instance's connection."""

    path: str = Field(pattern=r"^/")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    query: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class TransformConfig(_Config):
    """Reshape the input with JMESPath."""

    expression: str = Field(min_length=1)
    _check = field_validator("expression")(_jmespath)


class FilterConfig(_Config):
    """Continue only when the JMESPath condition is truthy."""

    condition: str = Field(min_length=1)
    _check = field_validator("condition")(_jmespath)


class CreateRecordConfig(_Config):
    """Create a record in a data source."""

    data_source_key: str = Field(alias="dataSourceKey", min_length=1)
    record: dict[str, Any] = Field(default_factory=dict)


class UpdateRecordConfig(_Config):
    """Update a record in a data source."""

    data_source_key: str = Field(alias="dataSourceKey", min_length=1)
    id: str = Field(min_length=1)
    record: dict[str, Any] = Field(default_factory=dict)


class DelayConfig(_Config):
    """Wait before the next node."""

    seconds: int = Field(ge=1, le=30 * 24 * 3600)


NODE_TYPES: dict[str, type[_Config]] = {
    "http-request": HttpRequestConfig,
    "api-request": ApiRequestConfig,
    "transform": TransformConfig,
    "filter": FilterConfig,
    "create-data-record": CreateRecordConfig,
    "update-data-record": UpdateRecordConfig,
    "delay": DelayConfig,
}


def problems(definition: c.FlowDefinition) -> list[dict[str, str]]:
    """Return every problem of a definition as ``{field, message}``."""
    found: list[dict[str, str]] = []
    for key, node in definition.nodes.items():
        model = NODE_TYPES.get(node.type)
        if model is None:
            known = ", ".join(sorted(NODE_TYPES))
            found.append(
                {
                    "field": f"nodes.{key}.type",
                    "message": f"unknown node type {node.type!r} (known: {known})",
                }
            )
        else:
            try:
                model.model_validate(node.config)
            except ValidationError as exc:
                for err in exc.errors(include_url=False, include_input=False):
                    where = ".".join(str(p) for p in err["loc"])
                    found.append({"field": f"nodes.{key}.config.{where}", "message": err["msg"]})
        for i, link in enumerate(node.links):
            if link.to not in definition.nodes:
                found.append(
                    {"field": f"nodes.{key}.links.{i}.to", "message": f"no node named {link.to!r}"}
                )
    cycle = find_cycle(definition.nodes)
    if cycle:
        found.append(
            {
                "field": f"nodes.{cycle[0]}.links",
                "message": "the links form a cycle: " + " → ".join(cycle),
            }
        )
    trigger = definition.trigger
    if isinstance(trigger, c.ScheduleTrigger) and not croniter.is_valid(trigger.cron):
        found.append(
            {"field": "trigger.cron", "message": f"{trigger.cron!r} is not a valid cron expression"}
        )
    if definition.parameters is not None:
        try:
            Draft202012Validator.check_schema(definition.parameters)
        except SchemaError as exc:
            found.append(
                {"field": "parameters", "message": f"not a valid JSON Schema: {exc.message}"}
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
