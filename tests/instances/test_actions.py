"""Actions: definitions at three levels with revisions, instances, customisation, deployments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.conftest import Stack, WorkspaceFactory, WorkspaceHandle, bearer, eventually
from tests.fakes.counting_app import CountingApp

TERMINAL = {"succeeded", "failed", "partial", "cancelled"}


def app_action(key: str = "create-order", **overrides: Any) -> dict[str, Any]:
    """Return an app-level action of the ``counting`` integration that POSTs an order."""
    return {
        "key": key,
        "level": "app",
        "integrationKey": "counting",
        "name": "Create an order",
        "inputSchema": {
            "type": "object",
            "properties": {"item": {"type": "string"}, "qty": {"type": "integer"}},
            "required": ["item"],
        },
        "request": {
            "method": "POST",
            "path": "/orders/{{ input.item }}",
            "query": {"source": "{{ parameters.source || 'tether' }}"},
            "body": {
                "item": {"$expr": "input.item"},
                "qty": {"$expr": "input.qty || `1`"},
                "customer": "{{ customer.id }}",
                "connection": "{{ connection.integrationKey }}",
            },
        },
        "outputMapping": "{id: body.item, count: body.qty, path: path}",
        "parameters": {"type": "object", "properties": {"source": {"type": "string"}}},
        **overrides,
    }


@dataclass
class Actions:
    """A workspace with the ``counting`` and ``other`` integrations at two fake apps."""

    ws: WorkspaceHandle
    app: CountingApp
    other: CountingApp
    http: aiohttp.ClientSession
    admin: dict[str, str]

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Call the gateway (as the admin unless ``headers`` say otherwise)."""
        async with self.http.request(
            method, self.ws.url(path), json=body, headers=headers or self.admin
        ) as resp:
            return resp.status, await resp.json()

    async def customer(self, customer_id: str) -> dict[str, str]:
        """Return the headers of a customer's token."""
        return bearer(await self.ws.customer_token(customer_id))

    async def connect(self, customer_id: str, integration: str = "counting") -> str:
        """Create a connection of ``customer_id`` to an integration (admin import of the key)."""
        body = {
            "customerId": customer_id,
            "integrationKey": integration,
            "credentials": {"apiKey": "secret-key"},
            "allowMultiple": True,
        }
        status, created = await self.request("POST", "/connections", body)
        assert status == 201, created
        return str(created["id"])

    async def define(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an action; return it."""
        status, created = await self.request("POST", "/actions", body)
        assert status == 201, created
        return dict(created)

    async def settled(self, connection_id: str) -> dict[str, Any]:
        """Wait until the connection's newest deployment finished; return it with its steps."""

        async def done() -> bool:
            status, page = await self.request("GET", f"/deployments?connectionId={connection_id}")
            assert status == 200, page
            return bool(page["items"]) and page["items"][0]["status"] in TERMINAL

        await eventually(done, timeout=20)
        _, page = await self.request("GET", f"/deployments?connectionId={connection_id}")
        status, full = await self.request("GET", f"/deployments/{page['items'][0]['id']}")
        assert status == 200, full
        return dict(full)


@pytest.fixture
async def actions_env(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> AsyncIterator[Actions]:
    """Two API-key integrations (``counting`` and ``other``), each at its own fake app."""
    async with CountingApp(api_key="secret-key") as app, CountingApp(api_key="secret-key") as other:
        env = Actions(workspace, app, other, http, bearer(await workspace.admin_token()))
        for body in (app.integration("counting"), other.integration("other")):
            status, created = await env.request("POST", "/integrations", body)
            assert status == 201, created
        yield env


# --- definitions ------------------------------------------------------------------------


async def test_actions_define_read_revise_delete(actions_env: Actions) -> None:
    env = actions_env
    created = await env.define(app_action())
    assert (created["revision"], created["level"], created["integrationKey"]) == (
        1,
        "app",
        "counting",
    )
    assert created["request"]["body"]["item"] == {"$expr": "input.item"}
    status, read = await env.request("GET", "/actions/create-order")
    assert (status, read) == (200, created)

    status, refused = await env.request("PATCH", "/actions/create-order", {"name": "Order"})
    assert (status, refused["error"]["code"]) == (422, "revision_required"), refused
    headers = {**env.admin, "If-Match": '"1"'}
    status, revised = await env.request(
        "PATCH", "/actions/create-order", {"name": "Order", "outputMapping": None}, headers
    )
    assert status == 200, revised
    assert (revised["revision"], revised["name"], revised["outputMapping"]) == (2, "Order", None)
    assert revised["request"] == created["request"]  # left out: kept
    status, stale = await env.request("PATCH", "/actions/create-order", {"name": "x"}, headers)
    assert (status, stale["error"]["code"]) == (409, "revision_conflict"), stale
    assert stale["error"]["details"] == {"currentRevision": 2}

    status, history = await env.request("GET", "/actions/create-order/revisions")
    assert status == 200, history
    assert [r["revision"] for r in history["items"]] == [2, 1]
    status, first = await env.request("GET", "/actions/create-order/revisions/1")
    assert (status, first["definition"]["name"]) == (200, "Create an order")
    status, page = await env.request("GET", "/actions?integrationKey=counting")
    assert (status, [a["key"] for a in page["items"]]) == (200, ["create-order"])

    status, deleted = await env.request("DELETE", "/actions/create-order")
    assert (status, deleted) == (200, {"deleted": True, "instances": 0})
    status, gone = await env.request("GET", "/actions/create-order")
    assert status == 404, gone


async def test_actions_list_pages_by_key(actions_env: Actions) -> None:
    for key in ("a-1", "a-2", "a-3"):
        await actions_env.define(app_action(key))
    status, first = await actions_env.request("GET", "/actions?limit=2")
    assert status == 200, first
    assert [a["key"] for a in first["items"]] == ["a-1", "a-2"]
    status, rest = await actions_env.request("GET", f"/actions?limit=2&cursor={first['cursor']}")
    assert ([a["key"] for a in rest["items"]], rest["cursor"]) == (["a-3"], None)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"key": "Not A Key"}, "key"),
        ({"level": "universal"}, "level"),
        ({"integrationKey": None}, "integrationKey"),
        ({"level": "customer", "integrationKey": None}, "customerId"),
        ({"request": None}, "request"),
        ({"implementations": {"counting": {"path": "/x"}}}, "implementations"),
        ({"request": {"path": "/orders/{{ input. }}"}}, "request.path"),
        ({"request": {"path": "/x", "body": {"a": {"$expr": "[["}}}}, "request.body.a"),
        ({"outputMapping": "body.["}, "outputMapping"),
        ({"inputSchema": {"type": 5}}, "inputSchema"),
        ({"parameters": {"type": "nope"}}, "parameters"),
        ({"integrationKey": "nowhere"}, "integrationKey"),
        ({"level": "customer", "customerId": "nobody"}, "customerId"),
        ({"request": {"path": "no-slash"}}, "request.path"),
        ({"request": {"method": "TRACE", "path": "/x"}}, "request.method"),
    ],
)
async def test_actions_bad_definitions_name_the_field(
    actions_env: Actions, overrides: dict[str, Any], field: str
) -> None:
    status, body = await actions_env.request("POST", "/actions", app_action(**overrides))
    assert status == 422, body
    fields = [d["field"] for d in body["error"]["details"]]
    assert field in fields, body


