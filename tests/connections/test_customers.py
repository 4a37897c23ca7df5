"""Every connection's customer exists in identity: created on first sight, archived ones refused."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from libs.common.contracts import identity
from libs.common.contracts.base import Context, Principal
from libs.common.errors import Forbidden
from tests.conftest import Stack, WorkspaceFactory, WorkspaceHandle, bearer, customer_events
from tests.connections.conftest import Fake, oauth_spec
from tests.fakes.oauth_provider import FakeProvider


async def _customer(
    http: aiohttp.ClientSession, ws: WorkspaceHandle, customer_id: str
) -> tuple[int, dict[str, Any]]:
    async with http.get(
        ws.url(f"/customers/{customer_id}"), headers=bearer(await ws.admin_token())
    ) as resp:
        return resp.status, await resp.json()


async def _admin_session(fake: Fake, customer_id: str) -> tuple[int, dict[str, Any]]:
    """Start a connect session as the admin naming the customer (as the console does)."""
    async with fake.http.post(
        fake.ws.url("/connect-sessions"),
        json={"integrationKey": fake.key, "customerId": customer_id},
        headers=fake.admin,
    ) as resp:
        return resp.status, await resp.json()


async def _live_key(fake: Fake) -> str:
    """Return an access token the fake app accepts (an import needs one it issued)."""
    seed = await fake.connect("seed")
    return str((await fake.credentials(seed))["values"]["access_token"])


async def test_connect_for_the_console_test_customer_on_a_fresh_workspace(
    fake: Fake, stack: Stack
) -> None:
    """The console connects for settings.testCustomer.id: that customer is listed and found."""
    async with fake.http.get(fake.ws.url("/workspace"), headers=fake.admin) as resp:
        customer_id = (await resp.json())["settings"]["testCustomer"] or "test-customer"
    status, session = await _admin_session(fake, customer_id)
    assert status == 201, session
    async with fake.http.get(session["url"]) as page:
        assert '"status": "connected"' in await page.text()
    async with fake.http.get(fake.ws.url("/customers"), headers=fake.admin) as resp:
        assert customer_id in [c["id"] for c in (await resp.json())["items"]]
    status, body = await _customer(fake.http, fake.ws, customer_id)
    assert status == 200, body
    assert await customer_events(stack, fake.ws, "created", customer_id) == 1


async def test_connect_session_for_a_new_customer_creates_it_once(fake: Fake, stack: Stack) -> None:
    for _ in range(2):
        status, session = await _admin_session(fake, "brand-new")
        assert status == 201, session
        async with fake.http.get(session["url"]) as page:
            assert '"status": "connected"' in await page.text()
    status, body = await _customer(fake.http, fake.ws, "brand-new")
    assert status == 200, body
    assert (body["name"], body["fields"], body["archived"]) == (None, {}, False)
    assert await customer_events(stack, fake.ws, "created", "brand-new") == 1


async def test_import_for_a_new_customer_creates_it(fake: Fake, stack: Stack) -> None:
    body = {
        "customerId": "imported",
        "integrationKey": "fake",
        "credentials": {"access_token": await _live_key(fake), "expires_in": 3600},
    }
    async with fake.http.post(fake.ws.url("/connections"), json=body, headers=fake.admin) as resp:
        assert resp.status == 201, await resp.text()
    status, customer = await _customer(fake.http, fake.ws, "imported")
    assert status == 200, customer
    assert await customer_events(stack, fake.ws, "created", "imported") == 1


async def test_import_with_refused_credentials_creates_no_customer(
    fake: Fake, stack: Stack
) -> None:
    body = {
        "customerId": "never",
        "integrationKey": "fake",
        "credentials": {"access_token": "not-issued-by-the-app"},
    }
    async with fake.http.post(fake.ws.url("/connections"), json=body, headers=fake.admin) as resp:
        assert resp.status == 422, await resp.text()
    assert (await _customer(fake.http, fake.ws, "never"))[0] == 404
    assert await customer_events(stack, fake.ws, "created", "never") == 0


async def test_connect_refused_for_an_archived_customer(fake: Fake) -> None:
    existing = await fake.connect("leaver")
    async with fake.http.delete(fake.ws.url("/customers/leaver"), headers=fake.admin) as resp:
        assert resp.status == 200, await resp.text()
    status, body = await _admin_session(fake, "leaver")
    assert status == 409, body
    error = body["error"]
    assert error["code"] == "customer_archived"
    assert "leaver" in error["message"]
    imported = {
        "customerId": "leaver",
        "integrationKey": "fake",
        "credentials": {"access_token": await _live_key(fake)},
        "allowMultiple": True,
    }
    async with fake.http.post(
        fake.ws.url("/connections"), json=imported, headers=fake.admin
    ) as resp:
        assert resp.status == 409, await resp.text()
        assert (await resp.json())["error"]["code"] == "customer_archived"
    async with fake.http.get(
        fake.ws.url("/connections?customerId=leaver"), headers=fake.admin
    ) as resp:
        assert [c["id"] for c in (await resp.json())["items"]] == [existing]


async def test_connect_archived_midway_stores_nothing(fake: Fake) -> None:
    """A session opened before the archive cannot finish: the page says why, nothing is stored."""
    url = await fake.session_url("midway")
    async with fake.http.delete(fake.ws.url("/customers/midway"), headers=fake.admin) as resp:
        assert resp.status == 200, await resp.text()
    async with fake.http.get(url) as resp:
        page = await resp.text()
        assert resp.status == 400, page
    assert '"error": "customer_archived"' in page
    async with fake.http.get(
        fake.ws.url("/connections?customerId=midway"), headers=fake.admin
    ) as resp:
        assert (await resp.json())["items"] == []


async def test_connect_new_customer_missing_required_fields_is_explained(fake: Fake) -> None:
    """A required customer field a connection cannot carry: told to create the customer first."""
    schema = {"type": "object", "properties": {"plan": {"type": "string"}}, "required": ["plan"]}
    async with fake.http.patch(
        fake.ws.url("/workspace"),
        json={"settings": {"customerFieldsSchema": schema}},
        headers=fake.admin,
    ) as resp:
        assert resp.status == 200, await resp.text()
    status, body = await _admin_session(fake, "no-plan")
    assert status == 422, body
    assert body["error"]["code"] == "invalid_fields"
    assert [d["field"] for d in body["error"]["details"]] == ["customerId"]
    assert "'plan'" in body["error"]["message"]
    assert (await _customer(fake.http, fake.ws, "no-plan"))[0] == 404
    async with fake.http.post(
        fake.ws.url("/customers"),
        json={"id": "no-plan", "fields": {"plan": "pro"}},
        headers=fake.admin,
    ) as resp:
        assert resp.status == 201, await resp.text()
    status, body = await _admin_session(fake, "no-plan")
    assert status == 201, body


async def test_customer_created_for_a_connection_stays_in_its_workspace(
    stack: Stack,
    make_workspace: WorkspaceFactory,
    http: aiohttp.ClientSession,
    provider: FakeProvider,
) -> None:
    a, b = await make_workspace(), await make_workspace()
    admin_b = bearer(await b.admin_token())
    async with http.post(
        b.url("/integrations"), json={"key": "fake", **oauth_spec(provider)}, headers=admin_b
    ) as resp:
        assert resp.status == 201, await resp.text()
    fake_b = Fake(b, provider, http, admin_b)
    status, session = await _admin_session(fake_b, "only-in-b")
    assert status == 201, session
    assert (await _customer(http, b, "only-in-b"))[0] == 200
    assert (await _customer(http, a, "only-in-b"))[0] == 404
    async with http.get(a.url("/customers"), headers=bearer(await a.admin_token())) as resp:
        assert "only-in-b" not in [c["id"] for c in (await resp.json())["items"]]
    assert await customer_events(stack, a, "created", "only-in-b") == 0
    # A customer cannot open a session for another customer, nor create them that way.
    async with http.post(
        b.url("/connect-sessions"),
        json={"integrationKey": "fake", "customerId": "someone-else"},
        headers=bearer(await b.customer_token("me")),
    ) as resp:
        assert resp.status == 404, await resp.text()
    assert (await _customer(http, b, "someone-else"))[0] == 404


@pytest.mark.parametrize("principal", ["admin", "customer", "anonymous"])
async def test_customer_ensure_is_for_services_only(
    stack: Stack, workspace: WorkspaceHandle, principal: Principal
) -> None:
    ctx = Context(
        workspace_id=workspace.id,
        principal=principal,
        customer_id="x" if principal == "customer" else None,
    )
    with pytest.raises(Forbidden):
        await stack.bus.call(
            identity.CUSTOMERS_ENSURE, identity.CustomerEnsureRequest(id="x", ctx=ctx)
        )
