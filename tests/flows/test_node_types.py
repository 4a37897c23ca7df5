"""The node and trigger type catalogues: who may read them, and schemas that fit the models."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter, ValidationError

from libs.common.contracts import flows as c
from libs.common.contracts.schemas import EXPRESSION
from services.flows.nodes import REGISTRY
from tests.conftest import WorkspaceHandle, bearer

# A config each node type takes (as a flow holds it, literal values), and one it refuses.
NODE_EXAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "http-request": (
        {
            "url": "https://crm.example.com/contacts",
            "method": "POST",
            "headers": {"Accept": "application/json", "X-Count": 3},
            "query": {"page": 1, "tags": ["a", "b"]},
            "body": {"name": "Ada"},
        },
        {"url": "ftp://crm.example.com", "method": "FETCH"},
    ),
    "api-request": ({"path": "/contacts", "method": "GET"}, {"path": "contacts"}),
    "transform": ({"expression": "input.contact"}, {"expression": ""}),
    "filter": ({"condition": "input.vip"}, {}),
    "delay": ({"seconds": 30}, {"seconds": 0}),
    "for-each": (
        {
            "items": [1, 2],
            "nodes": {"t": {"type": "transform", "config": {"expression": "item"}}},
            "parallelism": 2,
        },
        {"items": [1], "nodes": {}, "parallelism": 50},
    ),
    "run-action": ({"actionKey": "create-contact", "input": {"a": 1}}, {"actionKey": "Bad Key"}),
    "apply-field-mapping": (
        {"fieldMappingKey": "contacts", "direction": "import", "input": {"a": 1}},
        {"fieldMappingKey": "contacts", "direction": "sideways"},
    ),
    "create-data-record": ({"dataSourceKey": "contacts", "record": {"name": "Ada"}}, {}),
    "find-data-record": ({"dataSourceKey": "contacts", "id": "42"}, {"dataSourceKey": "contacts"}),
}

TRIGGER_EXAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "api": ({"type": "api", "inputSchema": {"type": "object"}}, {"type": "api", "cron": "* * *"}),
    "app-event": (
        {"type": "app-event", "appEventTypeKey": "contact-created", "filter": "data.vip"},
        {"type": "app-event"},
    ),
    "schedule": (
        {"type": "schedule", "cron": "0 9 * * 1", "timezone": "Europe/Paris"},
        {"type": "schedule", "cron": ""},
    ),
    "data-record-updated": (
        {"type": "data-record-updated", "dataSourceKey": "contacts"},
        {"type": "data-record-created", "dataSourceKey": "contacts"},
    ),
}


async def _get(
    http: aiohttp.ClientSession, ws: WorkspaceHandle, path: str, token: str | None
) -> tuple[int, Any]:
    headers = bearer(token) if token else {}
    async with http.get(ws.url(path), headers=headers) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("path", ["/flow-node-types", "/flow-trigger-types"])
async def test_node_types_need_a_token_and_are_served_to_admins_and_customers(
    http: aiohttp.ClientSession, workspace: WorkspaceHandle, path: str
) -> None:
    status, body = await _get(http, workspace, path, None)
    assert status == 401, body
    admin_status, admin = await _get(http, workspace, path, await workspace.admin_token())
    assert admin_status == 200, admin
    customer_status, customer = await _get(
        http, workspace, path, await workspace.customer_token("cus-1")
    )
    assert customer_status == 200, customer
    assert customer == admin
    for item in admin["items"]:
        assert set(item) >= {"type", "title", "description"}
        Draft202012Validator.check_schema(item.get("configSchema") or item["schema"])


async def test_node_types_list_every_registered_type_with_its_config_schema(
    http: aiohttp.ClientSession, workspace: WorkspaceHandle
) -> None:
    status, body = await _get(http, workspace, "/flow-node-types", await workspace.admin_token())
    assert status == 200, body
    items = {item["type"]: item for item in body["items"]}
    assert list(items) == list(REGISTRY)
    http_request = items["http-request"]
    assert http_request["title"] == "HTTP request"
    assert http_request["description"] == REGISTRY["http-request"].docs
    schema = http_request["configSchema"]
    assert schema["required"] == ["url"]
    assert schema["properties"]["url"]["title"] == "URL"
    assert schema["properties"]["url"][EXPRESSION] is True
    # Keys by alias, titles fit for a label; a for-each's inner graph is not an expression.
    assert items["run-action"]["configSchema"]["properties"]["actionKey"]["title"] == "Action key"
    for_each = items["for-each"]["configSchema"]
    assert EXPRESSION not in for_each["properties"]["nodes"]
    assert for_each["properties"]["items"][EXPRESSION] is True
    assert "Node" in for_each["$defs"]


async def test_node_types_schemas_take_real_configs_and_refuse_bad_ones(
    http: aiohttp.ClientSession, workspace: WorkspaceHandle
) -> None:
    status, body = await _get(http, workspace, "/flow-node-types", await workspace.admin_token())
    assert status == 200, body
    schemas = {item["type"]: item["configSchema"] for item in body["items"]}
    for node_type, (good, bad) in NODE_EXAMPLES.items():
        validator = Draft202012Validator(schemas[node_type])
        assert not list(validator.iter_errors(good)), (node_type, good)
        assert list(validator.iter_errors(bad)), (node_type, bad)
        # The schema says what the runner's model says.
        REGISTRY[node_type].config.model_validate(good)
        with pytest.raises(ValidationError):
            REGISTRY[node_type].config.model_validate(bad)


async def test_node_types_trigger_schemas_take_real_triggers_and_refuse_bad_ones(
    http: aiohttp.ClientSession, workspace: WorkspaceHandle
) -> None:
    status, body = await _get(http, workspace, "/flow-trigger-types", await workspace.admin_token())
    assert status == 200, body
    items = {item["type"]: item for item in body["items"]}
    assert list(items) == [
        "api",
        "app-event",
        "schedule",
        "data-record-created",
        "data-record-updated",
        "data-record-deleted",
    ]
    assert items["data-record-deleted"]["description"] == (
        "Run when a record of a data source is deleted."
    )
    trigger = TypeAdapter(c.Trigger)
    for kind, (good, bad) in TRIGGER_EXAMPLES.items():
        schema = items[kind]["schema"]
        assert schema["properties"]["type"]["const"] == kind
        assert "type" in schema["required"]
        validator = Draft202012Validator(schema)
        assert not list(validator.iter_errors(good)), (kind, good)
        assert list(validator.iter_errors(bad)), (kind, bad)
        trigger.validate_python(good)
    # Together they are the union a flow's trigger is.
    union = Draft202012Validator({"oneOf": [item["schema"] for item in items.values()]})
    assert not list(union.iter_errors(TRIGGER_EXAMPLES["schedule"][0]))
    assert list(union.iter_errors({"type": "webhook"}))