async def test_actions_universal_checks_its_implementations(actions_env: Actions) -> None:
    body = {
        "key": "ping",
        "level": "universal",
        "name": "Ping",
        "implementations": {"counting": {"path": "/ping"}, "nowhere": {"path": "/ping"}},
    }
    status, refused = await actions_env.request("POST", "/actions", body)
    assert status == 422, refused
    assert [d["field"] for d in refused["error"]["details"]] == ["implementations.nowhere"]
    status, refused = await actions_env.request("POST", "/actions", {**body, "implementations": {}})
    assert (status, refused["error"]["details"][0]["field"]) == (422, "implementations")


async def test_actions_definitions_are_admin_only_and_per_workspace(
    actions_env: Actions, make_workspace: WorkspaceFactory
) -> None:
    env = actions_env
    await env.define(app_action())
    customer = await env.customer("cust-1")
    for method, path in (("GET", "/actions"), ("GET", "/actions/create-order")):
        status, body = await env.request(method, path, headers=customer)
        assert status == 403, body
    other = await make_workspace()
    other_admin = bearer(await other.admin_token())
    for method, path, body in (
        ("GET", "/actions/create-order", None),
        ("PATCH", "/actions/create-order", {"name": "x", "revision": 1}),
        ("DELETE", "/actions/create-order", None),
        ("GET", "/actions/create-order/revisions", None),
        ("GET", "/actions/create-order/revisions/1", None),
    ):
        async with env.http.request(method, other.url(path), json=body, headers=other_admin) as r:
            assert r.status == 404, (method, path, await r.text())
    async with env.http.get(other.url("/actions"), headers=other_admin) as r:
        assert (await r.json())["items"] == []


