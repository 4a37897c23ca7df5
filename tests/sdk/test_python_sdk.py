"""The Python SDK (``sdk/python``, package ``tether_client``) against the running stack.

The sync client blocks, and the stack runs in this test's event loop: its calls go
through ``asyncio.to_thread`` so the gateway can answer them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import tether_client
from aiohttp import web
from tether_client import (
    AsyncTether,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    Tether,
    TransportError,
    ValidationError,
)
from tether_client.models import Customer

from tests.conftest import WorkspaceHandle
from tests.fakes.server import LocalServer


def admin(ws: WorkspaceHandle) -> AsyncTether:
    """Return an async admin client of ``ws`` that mints its own tokens."""
    return AsyncTether.for_admin(ws.stack.gateway_url, ws.key, ws.secret)


def new_id() -> str:
    """Return a fresh customer id."""
    return f"sdk-{secrets.token_hex(4)}"


async def test_python_sdk_customer_token_is_accepted_and_creates_the_customer(
    workspace: WorkspaceHandle,
) -> None:
    """A token minted by ``customer_token`` signs in, and its name and fields are stored."""
    customer_id = new_id()
    token = tether_client.customer_token(
        workspace.key, workspace.secret, id=customer_id, name="Ada", fields={"plan": "pro"}
    )
    async with AsyncTether(workspace.stack.gateway_url, token) as client:
        me = await client.customers.me()
    assert isinstance(me, Customer)
    assert (me.id, me.name, me.fields) == (customer_id, "Ada", {"plan": "pro"})
    async with admin(workspace) as client:
        seen = await client.customers.get(customer_id)
    assert seen.name == "Ada"
    assert seen.created_at.tzinfo is not None


async def test_python_sdk_admin_token_is_accepted_and_a_customer_token_is_not_admin(
    workspace: WorkspaceHandle,
) -> None:
    token = tether_client.admin_token(workspace.key, workspace.secret)
    async with AsyncTether(workspace.stack.gateway_url, token) as client:
        ws = await client.workspace.get()
    assert ws.key == workspace.key
    customer = tether_client.customer_token(workspace.key, workspace.secret, id=new_id())
    async with AsyncTether(workspace.stack.gateway_url, customer) as client:
        with pytest.raises(PermissionDeniedError) as refused:
            await client.workspace.get()
    assert refused.value.status == 403


async def test_python_sdk_tokens_follow_the_servers_rules(workspace: WorkspaceHandle) -> None:
    """A wrong secret, an expired token and one living past the maximum are refused by code."""
    url = workspace.stack.gateway_url
    cases = {
        "token_signature": tether_client.admin_token(workspace.key, "not-the-secret-" + "x" * 32),
        "token_expired": tether_client.admin_token(
            workspace.key, workspace.secret, ttl=10, now=time.time() - 3600
        ),
        "token_lifetime": tether_client.admin_token(workspace.key, workspace.secret, ttl=200_000),
    }
    for code, token in cases.items():
        async with AsyncTether(url, token) as client:
            with pytest.raises(AuthenticationError) as refused:
                await client.workspace.get()
        assert refused.value.code == code, refused.value
        assert refused.value.status == 401


async def test_python_sdk_sync_client_creates_reads_and_patches(workspace: WorkspaceHandle) -> None:
    customer_id = new_id()

    def scenario() -> tuple[Customer, Customer, Customer]:
        with Tether.for_admin(workspace.stack.gateway_url, workspace.key, workspace.secret) as t:
            created = t.customers.create(id=customer_id, name="Grace", fields={"a": 1, "b": 2})
            # left out: unchanged; None: sent as null (JSON Merge Patch deletes the key)
            patched = t.customers.patch(customer_id, fields={"b": None, "c": 3})
            return created, patched, t.customers.get(customer_id)

    created, patched, read = await asyncio.to_thread(scenario)
    assert created.fields == {"a": 1, "b": 2}
    assert patched.name == "Grace"
    assert patched.fields == {"a": 1, "c": 3}
    assert read.model_dump(by_alias=True) == patched.model_dump(by_alias=True)


async def test_python_sdk_iterate_walks_every_page(workspace: WorkspaceHandle) -> None:
    ids = sorted(new_id() for _ in range(7))
    async with admin(workspace) as client:
        for customer_id in ids:
            await client.customers.create(id=customer_id)
        first = await client.customers.list(limit=3, search="sdk-")
        assert len(first.items) == 3
        assert first.cursor
        seen = [c.id async for c in client.customers.iterate(limit=3, search="sdk-")]
    assert sorted(seen) == ids

    def sync_walk() -> list[str]:
        with Tether.for_admin(workspace.stack.gateway_url, workspace.key, workspace.secret) as t:
            return [c.id for c in t.customers.iterate(limit=2, search="sdk-")]

    assert sorted(await asyncio.to_thread(sync_walk)) == ids


async def test_python_sdk_errors_carry_the_envelope(workspace: WorkspaceHandle) -> None:
    admin_token = tether_client.admin_token(workspace.key, workspace.secret)
    async with admin(workspace) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.customers.get("nobody-here")
        response = await client.http.get(
            workspace.url("/customers/nobody-here"),
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        envelope = response.json()["error"]
        customer_id = new_id()
        await client.customers.create(id=customer_id)
        with pytest.raises(ConflictError) as twice:
            await client.customers.create(id=customer_id)
        with pytest.raises(ValidationError) as invalid:
            await client.customers.create(id="x" * 300)
    error = missing.value
    assert (error.status, error.code) == (404, envelope["code"])
    assert error.message == envelope["message"]
    assert error.request_id
    assert error.request_id == error.headers["x-request-id"]
    assert twice.value.status == 409
    assert invalid.value.status == 422
    assert "id" in json.dumps(invalid.value.details)
    assert isinstance(error, tether_client.TetherError)


async def test_python_sdk_network_failure_is_a_transport_error() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with AsyncTether(f"http://127.0.0.1:{port}", "t", timeout=2) as client:
        with pytest.raises(TransportError) as failed:
            await client.workspace.get()
    assert failed.value.__cause__ is not None


class FlakyGateway(LocalServer):
    """Answers each request with the next status of a script, then a customer."""

    def __init__(self, statuses: list[int], retry_after: str = "0") -> None:
        super().__init__()
        self.statuses = statuses
        self.retry_after = retry_after
        self.seen: list[tuple[str, str | None]] = []

    def build(self) -> web.Application:
        """Return the application."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        return app

    async def _answer(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.headers.get("Idempotency-Key")))
        if self.statuses:
            status = self.statuses.pop(0)
            body = {"error": {"code": "busy", "message": "try later", "requestId": "r-1"}}
            return web.json_response(body, status=status, headers={"Retry-After": self.retry_after})
        return web.json_response(
            {
                "id": "c",
                "name": None,
                "fields": {},
                "archived": False,
                "archivedAt": None,
                "createdAt": "2026-01-01T00:00:00Z",
                "updatedAt": "2026-01-01T00:00:00Z",
                "someNewField": True,
            }
        )


