"""A flow's scope (level, integration, customer) when written and when deployed; its checks."""

from __future__ import annotations

from typing import Any

import pytest

from libs.common.contracts import flows as c
from libs.common.customization import parameter_problems
from libs.common.errors import InvalidInput
from services.flows.validation import (
    check_scope,
    find_cycle,
    fits,
    problems,
    require_valid,
)

API = c.ApiTrigger()
APP_EVENT = c.AppEventTrigger(app_event_type_key="contact-created")
RECORD = c.DataRecordTrigger(type="data-record-created", data_source_key="contacts")


@pytest.mark.parametrize(
    ("level", "integration_key", "customer_id", "trigger"),
    [
        ("universal", None, None, API),
        ("app", "crm", None, API),
        ("app", "crm", None, APP_EVENT),
        ("app", "crm", None, RECORD),
        ("customer", None, "cust-1", API),
        ("customer", "crm", "cust-1", API),
        ("customer", "crm", "cust-1", APP_EVENT),
    ],
)
def test_check_scope_accepts(
    level: c.Level, integration_key: str | None, customer_id: str | None, trigger: c.Trigger
) -> None:
    check_scope(level, integration_key, customer_id, trigger)


@pytest.mark.parametrize(
    ("level", "integration_key", "customer_id", "trigger", "field"),
    [
        ("universal", "crm", None, API, "level"),
        ("universal", None, "cust-1", API, "level"),
        ("universal", None, None, APP_EVENT, "trigger.type"),
        ("universal", None, None, RECORD, "trigger.type"),
        ("app", None, None, API, "integrationKey"),
        ("app", "", None, API, "integrationKey"),
        ("app", "crm", "cust-1", API, "integrationKey"),
        ("customer", "crm", None, API, "customerId"),
        ("customer", None, "", API, "customerId"),
        ("customer", None, "cust-1", RECORD, "trigger.type"),
    ],
)
def test_check_scope_refuses(
    level: c.Level,
    integration_key: str | None,
    customer_id: str | None,
    trigger: c.Trigger,
    field: str,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_scope(level, integration_key, customer_id, trigger)
    assert caught.value.details == [{"field": field, "message": caught.value.details[0]["message"]}]


@pytest.mark.parametrize(
    ("level", "flow_integration", "flow_customer", "customer", "integration", "expected"),
    [
        ("universal", None, None, "cust-1", "crm", True),
        ("app", "crm", None, "cust-1", "crm", True),
        ("app", "crm", None, "cust-1", "erp", False),
        ("customer", None, "cust-1", "cust-1", "crm", True),
        ("customer", None, "cust-1", "cust-2", "crm", False),
        ("customer", "crm", "cust-1", "cust-1", "crm", True),
        ("customer", "crm", "cust-1", "cust-1", "erp", False),
    ],
)
def test_fits(
    level: c.Level,
    flow_integration: str | None,
    flow_customer: str | None,
    customer: str,
    integration: str,
    expected: bool,
) -> None:
    assert (
        fits(
            level,
            flow_integration,
            flow_customer,
            customer_id=customer,
            integration_key=integration,
        )
        is expected
    )


SCHEMA = {
    "type": "object",
    "properties": {"channel": {"type": "string", "minLength": 1}, "n": {"type": "integer"}},
    "required": ["channel"],
}


@pytest.mark.parametrize("schema", [None, {}])
def test_parameter_problems_without_a_schema(schema: dict[str, Any] | None) -> None:
    assert parameter_problems(schema, {"anything": [1]}) == []


def test_parameter_problems_name_the_field() -> None:
    found = parameter_problems(SCHEMA, {"channel": "", "n": "x"})
    assert sorted(p["field"] for p in found) == [
        "customization.parameters.channel",
        "customization.parameters.n",
    ]


def test_parameter_problems_of_a_missing_required_value() -> None:
    assert [p["field"] for p in parameter_problems(SCHEMA, {})] == ["customization.parameters"]


def test_parameter_problems_none_for_valid_values() -> None:
    assert parameter_problems(SCHEMA, {"channel": "x", "n": 3}) == []


def definition(nodes: dict[str, Any], **more: Any) -> c.FlowDefinition:
    return c.FlowDefinition.model_validate(
        {"name": "f", "trigger": {"type": "api"}, "nodes": nodes, **more}
    )


def node(kind: str = "delay", *to: str, **config: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "config": config or {"seconds": 1},
        "links": [{"to": t} for t in to],
    }


def test_problems_none_for_a_valid_flow() -> None:
    assert problems(definition({"a": node("delay", "b"), "b": node()})) == []


def test_problems_name_every_field_at_once() -> None:
    found = problems(
        definition(
            {"a": node("nope", "ghost"), "b": node("delay", seconds=0)},
            parameters={"type": 5},
        )
    )
    assert [p["field"] for p in found] == [
        "nodes.a.type",
        "nodes.a.links.0.to",
        "nodes.b.config.seconds",
        "parameters",
    ]


def test_problems_of_a_bad_cron_and_jmespath() -> None:
    found = problems(
        c.FlowDefinition.model_validate(
            {
                "name": "f",
                "trigger": {"type": "schedule", "cron": "every day"},
                "nodes": {"t": node("transform", expression="[")},
            }
        )
    )
    assert [p["field"] for p in found] == ["nodes.t.config.expression", "trigger.cron"]


@pytest.mark.parametrize(
    ("links", "cycle"),
    [
        ({"a": []}, None),
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"a": ["b"], "b": ["c"], "c": ["b"]}, ["b", "c", "b"]),
        ({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}, None),  # a diamond is no cycle
        ({"a": ["ghost"]}, None),
    ],
)
def test_find_cycle(links: dict[str, list[str]], cycle: list[str] | None) -> None:
    nodes = {k: c.Node.model_validate(node("delay", *to)) for k, to in links.items()}
    assert find_cycle(nodes) == cycle


def test_require_valid_prefixes_fields() -> None:
    with pytest.raises(InvalidInput) as caught:
        require_valid(definition({"a": node("nope")}), prefix="flow.")
    assert [d["field"] for d in caught.value.details or []] == ["flow.nodes.a.type"]