# --- instances --------------------------------------------------------------------------


async def test_action_instances_deployed_for_matching_auto_deploy_actions(
    actions_env: Actions,
) -> None:
    env = actions_env
    await env.define(app_action("mine", autoDeploy=True))
    await env.define(app_action("manual"))  # not autoDeploy
    await env.define(app_action("elsewhere", integrationKey="other", autoDeploy=True))
    await env.request("POST", "/customers", {"id": "cust-2"})
    await env.define(app_action("theirs", level="customer", customerId="cust-2", autoDeploy=True))
    await env.define(
        {
            "key": "everywhere",
            "level": "universal",
            "name": "Ping",
            "implementations": {"other": {"path": "/ping"}},
            "autoDeploy": True,
        }
    )
    connection = await env.connect("cust-1")
    deployment = await env.settled(connection)
    assert deployment["status"] == "succeeded", deployment
    steps = {s["elementKey"]: s["status"] for s in deployment["steps"] if s["kind"] == "action"}
    assert steps == {"everywhere": "succeeded", "mine": "succeeded"}
    status, page = await env.request("GET", f"/action-instances?connectionId={connection}")
    assert status == 200, page
    assert sorted(i["actionKey"] for i in page["items"]) == ["everywhere", "mine"]
    mine = next(i for i in page["items"] if i["actionKey"] == "mine")
    assert (mine["baseRevision"], mine["outdated"], mine["enabled"]) == (1, False, True)

    # Deploying again changes nothing; a manual instance is idempotent too.
    status, _ = await env.request("POST", f"/connections/{connection}/deploy")
    assert status == 201
    await env.settled(connection)
    body = {"actionKey": "manual", "connectionId": connection}
    status, first = await env.request("POST", "/action-instances", body)
    assert status == 201, first
    status, again = await env.request("POST", "/action-instances", body)
    assert (status, again["id"]) == (201, first["id"])
    status, page = await env.request("GET", f"/action-instances?connectionId={connection}")
    assert len(page["items"]) == 3

    # A customer-level action of another customer does not fit the connection.
    status, refused = await env.request(
        "POST", "/action-instances", {"actionKey": "theirs", "connectionId": connection}
    )
    assert (status, refused["error"]["details"][0]["field"]) == (422, "connectionId"), refused


async def test_action_instances_archived_when_the_connection_goes(actions_env: Actions) -> None:
    env = actions_env
    await env.define(app_action(autoDeploy=True))
    connection = await env.connect("cust-1")
    await env.settled(connection)
    status, _ = await env.request("DELETE", f"/connections/{connection}")
    assert status == 200

    async def archived() -> bool:
        _, page = await env.request("GET", f"/action-instances?connectionId={connection}")
        return bool(page["items"]) and page["items"][0]["archived"]

    await eventually(archived, timeout=20)


