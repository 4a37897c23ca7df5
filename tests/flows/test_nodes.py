"""Each node type's run() on its own, against a fake app that counts idempotency keys."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from libs.common.bus import Bus, connect
from libs.common.ssrf import GuardedResolver, UrlPolicy, guarded_session
from services.flows.nodes import REGISTRY
from services.flows.nodes.base import NodeCall, NodeConfig, NodeError, NodeResult, NodeServices
from tests.conftest import Infra, Stack, WorkspaceFactory, WorkspaceHandle, bearer
from tests.fakes.counting_app import CountingApp

OPEN = UrlPolicy(allow_private=True)
"""Tests call the fake app on 127.0.0.1, which the default policy refuses."""

MakeCall = Callable[..., NodeCall]


@pytest.fixture
async def app() -> AsyncIterator[CountingApp]:
    """A counting fake app."""
    async with CountingApp() as fake:
        yield fake


@pytest.fixture
async def bus(infra: Infra) -> AsyncIterator[Bus]:
    """A bus connection of its own (nodes other than api-request never use it)."""
    nc = await connect(infra.nats_url, "nodes-test")
    try:
        yield Bus(nc)
    finally:
        await nc.drain()


@pytest.fixture
async def services(bus: Bus) -> AsyncIterator[NodeServices]:
    """What the runner gives nodes: a guarded session allowing loopback, a short timeout."""
    async with guarded_session(OPEN) as session:
        yield NodeServices(bus=bus, http=session, url_policy=OPEN, request_timeout=2.0)


def call_factory(services: NodeServices, **defaults: Any) -> MakeCall:
    """Return a maker of NodeCalls with fresh ids (keywords override any field)."""

    def make(**overrides: Any) -> NodeCall:
        fields: dict[str, Any] = {
            "workspace_id": uuid4(),
            "run_id": uuid4(),
            "node_key": "send",
            "item": None,
            "connection_id": uuid4(),
            "customer_id": "cust-1",
            "integration_key": "counting",
            "scope": {"input": {"id": 7}},
            "services": services,
            **defaults,
            **overrides,
        }
        return NodeCall(**fields)

    return make


@pytest.fixture
def make_call(services: NodeServices) -> MakeCall:
    """A maker of NodeCalls for the test's services."""
    return call_factory(services)


async def run(node_type: str, config: dict[str, Any], call: NodeCall) -> NodeResult:
    """Prepare ``config`` (expressions resolved over the call's scope) and run the node."""
    node = REGISTRY[node_type]
    return await node.run(node.prepare(config, call.scope), call)


async def failure(node_type: str, config: dict[str, Any], call: NodeCall) -> NodeError:
    """Run the node and return the NodeError it raised."""
    with pytest.raises(NodeError) as info:
        await run(node_type, config, call)
    return info.value


# --- the registry -------------------------------------------------------------------------


def test_registry_types_have_config_docs_and_their_name() -> None:
    assert set(REGISTRY) >= {
        "http-request",
        "api-request",
        "transform",
        "filter",
        "delay",
        "for-each",
        "run-action",
        "list-data-records",
        "find-data-record",
        "create-data-record",
        "update-data-record",
        "delete-data-record",
        "apply-field-mapping",
    }
    for name, node in REGISTRY.items():
        assert node.name == name
        assert issubclass(node.config, NodeConfig)
        assert len(node.docs) > 200, name
        assert "Output" in node.docs, name
        assert "Error" in node.docs, name
    assert [n for n, t in REGISTRY.items() if t.pure] == ["transform", "filter"]
    assert REGISTRY["for-each"].raw_fields == {"nodes"}


def test_prepare_names_the_field_of_a_failing_expression_or_value(make_call: MakeCall) -> None:
    node = REGISTRY["http-request"]
    scope = {"input": {"name": "x"}}
    with pytest.raises(NodeError) as info:
        node.prepare({"url": "https://a.example", "headers": {"X": "{{ abs(input.name) }}"}}, scope)
    assert info.value.code == "invalid_expression"
    assert info.value.data["errors"][0]["field"] == "config.headers.X"
    with pytest.raises(NodeError) as info:
        node.prepare({"url": {"$expr": "input.name"}}, scope)
    assert info.value.code == "invalid_config"
    assert info.value.data["errors"][0]["field"] == "config.url"
    assert not info.value.transient


