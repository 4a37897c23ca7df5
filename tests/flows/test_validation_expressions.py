"""Saving a flow checks every expression, the trigger's extras and for-each inner graphs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.flows.conftest import flow_body
from tests.instances.conftest import Crm


def _with_node(node: dict[str, Any], key: str = "a", **extra: Any) -> dict[str, Any]:
    """Return a flow body whose nodes are just ``node`` (under ``key``)."""
    return {**flow_body(f"f{abs(hash(repr(node))) % 10_000}"), "nodes": {key: node}, **extra}


def _loop(inner: dict[str, Any], **config: Any) -> dict[str, Any]:
    """Return a for-each node over ``input.items`` with this inner graph."""
    return {
        "type": "for-each",
        "config": {"items": {"$expr": "input.items"}, "nodes": inner, **config},
    }


def _fields(body: Any) -> list[str]:
    return [d.get("field", "") for d in body["error"].get("details") or []]


BAD = [
    (
        {"type": "http-request", "config": {"url": "https://x.example/{{ input. }}"}},
        "nodes.a.config.url",
    ),
    (
        {
            "type": "http-request",
            "config": {"url": "https://x.example", "body": {"list": [1, {"$expr": "a[?"}]}},
        },
        "nodes.a.config.body.list.1",
    ),
    (
        {
            "type": "http-request",
            "config": {"url": "https://x.example", "headers": {"X-Id": "{{ nope(input) }}"}},
        },
        "nodes.a.config.headers.X-Id",
    ),
    (
        {
            "type": "api-request",
            "config": {"path": "/x", "query": {"q": {"$expr": "input.q", "other": 1}}},
        },
        "nodes.a.config.query.q",
    ),
    (
        {"type": "api-request", "config": {"path": "/x", "body": "{{ input.a"}},
        "nodes.a.config.body",
    ),
    ({"type": "filter", "config": {"condition": "input.a =="}}, "nodes.a.config.condition"),
    ({"type": "delay", "config": {"seconds": {"$expr": ""}}}, "nodes.a.config.seconds"),
    ({"type": "delay", "config": {"seconds": "soon"}}, "nodes.a.config.seconds"),
    ({"type": "delay", "config": {}}, "nodes.a.config"),
    (
        {"type": "http-request", "config": {"url": "http://169.254.169.254/latest"}},
        "nodes.a.config.url",
    ),
    (
        {"type": "transform", "config": {"expression": "a"}, "retry": {"attempts": 0}},
        "nodes.a.retry.attempts",
    ),
    (
        {"type": "transform", "config": {"expression": "a"}, "retry": {"backoff": -1}},
        "nodes.a.retry.backoff",
    ),
    (
        {"type": "transform", "config": {"expression": "a"}, "onError": "ignore"},
        "nodes.a.onError",
    ),
    # for-each: its own config, then its inner graph like a flow's
    ({"type": "for-each", "config": {"nodes": {}}}, "nodes.a.config.items"),
    (
        _loop({"x": {"type": "transform", "config": {"expression": "a"}}}, parallelism=21),
        "nodes.a.config.parallelism",
    ),
    (_loop({}), "nodes.a.config.nodes"),
    ({"type": "for-each", "config": {"items": "{{ [[ }}", "nodes": {}}}, "nodes.a.config.items"),
    (_loop({"x": {"type": "teleport"}}), "nodes.a.config.nodes.x.type"),
    (
        _loop({"x": {"type": "transform", "config": {"expression": "item.["}}}),
        "nodes.a.config.nodes.x.config.expression",
    ),
    (
        _loop(
            {
                "x": {
                    "type": "http-request",
                    "config": {"url": "https://x.example", "body": {"i": "{{ item. }}"}},
                }
            }
        ),
        "nodes.a.config.nodes.x.config.body.i",
    ),
    (
        _loop({"x": {"type": "transform", "config": {"expression": "a"}, "links": [{"to": "y"}]}}),
        "nodes.a.config.nodes.x.links.0.to",
    ),
    (
        _loop(
            {
                "x": {"type": "transform", "config": {"expression": "a"}, "links": [{"to": "y"}]},
                "y": {"type": "transform", "config": {"expression": "a"}, "links": [{"to": "x"}]},
            }
        ),
        "nodes.a.config.nodes.x.links",
    ),
    (
        _loop(
            {"x": {"type": "transform", "config": {"expression": "a"}, "retry": {"attempts": 11}}}
        ),
        "nodes.a.config.nodes.x.retry.attempts",
    ),
    (  # for-each in for-each in for-each is fine; one more level is refused
        _loop(
            {
                "x": _loop(
                    {
                        "y": _loop(
                            {"z": _loop({"t": {"type": "filter", "config": {"condition": "a"}}})}
                        )
                    }
                )
            }
        ),
        "nodes.a.config.nodes.x.config.nodes.y.config.nodes",
    ),
]


@pytest.mark.parametrize(("node", "field"), BAD)
async def test_bad_node_config_is_422_naming_the_field(
    crm: Crm, node: dict[str, Any], field: str
) -> None:
    status, body = await crm.request("POST", "/flows", _with_node(node))
    assert status == 422, body
    assert field in _fields(body), body
    assert body["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("trigger", "field"),
    [
        ({"type": "schedule", "cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "trigger.timezone"),
        (
            {"type": "schedule", "cron": "0 9 * * *", "timezone": "../etc/passwd"},
            "trigger.timezone",
        ),
        ({"type": "api", "inputSchema": {"type": "nope"}}, "trigger.inputSchema"),
        ({"type": "api", "inputSchema": {"properties": []}}, "trigger.inputSchema"),
    ],
)
async def test_bad_trigger_is_422_naming_the_field(
    crm: Crm, trigger: dict[str, Any], field: str
) -> None:
    status, body = await crm.request("POST", "/flows", {**flow_body("trig"), "trigger": trigger})
    assert status == 422, body
    assert field in _fields(body), body


@pytest.mark.parametrize(
    "trigger",
    [
        {"type": "app-event", "appEventTypeKey": "contact-created", "filter": "data.["},
        {"type": "data-record-updated", "dataSourceKey": "contacts", "filter": "nofunc(record)"},
    ],
)
async def test_bad_trigger_filter_is_422(crm: Crm, trigger: dict[str, Any]) -> None:
    body = flow_body("filtered", "app", integrationKey="crm", trigger=trigger)
    status, error = await crm.request("POST", "/flows", body)
    assert status == 422, error
    assert "trigger.filter" in _fields(error), error


async def test_expressions_are_not_type_checked_but_literals_are(crm: Crm) -> None:
    """A value that is an expression gets its type when the node runs; the rest is checked."""
    nodes = {
        "wait": {
            "type": "delay",
            "config": {"seconds": {"$expr": "input.wait"}},
            "links": [{"to": "call"}],
        },
        "call": {
            "type": "http-request",
            "config": {
                "url": "{{ parameters.endpoint }}",
                "method": {"$expr": "input.method"},
                "headers": {"X-Count": "{{ input.count }}", "X-Lit": 3},
                "query": {"ids": {"$expr": "input.ids"}},
                "body": {"contact": {"$expr": "input.contact"}, "note": "Hi {{ customer.name }}"},
            },
            "links": [{"to": "loop"}],
            "retry": {"attempts": 5, "backoff": 2},
            "onError": "continue",
        },
        "loop": _loop(
            {
                "each": {
                    "type": "api-request",
                    "config": {"path": "/contacts/{{ item.id }}", "body": {"$expr": "item"}},
                    "links": [{"to": "keep"}],
                },
                "keep": {"type": "filter", "config": {"condition": "nodes.each.status == `200`"}},
            },
            parallelism={"$expr": "parameters.parallelism"},
        ),
        "at": {"type": "delay", "config": {"until": "{{ input.at }}"}},
    }
    trigger = {"type": "api", "inputSchema": {"type": "object", "required": ["wait"]}}
    status, flow = await crm.request(
        "POST", "/flows", {**flow_body("exprs"), "nodes": nodes, "trigger": trigger}
    )
    assert status == 201, flow
    assert flow["nodes"]["call"]["config"]["method"] == {"$expr": "input.method"}
    assert flow["trigger"]["inputSchema"] == trigger["inputSchema"]
    literal = {**nodes, "at": {"type": "delay", "config": {"until": "tomorrow"}}}
    status, error = await crm.request("POST", "/flows", {**flow_body("literal"), "nodes": literal})
    assert status == 422, error
    assert _fields(error) == ["nodes.at.config.until"]


async def test_schedule_timezone_and_filters_accepted(crm: Crm) -> None:
    body = flow_body(
        "tz", trigger={"type": "schedule", "cron": "0 9 * * 1-5", "timezone": "Europe/Paris"}
    )
    status, flow = await crm.request("POST", "/flows", body)
    assert status == 201, flow
    body = flow_body(
        "flt",
        "app",
        integrationKey="crm",
        trigger={
            "type": "app-event",
            "appEventTypeKey": "contact-created",
            "filter": "payload.type == 'contact' && length(payload.tags) > `0`",
        },
    )
    status, flow = await crm.request("POST", "/flows", body)
    assert status == 201, flow


async def test_every_problem_is_reported_at_once(crm: Crm) -> None:
    nodes = {
        "a": {"type": "transform", "config": {"expression": "[["}},
        "b": {"type": "http-request", "config": {"url": "https://x.example/{{ x.[ }}"}},
        "c": _loop({"x": {"type": "filter", "config": {"condition": ""}}}),
    }
    status, error = await crm.request("POST", "/flows", {**flow_body("all"), "nodes": nodes})
    assert status == 422, error
    assert set(_fields(error)) >= {
        "nodes.a.config.expression",
        "nodes.b.config.url",
        "nodes.c.config.nodes.x.config.condition",
    }


async def test_put_and_customisation_check_expressions_too(crm: Crm) -> None:
    status, flow = await crm.request("POST", "/flows", flow_body("later"))
    assert status == 201, flow
    body = {k: v for k, v in flow_body("later").items() if k not in ("key", "level")} | {
        "revision": 1
    }
    body["nodes"] = {"shape": {"type": "transform", "config": {"expression": "{{ a.[ }}"}}}
    status, error = await crm.request("PUT", f"/flows/{flow['id']}", body)
    assert status == 422, error
    assert "nodes.shape.config.expression" in _fields(error)

    connection_id = await crm.connect("expr-cust")
    await crm.settled(connection_id)
    status, instance = await crm.request(
        "POST", "/flow-instances", {"flowId": flow["id"], "connectionId": connection_id}
    )
    assert status == 201, instance
    change = {"nodes": {"send": {"config": {"body": {"x": {"$expr": "input.["}}}}}}
    status, error = await crm.request(
        "PATCH", f"/flow-instances/{instance['id']}", {"customization": change}
    )
    assert status == 422, error
    assert _fields(error) == ["flow.nodes.send.config.body.x"]