async def test_action_instances_bad_input_names_the_field(actions_env: Actions) -> None:
    env = actions_env
    for method, path, body, field in (
        ("POST", "/action-instances", {"actionKey": "x", "connectionId": "nope"}, "connectionId"),
        (
            "POST",
            "/action-instances",
            {"connectionId": "8c6f7a1e-9d3b-4c2a-8f1e-2b3c4d5e6f70"},
            "actionKey",
        ),
        ("GET", "/action-instances/not-a-uuid", None, "id"),
        ("PATCH", "/action-instances/not-a-uuid", {"enabled": True}, "id"),
        ("GET", "/action-instances?connectionId=zzz", None, "connectionId"),
        ("POST", "/actions/x/run", {"input": {}}, "connectionId"),
        ("GET", "/action-runs?status=maybe", None, "status"),
        ("GET", "/action-runs?from=yesterday", None, "from"),
        ("GET", "/action-runs/not-a-uuid", None, "id"),
    ):
        status, refused = await env.request(method, path, body)
        assert status == 422, (path, refused)
        assert field in refused["error"]["message"] or any(
            d.get("field") == field for d in refused["error"].get("details") or []
        ), (path, refused)


async def test_action_instances_customisation_limits(actions_env: Actions) -> None:
    env = actions_env
    await env.define(app_action(autoDeploy=True))
    connection = await env.connect("cust-1")
    await env.settled(connection)
    _, page = await env.request("GET", f"/action-instances?connectionId={connection}")
    instance = page["items"][0]["id"]
    customer = await env.customer("cust-1")

    # An admin may change anything customisable; the effective action shows it.
    patch = {"customization": {"request": {"path": "/custom/{{ input.item }}"}}}
    status, customised = await env.request("PATCH", f"/action-instances/{instance}", patch)
    assert status == 200, customised
    assert customised["action"]["request"]["path"] == "/custom/{{ input.item }}"
    assert customised["action"]["request"]["method"] == "POST"  # merged, not replaced

    # A customer may set parameter values and switch, nothing else.
    status, refused = await env.request(
        "PATCH",
        f"/action-instances/{instance}",
        {"customization": {"outputMapping": "@"}},
        customer,
    )
    assert (status, refused["error"]["code"]) == (403, "customization_forbidden"), refused
    status, own = await env.request(
        "PATCH",
        f"/action-instances/{instance}",
        {"customization": {"parameters": {"source": "crm"}}, "enabled": False},
        customer,
    )
    assert status == 200, own
    assert (own["parameterValues"], own["enabled"]) == ({"source": "crm"}, False)
    assert own["action"]["request"]["path"] == "/custom/{{ input.item }}"  # kept

    # Values must match the parameters schema; what is not customisable is refused by name.
    for body, field in (
        ({"customization": {"parameters": {"source": 5}}}, "customization.parameters.source"),
        ({"customization": {"name": "x"}}, "customization.name"),
        ({"customization": {"request": {"path": "/{{ [ }}"}}}, "action.request.path"),
        ({"customization": {"outputMapping": "[["}}, "action.outputMapping"),
    ):
        status, refused = await env.request("PATCH", f"/action-instances/{instance}", body)
        assert status == 422, refused
        assert field in [d["field"] for d in refused["error"]["details"]], refused

    # Disabled: runs are refused until switched on again.
    status, refused = await env.request(
        "POST", f"/action-instances/{instance}/run", {"input": {"item": "a"}}
    )
    assert (status, refused["error"]["code"]) == (409, "action_instance_disabled"), refused
    assert env.app.received == []