# --- http-request -------------------------------------------------------------------------


async def test_http_request_sends_and_returns_the_answer(
    app: CountingApp, make_call: MakeCall
) -> None:
    call = make_call(scope={"input": {"id": 7, "name": "Ada", "tags": ["a", "b"]}})
    config = {
        "url": app.url + "/contacts/{{ input.id }}",
        "method": "POST",
        "headers": {"X-Name": "{{ input.name }}", "X-Count": 3},
        "query": {"tag": {"$expr": "input.tags"}, "v": True},
        "body": {"name": {"$expr": "input.name"}, "n": 1},
    }
    result = await run("http-request", config, call)
    assert result.output["status"] == 200
    assert result.output["headers"]["x-counting"] == "yes"
    assert result.output["body"]["path"] == "/contacts/7"
    assert result.output["body"]["body"] == {"name": "Ada", "n": 1}
    (sent,) = app.received
    assert sent.method == "POST"
    assert sent.headers["x-name"] == "Ada"
    assert sent.headers["x-count"] == "3"
    assert sent.headers["content-type"] == "application/json"
    assert sent.query == {"tag": "a", "v": "true"}  # the fake keeps the first of a repeat
    assert sent.idempotency_key == f"{call.run_id}:send"
    assert (result.stop_branch, result.wait_until) == (False, None)


async def test_http_request_idempotency_key_is_stable_and_names_the_item(
    app: CountingApp, make_call: MakeCall
) -> None:
    run_id = uuid4()
    config = {"url": app.url + "/orders", "method": "POST", "body": {"a": 1}}
    first = make_call(run_id=run_id)
    await run("http-request", config, first)
    await run("http-request", config, first)  # a retry of the same execution
    await run("http-request", config, make_call(run_id=run_id, item="3"))
    assert app.count(f"{run_id}:send") == 2
    assert app.count(f"{run_id}:send:3") == 1
    assert app.bodies("/orders") == [{"a": 1}] * 3


async def test_http_request_5xx_is_transient(app: CountingApp, make_call: MakeCall) -> None:
    app.fail("/orders", 503, body={"message": "down"})
    error = await failure("http-request", {"url": app.url + "/orders"}, make_call())
    assert (error.code, error.transient) == ("http_error", True)
    assert error.data["status"] == 503
    assert "down" in error.data["body"]
    assert "503" in error.message


@pytest.mark.parametrize("header", ["7", "http-date"])
async def test_http_request_429_is_transient_with_retry_after(
    app: CountingApp, make_call: MakeCall, header: str
) -> None:
    value = header
    if header == "http-date":
        value = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    app.fail("/orders", 429, retry_after=value)
    error = await failure("http-request", {"url": app.url + "/orders"}, make_call())
    assert (error.code, error.transient) == ("rate_limited", True)
    assert error.retry_after is not None
    if header == "7":
        assert error.retry_after == 7.0
    else:
        assert 20 < error.retry_after <= 30


async def test_http_request_4xx_is_permanent_with_the_start_of_the_body(
    app: CountingApp, make_call: MakeCall
) -> None:
    app.fail("/orders", 422, body={"message": "x" * 5000})
    error = await failure("http-request", {"url": app.url + "/orders"}, make_call())
    assert (error.code, error.transient) == ("http_error", False)
    assert error.data["status"] == 422
    assert len(error.data["body"]) == 1024
    assert error.data["body"].startswith('{"message": "xxx')


async def test_http_request_timeout_is_transient(app: CountingApp, make_call: MakeCall) -> None:
    app.slow("/slow", 30)
    error = await failure("http-request", {"url": app.url + "/slow"}, make_call())
    assert (error.code, error.transient) == ("timeout", True)


async def test_http_request_unreachable_is_transient(make_call: MakeCall) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await failure("http-request", {"url": f"http://127.0.0.1:{port}/x"}, make_call())
    assert (error.code, error.transient) == ("unreachable", True)


