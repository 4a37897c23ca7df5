"""The Connect UI: OAuth code + PKCE round trips, forms, every failure, reconnects."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.conftest import Stack, bearer
from tests.connections.conftest import CONNECTION_ID, Fake, oauth_spec


async def _outbox(stack: Stack, subject: str, connection_id: str) -> int:
    pool = await stack.pool("connections")
    try:
        return int(
            await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE subject = $1 AND payload->>'connectionId' = $2",
                f"tether.evt.connections.connection.{subject}",
                connection_id,
            )
        )
    finally:
        await pool.close()


async def _connections(fake: Fake, customer_id: str) -> list[dict[str, Any]]:
    async with fake.http.get(
        fake.ws.url("/connections"), headers=await fake.customer(customer_id)
    ) as resp:
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["items"])


async def test_connect_oauth_round_trip_with_pkce(fake: Fake, stack: Stack) -> None:
    connection_id = await fake.connect("cust-1")
    authorize = fake.provider.authorize_requests[-1]
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["scope"] == "read write"
    assert fake.provider.code_exchanges == 1
    [conn] = await _connections(fake, "cust-1")
    assert conn["id"] == connection_id
    assert conn["state"] == "connected"
    assert conn["name"] == "Fake App (Ada Lovelace)"
    assert conn["account"] == {"id": "acct-1", "name": "Ada Lovelace"}
    assert "credentials" not in conn
    assert await _outbox(stack, "created", connection_id) == 1
    creds = await fake.credentials(connection_id)
    assert creds["values"]["access_token"] == fake.provider.issued_access_tokens[-1]


async def test_connect_page_posts_message_and_redirects(fake: Fake) -> None:
    url = await fake.session_url("cust-2", redirectUri="https://app.example/done?x=1")
    async with fake.http.get(url) as resp:
        assert resp.status == 200
        page = await resp.text()
        assert resp.headers["Cache-Control"] == "no-store"
    assert '"type": "tether:connection"' in page
    assert '"https://app.example"' in page  # postMessage only to the app's origin
    target = re.search(r'var to=("[^"]+")', page)
    assert target
    query = parse_qs(urlsplit(json.loads(target.group(1))).query)
    assert query["x"] == ["1"]
    assert query["status"] == ["connected"]


async def test_connect_result_goes_to_the_opener_origin_only(
    fake: Fake, http: aiohttp.ClientSession
) -> None:
    url = await fake.session_url("cust-3", openerOrigin="http://localhost:5173")
    async with fake.http.get(url) as resp:
        assert resp.status == 200
        page = await resp.text()
    assert 'postMessage(r,"http://localhost:5173")' in page
    assert '"*"' not in page
    for bad in ("localhost:5173", "http://app.example/path", "javascript:alert(1)", "*"):
        async with http.post(
            fake.ws.url("/connect-sessions"),
            json={"integrationKey": "fake", "openerOrigin": bad},
            headers=await fake.customer("c"),
        ) as resp:
            assert resp.status == 422, bad
            assert "openerOrigin" in await resp.text()


async def test_connect_state_is_single_use_and_unforgeable(fake: Fake, stack: Stack) -> None:
    url = await fake.session_url("cust-3")
    async with fake.http.get(url, allow_redirects=False) as resp:
        assert resp.status == 302
        to_provider = resp.headers["Location"]
    async with fake.http.get(to_provider, allow_redirects=False) as resp:
        callback = resp.headers["Location"]
    async with fake.http.get(callback) as resp:
        assert resp.status == 200, await resp.text()
    async with fake.http.get(callback) as resp:  # the same state again
        assert resp.status == 400
        assert "expired or was already used" in await resp.text()
    forged = re.sub(r"state=[^&]+", "state=forged-state-value", callback)
    async with fake.http.get(forged) as resp:
        assert resp.status == 400
        assert '"error": "invalid_state"' in await resp.text()
    assert fake.provider.code_exchanges == 1
    assert len(await _connections(fake, "cust-3")) == 1


async def test_connect_expired_session_stores_nothing(fake: Fake, stack: Stack) -> None:
    url = await fake.session_url("cust-4")
    async with fake.http.get(url, allow_redirects=False) as resp:
        to_provider = resp.headers["Location"]
    async with fake.http.get(to_provider, allow_redirects=False) as resp:
        callback = resp.headers["Location"]
    pool = await stack.pool("connections")
    try:
        await pool.execute(
            "UPDATE connect_sessions SET expires_at = now() - interval '1 second' WHERE workspace_id = $1",
            fake.ws.id,
        )
    finally:
        await pool.close()
    async with fake.http.get(callback) as resp:
        assert resp.status == 400
    async with fake.http.get(url) as resp:
        assert resp.status == 404
        assert "Link expired" in await resp.text()
    assert fake.provider.code_exchanges == 0
    assert await _connections(fake, "cust-4") == []


async def test_connect_provider_denial_and_failures_store_nothing(fake: Fake) -> None:
    fake.provider.auth_error = "access_denied"
    page = await fake.connect_page("cust-5")
    assert '"status": "error"' in page
    assert '"error": "access_denied"' in page
    fake.provider.auth_error = None
    fake.provider.token_failures = [500]
    page = await fake.connect_page("cust-5")
    assert '"error": "token_exchange_failed"' in page
    assert "Traceback" not in page
    fake.provider.api_failures = [401]  # the test request fails
    page = await fake.connect_page("cust-5")
    assert '"error": "credentials_refused"' in page
    assert await _connections(fake, "cust-5") == []


async def test_connect_again_reconnects_same_connection(fake: Fake, stack: Stack) -> None:
    first = await fake.connect("cust-6")
    second = await fake.connect("cust-6")
    assert first == second
    assert await _outbox(stack, "reconnected", first) == 1
    explicit = await fake.connect("cust-6", connectionId=first)
    assert explicit == first
    third = await fake.connect("cust-6", allowMultiple=True)
    assert third != first
    assert len(await _connections(fake, "cust-6")) == 2


async def test_connect_api_key_form(fake: Fake) -> None:
    fake.provider.api_keys.add("sk_live_12345678")
    body = {
        "key": "keyed",
        "name": "Keyed",
        "template": "stripe",
        "api": {"baseUrl": fake.provider.api_base, "headers": {"X-Api-Key": "{apiKey}"}},
        "test": {"path": "/me", "accountNameField": "name"},
    }
    async with fake.http.post(fake.ws.url("/integrations"), json=body, headers=fake.admin) as resp:
        assert resp.status == 201, await resp.text()
    fake.key = "keyed"
    url = await fake.session_url("cust-7")
    async with fake.http.get(url) as resp:
        assert resp.status == 200
        form = await resp.text()
    assert 'name="apiKey"' in form
    assert 'type="password"' in form
    async with fake.http.post(url, data={"apiKey": "nope"}) as resp:  # fails the template's pattern
        assert resp.status == 422
        text = await resp.text()
    assert "apiKey" in text
    assert "nope" not in text
    async with fake.http.post(url, data={"apiKey": "sk_live_wrong999"}) as resp:  # the app says no
        assert resp.status == 422
        assert "refused" in await resp.text() or "401" in await resp.text()
    async with fake.http.post(url, data={"apiKey": "sk_live_12345678"}) as resp:
        assert resp.status == 200, await resp.text()
        assert '"status": "connected"' in await resp.text()
    async with fake.http.post(url, data={"apiKey": "sk_live_12345678"}) as resp:  # single use
        assert resp.status == 404
    [conn] = await _connections(fake, "cust-7")
    assert conn["integrationKey"] == "keyed"
    creds = await fake.credentials(conn["id"])
    assert creds == {**creds, "type": "api_key", "values": {"apiKey": "sk_live_12345678"}}


async def test_connect_session_rules(fake: Fake, http: aiohttp.ClientSession) -> None:
    url = fake.ws.url("/connect-sessions")
    async with http.post(
        url, json={"integrationKey": "nope"}, headers=await fake.customer("c")
    ) as resp:
        assert resp.status == 404
    async with http.post(url, json={"integrationKey": "fake"}, headers=fake.admin) as resp:
        assert resp.status == 422  # an admin must name the customer
    async with http.post(
        url, json={"integrationKey": "fake", "customerId": "c"}, headers=fake.admin
    ) as resp:
        assert resp.status == 201
    other = await fake.connect("owner")
    body = {"integrationKey": "fake", "connectionId": other}
    async with http.post(url, json=body, headers=await fake.customer("intruder")) as resp:
        assert resp.status == 404  # another customer's connection cannot be reconnected
    async with http.post(
        url,
        json={"integrationKey": "fake", "redirectUri": "javascript:x"},
        headers=await fake.customer("c"),
    ) as resp:
        assert resp.status == 422


async def test_integrations_templates_and_secrets(fake: Fake, http: aiohttp.ClientSession) -> None:
    body = {
        "key": "hubspot",
        "template": "hubspot",
        "clientId": "hub-id",
        "clientSecret": "hub-secret",
    }
    async with http.post(fake.ws.url("/integrations"), json=body, headers=fake.admin) as resp:
        assert resp.status == 201, await resp.text()
        created = await resp.json()
    assert created["auth"]["tokenUrl"] == "https://api.hubapi.com/oauth/v1/token"
    assert created["auth"]["clientId"] == "hub-id"
    assert created["clientSecretSet"] is True
    assert "hub-secret" not in str(created)
    async with http.get(fake.ws.url("/integrations"), headers=await fake.customer("c")) as resp:
        listed = await resp.json()
    assert {i["key"] for i in listed["items"]} == {"fake", "hubspot"}
    assert "hub-secret" not in str(listed)
    async with http.post(fake.ws.url("/integrations"), json=body, headers=fake.admin) as resp:
        assert resp.status == 409
    async with http.post(
        fake.ws.url("/integrations"), json={"key": "x", "template": "nope"}, headers=fake.admin
    ) as resp:
        assert resp.status == 422
    async with http.post(
        fake.ws.url("/integrations"), json={"key": "Bad Key!"}, headers=fake.admin
    ) as resp:
        assert resp.status == 422
    async with http.patch(
        fake.ws.url("/integrations/hubspot"), json={"name": "HubSpot CRM"}, headers=fake.admin
    ) as resp:
        assert (await resp.json())["name"] == "HubSpot CRM"
    async with http.post(
        fake.ws.url("/integrations"), json={"key": "y"}, headers=await fake.customer("c")
    ) as resp:
        assert resp.status == 403
    await fake.connect("someone")
    async with http.delete(fake.ws.url("/integrations/fake"), headers=fake.admin) as resp:
        assert resp.status == 409
    async with http.delete(fake.ws.url("/integrations/hubspot"), headers=fake.admin) as resp:
        assert resp.status == 200


async def test_connect_client_secret_basic(fake: Fake, http: aiohttp.ClientSession) -> None:
    body = {
        "key": "basicauth",
        **oauth_spec(fake.provider, clientAuth="client_secret_basic", pkce=False),
    }
    async with http.post(fake.ws.url("/integrations"), json=body, headers=fake.admin) as resp:
        assert resp.status == 201
    fake.key = "basicauth"
    await fake.connect("cust-8")
    assert fake.provider.last_client_auth == "basic"
    assert "code_challenge" not in fake.provider.authorize_requests[-1]


async def test_admin_creates_connection_from_credentials(
    fake: Fake, http: aiohttp.ClientSession
) -> None:
    fake.provider.api_keys.add("imported-key")
    body: dict[str, Any] = {
        "customerId": "migrated",
        "integrationKey": "fake",
        "credentials": {
            "access_token": "at-from-elsewhere",
            "refresh_token": "rt-x",
            "expires_in": 3600,
        },
    }
    async with http.post(fake.ws.url("/connections"), json=body, headers=fake.admin) as resp:
        assert resp.status == 422  # the test request refuses a token the app never issued
    body["credentials"] = {}
    async with http.post(fake.ws.url("/connections"), json=body, headers=fake.admin) as resp:
        assert resp.status == 422
        assert (await resp.json())["error"]["details"][0]["field"] == "credentials.access_token"
    connection_id = await fake.connect("migrated")
    token = (await fake.credentials(connection_id))["values"]["access_token"]
    body["credentials"] = {"access_token": token, "expires_in": 3600}
    body["allowMultiple"] = True
    async with http.post(fake.ws.url("/connections"), json=body, headers=fake.admin) as resp:
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["customerId"] == "migrated"
    async with http.post(
        fake.ws.url("/connections"),
        json=body,
        headers=bearer(await fake.ws.customer_token("migrated")),
    ) as resp:
        assert resp.status == 403


async def test_connect_client_credentials_per_integration_and_per_connection(
    fake: Fake, http: aiohttp.ClientSession
) -> None:
    auth = {
        "type": "client_credentials",
        "tokenUrl": fake.provider.token_url,
        "clientId": fake.provider.client_id,
    }
    body = {
        "key": "m2m",
        "name": "M2M",
        "auth": auth,
        "clientSecret": fake.provider.client_secret,
        "api": {"baseUrl": fake.provider.api_base},
    }
    async with http.post(fake.ws.url("/integrations"), json=body, headers=fake.admin) as resp:
        assert resp.status == 201, await resp.text()
    fake.key = "m2m"
    url = await fake.session_url("cust-m2m")
    async with http.get(url) as resp:  # nothing to ask the customer: the grant runs at once
        assert resp.status == 200
        assert '"status": "connected"' in await resp.text()
    body = {
        "key": "m2m-own",
        "name": "Own client",
        "auth": {**auth, "clientId": None, "perConnection": True},
        "api": {"baseUrl": fake.provider.api_base},
    }
    async with http.post(fake.ws.url("/integrations"), json=body, headers=fake.admin) as resp:
        assert resp.status == 201, await resp.text()
    fake.key = "m2m-own"
    url = await fake.session_url("cust-own")
    async with http.post(
        url, data={"client_id": fake.provider.client_id, "client_secret": "wrong"}
    ) as resp:
        assert resp.status == 422
    async with http.post(
        url,
        data={"client_id": fake.provider.client_id, "client_secret": fake.provider.client_secret},
    ) as resp:
        assert resp.status == 200, await resp.text()
        connection_id = CONNECTION_ID.search(await resp.text())
    assert connection_id
    creds = await fake.credentials(connection_id.group(1))
    assert creds["type"] == "client_credentials"
    async with http.post(
        fake.ws.url(f"/connections/{connection_id.group(1)}/refresh"), headers=fake.admin
    ) as resp:
        assert resp.status == 200  # renews with the connection's own client
    assert fake.provider.last_client_auth == "post"