async def test_action_instances_upgrade_and_reset(actions_env: Actions) -> None:
    env = actions_env
    await env.define(app_action(autoDeploy=True))
    connection = await env.connect("cust-1")
    await env.settled(connection)
    _, page = await env.request("GET", f"/action-instances?connectionId={connection}")
    instance = page["items"][0]["id"]
    customization = {"request": {"query": {"source": "custom"}}}
    status, _ = await env.request(
        "PATCH", f"/action-instances/{instance}", {"customization": customization}
    )
    assert status == 200

    # Revision 2 changes another part: the customisation carries over.
    headers = {**env.admin, "If-Match": "1"}
    revised = {"request": {**app_action()["request"], "headers": {"X-Version": "2"}}}
    status, body = await env.request("PATCH", "/actions/create-order", revised, headers)
    assert status == 200, body
    status, outdated = await env.request("GET", f"/action-instances/{instance}")
    assert (outdated["outdated"], outdated["latestRevision"]) == (True, 2)
    status, upgraded = await env.request("POST", f"/action-instances/{instance}/upgrade")
    assert status == 200, upgraded
    assert (upgraded["baseRevision"], upgraded["outdated"]) == (2, False)
    assert upgraded["action"]["request"]["query"] == {"source": "custom"}
    assert upgraded["action"]["request"]["headers"] == {"X-Version": "2"}

    # Revision 3 changes the customised value too: the upgrade is refused, naming it.
    changed = {"request": {**revised["request"], "query": {"source": "base"}}}
    status, body = await env.request(
        "PATCH", "/actions/create-order", changed, {**env.admin, "If-Match": "2"}
    )
    assert status == 200, body
    status, conflict = await env.request("POST", f"/action-instances/{instance}/upgrade")
    assert (status, conflict["error"]["code"]) == (409, "upgrade_conflict"), conflict
    assert conflict["error"]["details"][0]["path"] == "request.query.source"

    # Customers may not upgrade or reset; a reset drops the customisation and moves to 3.
    customer = await env.customer("cust-1")
    for op in ("upgrade", "reset"):
        status, refused = await env.request(
            "POST", f"/action-instances/{instance}/{op}", headers=customer
        )
        assert status == 403, refused
    status, reset = await env.request("POST", f"/action-instances/{instance}/reset")
    assert status == 200, reset
    assert (reset["customization"], reset["baseRevision"]) == ({}, 3)
    assert reset["action"]["request"]["query"] == {"source": "base"}


async def test_action_instances_removed_implementation_conflicts(actions_env: Actions) -> None:
    env = actions_env
    universal = {
        "key": "ping",
        "level": "universal",
        "name": "Ping",
        "implementations": {"counting": {"path": "/ping"}, "other": {"path": "/ping"}},
    }
    await env.define(universal)
    connection = await env.connect("cust-1")
    _, instance = await env.request(
        "POST", "/action-instances", {"actionKey": "ping", "connectionId": connection}
    )
    customization = {"implementations": {"counting": {"path": "/pong"}}}
    status, _ = await env.request(
        "PATCH", f"/action-instances/{instance['id']}", {"customization": customization}
    )
    assert status == 200
    status, _ = await env.request(
        "PATCH",
        "/actions/ping",
        {"implementations": {"other": {"path": "/ping"}}},
        {**env.admin, "If-Match": "1"},
    )
    assert status == 200
    status, conflict = await env.request("POST", f"/action-instances/{instance['id']}/upgrade")
    assert status == 409, conflict
    assert "implementation counting was removed" in conflict["error"]["details"][0]["reason"]


async def test_action_instances_isolation(
    actions_env: Actions, make_workspace: WorkspaceFactory
) -> None:
    env = actions_env
    await env.define(app_action(autoDeploy=True))
    connection = await env.connect("cust-1")
    await env.settled(connection)
    _, page = await env.request("GET", f"/action-instances?connectionId={connection}")
    instance = page["items"][0]["id"]
    stranger = await env.customer("cust-2")
    for method, path, body in (
        ("GET", f"/action-instances/{instance}", None),
        ("PATCH", f"/action-instances/{instance}", {"enabled": False}),
        ("POST", f"/action-instances/{instance}/run", {"input": {"item": "a"}}),
    ):
        status, refused = await env.request(method, path, body, stranger)
        assert status == 404, (path, refused)
    status, listed = await env.request("GET", "/action-instances", headers=stranger)
    assert (status, listed["items"]) == (200, [])
    status, listed = await env.request(
        "GET", f"/action-instances?connectionId={connection}", headers=await env.customer("cust-1")
    )
    assert (status, len(listed["items"])) == (200, 1)

    other = await make_workspace()
    other_admin = bearer(await other.admin_token())
    for method, path, sent in (
        ("GET", f"/action-instances/{instance}", None),
        ("PATCH", f"/action-instances/{instance}", {"enabled": False}),
        ("POST", f"/action-instances/{instance}/upgrade", None),
        ("POST", f"/action-instances/{instance}/reset", None),
        ("POST", f"/action-instances/{instance}/run", {"input": {"item": "a"}}),
        ("POST", "/action-instances", {"actionKey": "create-order", "connectionId": connection}),
    ):
        async with env.http.request(method, other.url(path), json=sent, headers=other_admin) as r:
            assert r.status == 404, (path, await r.text())
    assert env.app.received == []