async def test_http_request_text_and_empty_bodies(app: CountingApp, make_call: MakeCall) -> None:
    app.text("/page", "<p>hi</p>", "text/html")
    result = await run("http-request", {"url": app.url + "/page"}, make_call())
    assert result.output["body"] == "<p>hi</p>"
    assert result.output["headers"]["content-type"].startswith("text/html")
    app.fail("/empty", 204)
    result = await run("http-request", {"url": app.url + "/empty"}, make_call())
    assert result.output == {"status": 204, "headers": result.output["headers"], "body": None}


async def test_http_request_refuses_a_large_answer(
    app: CountingApp, services: NodeServices
) -> None:
    small = NodeServices(bus=services.bus, http=services.http, url_policy=OPEN, response_limit=100)
    app.text("/big", "y" * 1000)
    call = call_factory(small)()
    error = await failure("http-request", {"url": app.url + "/big"}, call)
    assert (error.code, error.transient) == ("response_too_large", False)


async def test_http_request_refuses_loopback_unless_allowed(
    app: CountingApp, services: NodeServices
) -> None:
    guarded = UrlPolicy()
    async with guarded_session(guarded) as session:
        strict = NodeServices(bus=services.bus, http=session, url_policy=guarded)
        make = call_factory(strict)
        for url in (app.url + "/x", app.url.replace("127.0.0.1", "localhost") + "/x"):
            error = await failure("http-request", {"url": url}, make())
            assert (error.code, error.transient) == ("url_refused", False), url
            assert "not a public address" in error.message
    assert app.received == []


class _FixedResolver(AbstractResolver):
    """Resolve every name to 127.0.0.1 (a name that looks public but is not)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


async def test_http_request_refuses_a_name_resolving_to_loopback(
    app: CountingApp, services: NodeServices
) -> None:
    guarded = UrlPolicy()
    resolver = GuardedResolver(guarded, inner=_FixedResolver())
    connector = aiohttp.TCPConnector(resolver=resolver)
    async with aiohttp.ClientSession(connector=connector) as session:
        strict = NodeServices(bus=services.bus, http=session, url_policy=guarded)
        port = app.url.rsplit(":", 1)[1]
        error = await failure(
            "http-request", {"url": f"http://app.example.com:{port}/x"}, call_factory(strict)()
        )
    assert (error.code, error.transient) == ("url_refused", False)
    assert "resolves to a refused address" in error.message
    assert app.received == []


async def test_http_request_follows_redirects_but_checks_each_target(
    app: CountingApp, make_call: MakeCall
) -> None:
    app.redirect("/old", app.url + "/new", 303)
    result = await run(
        "http-request", {"url": app.url + "/old", "method": "POST", "body": {"a": 1}}, make_call()
    )
    assert result.output["body"]["path"] == "/new"
    assert [(r.method, r.path) for r in app.received] == [("POST", "/old"), ("GET", "/new")]
    app.redirect("/meta", "http://169.254.169.254/latest/meta-data/")
    error = await failure("http-request", {"url": app.url + "/meta"}, make_call())
    assert (error.code, error.transient) == ("url_refused", False)
    assert "metadata" in error.message
    app.redirect("/loop", app.url + "/loop")
    error = await failure("http-request", {"url": app.url + "/loop"}, make_call())
    assert error.code == "too_many_redirects"


# --- api-request --------------------------------------------------------------------------


async def _connect(
    ws: WorkspaceHandle, http: aiohttp.ClientSession, app: CountingApp, customer: str
) -> UUID:
    """Create the ``counting`` integration at ``app`` and one connection; return its id."""
    admin = bearer(await ws.admin_token())
    async with http.post(ws.url("/integrations"), json=app.integration(), headers=admin) as resp:
        assert resp.status == 201, await resp.text()
    body = {
        "customerId": customer,
        "integrationKey": "counting",
        "credentials": {"apiKey": app.api_key},
    }
    async with http.post(ws.url("/connections"), json=body, headers=admin) as resp:
        assert resp.status == 201, await resp.text()
        return UUID((await resp.json())["id"])


@pytest.fixture
async def keyed_app() -> AsyncIterator[CountingApp]:
    """A counting app that wants ``X-Api-Key: secret-key-42``."""
    async with CountingApp(api_key="secret-key-42") as fake:
        yield fake


@pytest.fixture
async def api_call(
    stack: Stack,
    workspace: WorkspaceHandle,
    http: aiohttp.ClientSession,
    keyed_app: CountingApp,
    services: NodeServices,
) -> MakeCall:
    """A maker of NodeCalls on a real connection to ``keyed_app``, over the stack's bus."""
    connection_id = await _connect(workspace, http, keyed_app, "cust-api")
    on_stack = NodeServices(bus=stack.bus, http=services.http, url_policy=OPEN)
    return call_factory(
        on_stack,
        workspace_id=UUID(workspace.id),
        connection_id=connection_id,
        customer_id="cust-api",
        node_key="fetch",
    )