@pytest.fixture
async def flaky() -> AsyncIterator[FlakyGateway]:
    """A gateway stand-in whose first answers are errors."""
    async with FlakyGateway([]) as server:
        yield server


async def test_python_sdk_retries_429_and_503_when_safe(flaky: FlakyGateway) -> None:
    async with AsyncTether(flaky.url, "t", max_retries=2) as client:
        flaky.statuses = [429, 503]
        customer = await client.customers.get("c")
        assert customer.model_extra == {"someNewField": True}  # a newer server's field is kept
        assert [m for m, _ in flaky.seen] == ["GET", "GET", "GET"]

        flaky.statuses, flaky.seen = [503], []
        with pytest.raises(ServerError) as unavailable:  # a POST without a key: not repeated
            await client.customers.create(id="c")
        assert unavailable.value.retry_after == 0
        assert len(flaky.seen) == 1

        flaky.statuses, flaky.seen = [429, 429, 429], []
        with pytest.raises(RateLimitError) as limited:
            await client.customers.get("c")
        assert (limited.value.code, limited.value.request_id) == ("busy", "r-1")
        assert len(flaky.seen) == 3


async def test_python_sdk_sends_the_idempotency_key_and_retries_with_it(
    flaky: FlakyGateway,
) -> None:
    async with AsyncTether(flaky.url, "t", max_retries=1) as client:
        flaky.statuses = [503, 503]
        with pytest.raises(ServerError):
            await client.flow_runs.start("i", input={"a": 1}, idempotency_key="signup-42")
    assert flaky.seen == [("POST", "signup-42"), ("POST", "signup-42")]


def test_python_sdk_token_minter_renews_before_expiry() -> None:
    now = [1_700_000_000.0]
    minter = tether_client.TokenMinter(
        "ws_k", "s" * 40, customer_id="u", ttl=3600, renew_before=60, clock=lambda: now[0]
    )
    first = minter()
    now[0] += 3500  # 100 s left: the same token (the API caches a verified token)
    assert minter() == first
    now[0] += 41  # 59 s left: a new one, from now
    renewed = minter()
    assert renewed != first
    claims = jwt.decode(renewed, "s" * 40, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"iss": "ws_k", "sub": "u", "iat": int(now[0]), "exp": int(now[0]) + 3600}


async def test_python_sdk_async_and_sync_clients_agree(workspace: WorkspaceHandle) -> None:
    """The same calls give the same models and the same errors from both clients."""
    customer_id = new_id()
    async with admin(workspace) as client:
        await client.customers.create(id=customer_id, name="Parity")
        async_customer = await client.customers.get(customer_id)
        async_page = await client.customers.list(search=customer_id)
        with pytest.raises(NotFoundError) as async_error:
            await client.flow_runs.get("00000000-0000-0000-0000-000000000000")

    def sync_calls() -> tuple[Customer, Any, tether_client.TetherError]:
        with Tether.for_admin(workspace.stack.gateway_url, workspace.key, workspace.secret) as t:
            try:
                t.flow_runs.get("00000000-0000-0000-0000-000000000000")
            except NotFoundError as exc:
                error = exc
            return t.customers.get(customer_id), t.customers.list(search=customer_id), error

    sync_customer, sync_page, sync_error = await asyncio.to_thread(sync_calls)
    assert sync_customer == async_customer
    assert sync_page.items == async_page.items
    assert (sync_error.status, sync_error.code) == (
        async_error.value.status,
        async_error.value.code,
    )