async def test_api_request_calls_the_app_as_the_connection(
    keyed_app: CountingApp, api_call: MakeCall
) -> None:
    call = api_call(scope={"input": {"id": 42}})
    config = {
        "path": "/contacts/{{ input.id }}",
        "method": "PATCH",
        "query": {"expand": "owner"},
        "headers": {"X-Trace": "t-1"},
        "body": {"id": {"$expr": "input.id"}},
    }
    result = await run("api-request", config, call)
    assert result.output["status"] == 200
    assert result.output["body"]["path"] == "/api/contacts/42"
    assert result.output["body"]["body"] == {"id": 42}
    assert result.output["headers"]["x-counting"] == "yes"
    (sent,) = keyed_app.received
    assert sent.method == "PATCH"
    assert sent.query == {"expand": "owner"}
    assert sent.headers["x-trace"] == "t-1"
    assert sent.headers["x-api-key"] == "secret-key-42"
    assert sent.idempotency_key == f"{call.run_id}:fetch"
    # The credential stays in the connections service: nothing of it in what the node saw.
    assert "secret-key-42" not in repr(result.output) + repr(call.logs)


async def test_api_request_maps_app_errors(keyed_app: CountingApp, api_call: MakeCall) -> None:
    keyed_app.fail("/api/orders", 502)
    error = await failure("api-request", {"path": "/orders"}, api_call())
    assert (error.code, error.transient, error.data["status"]) == ("http_error", True, 502)

    keyed_app.fail("/api/orders", 404, body={"message": "no such order"})
    error = await failure("api-request", {"path": "/orders"}, api_call())
    assert (error.code, error.transient, error.data["status"]) == ("http_error", False, 404)
    assert "no such order" in error.data["body"]

    # A Retry-After longer than the proxy waits out comes back to the runner.
    keyed_app.fail("/api/orders", 429, retry_after="120")
    error = await failure("api-request", {"path": "/orders"}, api_call())
    assert (error.code, error.transient, error.retry_after) == ("rate_limited", True, 120.0)


async def test_api_request_same_key_on_retry(keyed_app: CountingApp, api_call: MakeCall) -> None:
    call = api_call()
    keyed_app.fail("/api/orders", 500)
    with pytest.raises(NodeError):
        await run("api-request", {"path": "/orders", "method": "POST"}, call)
    await run("api-request", {"path": "/orders", "method": "POST"}, call)
    assert keyed_app.count(call.idempotency_key) == 2


async def test_api_request_refuses_a_path_outside_the_api(
    keyed_app: CountingApp, api_call: MakeCall
) -> None:
    error = await failure("api-request", {"path": "/../admin"}, api_call())
    assert (error.code, error.transient) == ("proxy_path", False)
    assert keyed_app.received == []


async def test_api_request_cannot_use_another_workspace_connection(
    keyed_app: CountingApp,
    api_call: MakeCall,
    make_workspace: WorkspaceFactory,
) -> None:
    other = await make_workspace()
    error = await failure("api-request", {"path": "/orders"}, api_call(workspace_id=UUID(other.id)))
    assert (error.code, error.transient) == ("not_found", False)
    assert keyed_app.received == []


# --- transform, filter ------------------------------------------------------------------


async def test_transform_outputs_the_expression_value(make_call: MakeCall) -> None:
    scope = {"input": {"contact": {"email": "a@x", "tags": ["t"]}}, "nodes": {"a": {"n": 2}}}
    result = await run(
        "transform",
        {"expression": "{email: input.contact.email, n: nodes.a.n, t: input.contact.tags[0]}"},
        make_call(scope=scope),
    )
    assert result.output == {"email": "a@x", "n": 2, "t": "t"}
    error = await failure("transform", {"expression": "abs(input)"}, make_call(scope=scope))
    assert (error.code, error.transient) == ("expression_failed", False)


@pytest.mark.parametrize(
    ("condition", "passed"),
    [
        ("input.vip", True),
        ("input.count", True),  # 0 is true in JMESPath
        ("input.missing", False),
        ("input.empty", False),
        ("input.count == `0` && input.vip", True),
        ("input.vip == `false`", False),
    ],
)
async def test_filter_ends_the_branch_when_falsy(
    make_call: MakeCall, condition: str, passed: bool
) -> None:
    scope = {"input": {"vip": True, "count": 0, "empty": []}}
    result = await run("filter", {"condition": condition}, make_call(scope=scope))
    assert result.output == {"passed": passed}
    assert result.stop_branch is (not passed)


# --- delay ------------------------------------------------------------------------------


async def test_delay_gives_the_time_to_continue(make_call: MakeCall) -> None:
    before = datetime.now(UTC)
    result = await run("delay", {"seconds": 30}, make_call())
    assert result.wait_until is not None
    assert (
        before + timedelta(seconds=30)
        <= result.wait_until
        <= datetime.now(UTC) + timedelta(seconds=30)
    )
    result = await run(
        "delay", {"seconds": {"$expr": "input.wait"}}, make_call(scope={"input": {"wait": 5}})
    )
    assert result.wait_until is not None
    assert result.wait_until - datetime.now(UTC) <= timedelta(seconds=5)


async def test_delay_until_a_time(make_call: MakeCall) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    result = await run("delay", {"until": later.isoformat()}, make_call())
    assert result.wait_until == later
    naive = later.replace(tzinfo=None).isoformat()  # no offset: UTC
    assert (await run("delay", {"until": naive}, make_call())).wait_until == later
    past = await run("delay", {"until": "2020-01-01T00:00:00Z"}, make_call())
    assert past.wait_until is None
    far = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    error = await failure(
        "delay", {"until": "{{ input.at }}"}, make_call(scope={"input": {"at": far}})
    )
    assert error.code == "delay_too_long"
    error = await failure("delay", {"seconds": {"$expr": "input.x"}}, make_call())
    assert error.code == "invalid_config"


# --- for-each ---------------------------------------------------------------------------


async def test_for_each_hands_items_to_the_runner_and_collects(make_call: MakeCall) -> None:
    seen: list[tuple[list[Any], int]] = []

    async def each(items: list[Any], parallelism: int) -> list[Any]:
        seen.append((items, parallelism))
        return [{"done": item} for item in items]

    config = {
        "items": {"$expr": "input.contacts"},
        "parallelism": 4,
        "nodes": {"send": {"type": "transform", "config": {"expression": "item"}}},
    }
    call = make_call(scope={"input": {"contacts": ["a", "b"]}}, each=each)
    result = await run("for-each", config, call)
    assert result.output == [{"done": "a"}, {"done": "b"}]
    assert seen == [(["a", "b"], 4)]
    # The inner graph is the runner's to resolve: its expressions are left alone here.
    config["nodes"] = {"x": {"type": "transform", "config": {"expression": "{{ [[ }}"}}}
    config["items"] = {"$expr": "input.missing"}
    assert (await run("for-each", config, call)).output == []
    assert seen[-1] == ([], 4)


async def test_for_each_without_a_runner_fails(make_call: MakeCall) -> None:
    config = {"items": [1], "nodes": {"x": {"type": "transform", "config": {"expression": "a"}}}}
    error = await failure("for-each", config, make_call())
    assert error.code == "not_supported"
