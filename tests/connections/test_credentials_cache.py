"""Credentials reads from memory: no SQL when hot, dropped by events, scoped as ever."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from aiohttp import web

from libs.common.contracts import connections as c
from libs.common.contracts.base import Context
from services.connections.keys import CREDENTIAL_CACHE
from tests.conftest import (
    Stack,
    WorkspaceFactory,
    another_gateway,
    bearer,
    build_service,
    eventually,
    served,
)
from tests.connections.conftest import Fake


@pytest.fixture
async def second_replica(stack: Stack) -> AsyncIterator[web.Application]:
    """A second connections replica in the same queue group, with its own memory."""
    app = build_service("connections", stack.infra, public_url=stack.gateway_url)
    runner = web.AppRunner(app)
    await runner.setup()
    yield app
    await runner.cleanup()


def _replicas(stack: Stack, *more: web.Application) -> list[web.Application]:
    """Return every connections replica's app (the stack's own and ``more``)."""
    return [r.app for r in stack.runners if CREDENTIAL_CACHE in r.app] + list(more)


async def _sql(stack: Stack, query: str, *args: object) -> None:
    pool = await stack.pool("connections")
    try:
        await pool.execute(query, *args)
    finally:
        await pool.close()


async def _events_sent(stack: Stack, connection_id: str) -> None:
    """Wait until the relay has published every event about the connection."""
    pool = await stack.pool("connections")
    try:

        async def sent() -> bool:
            pending = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
                " AND payload->>'connectionId' = $1",
                connection_id,
            )
            return bool(pending == 0)

        await eventually(sent)
    finally:
        await pool.close()


async def _read(fake: Fake, connection_id: str) -> tuple[int, dict[str, Any]]:
    async with fake.http.get(
        fake.ws.url(f"/connections/{connection_id}/credentials"), headers=fake.admin
    ) as resp:
        return resp.status, dict(await resp.json())


async def test_credentials_cache_hot_read_makes_no_sql_and_events_drop_it(
    fake: Fake, stack: Stack
) -> None:
    """Behind the cache's back the row says 'disconnected'; memory answers until an event."""
    connection_id = await fake.connect("hot")
    await _events_sent(stack, connection_id)  # connection.created must not drop it later
    key = (UUID(fake.ws.id), UUID(connection_id))
    [replica] = _replicas(stack)

    async def remembered() -> bool:
        await fake.credentials(connection_id)
        return key in replica[CREDENTIAL_CACHE]

    await eventually(remembered)
    first = await fake.credentials(connection_id)
    await _sql(stack, "UPDATE connections SET state = 'disconnected' WHERE id = $1", connection_id)
    # A database read would now answer 409 connection_disconnected: this one never asked.
    status, again = await _read(fake, connection_id)
    assert status == 200, again
    assert again["values"] == first["values"]
    reconnected = await fake.connect("hot")  # the real change, through the API
    assert reconnected == connection_id
    newest = fake.provider.issued_access_tokens[-1]
    assert newest != first["values"]["access_token"]

    async def sees_reconnection() -> bool:  # connection.reconnected dropped the entry
        status, body = await _read(fake, connection_id)
        return status == 200 and body["values"]["access_token"] == newest

    await eventually(sees_reconnection)


async def _refreshed_events(stack: Stack, connection_id: str) -> int:
    pool = await stack.pool("connections")
    try:
        return int(
            await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE subject = $1 AND payload->>'connectionId' = $2",
                c.CONNECTION_REFRESHED.subject,
                connection_id,
            )
        )
    finally:
        await pool.close()


async def test_credentials_cache_due_token_goes_to_the_database_and_renews(
    fake: Fake, stack: Stack
) -> None:
    seed = await fake.connect("seed")
    live = (await fake.credentials(seed))["values"]["access_token"]
    body = {
        "customerId": "due-soon",
        "integrationKey": "fake",
        "credentials": {
            "access_token": live,
            "refresh_token": fake.provider.grant_refresh_token(),
            "expires_in": 2,  # renewal due after one second
        },
    }
    async with fake.http.post(fake.ws.url("/connections"), json=body, headers=fake.admin) as resp:
        assert resp.status == 201, await resp.text()
        connection_id = str((await resp.json())["id"])
    calls = fake.provider.refresh_calls
    first = await fake.credentials(connection_id)  # remembered only until it is due
    assert first["values"]["access_token"] == live

    async def renewed() -> bool:
        creds = await fake.credentials(connection_id)
        return bool(creds["values"]["access_token"] != live)

    await eventually(renewed)
    creds = await fake.credentials(connection_id)
    assert creds["values"]["access_token"] == fake.provider.issued_access_tokens[-1]
    assert fake.provider.refresh_calls - calls == 1  # single-flight, not one per read
    # Renewed when due: no cache could still hold the old token, so nobody is told.
    assert await _refreshed_events(stack, connection_id) == 0


async def test_credentials_cache_archived_connection_unreadable_on_every_replica(
    fake: Fake, stack: Stack, second_replica: web.Application
) -> None:
    connection_id = await fake.connect("archived")
    await _events_sent(stack, connection_id)
    key = (UUID(fake.ws.id), UUID(connection_id))
    replicas = _replicas(stack, second_replica)
    assert len(replicas) == 2

    async def both_remember() -> bool:  # the queue group spreads reads over both replicas
        # Straight to the service: the gateway would answer again from what it keeps.
        await stack.bus.call(
            c.CREDENTIALS_GET,
            c.CredentialsGetRequest(
                id=UUID(connection_id),
                ctx=Context(workspace_id=UUID(fake.ws.id), principal="admin"),
            ),
        )
        return all(key in app[CREDENTIAL_CACHE] for app in replicas)

    await eventually(both_remember)
    async with fake.http.delete(
        fake.ws.url(f"/connections/{connection_id}"), headers=fake.admin
    ) as resp:
        assert resp.status == 200, await resp.text()

    async def both_forgot() -> bool:  # connection.archived reached every replica
        return not any(key in app[CREDENTIAL_CACHE] for app in replicas)

    await eventually(both_forgot)
    for _ in range(10):  # whichever replica answers
        status, body = await _read(fake, connection_id)
        assert status == 404, body


async def test_credentials_cache_keeps_other_callers_out(
    fake: Fake, make_workspace: WorkspaceFactory
) -> None:
    """A cached connection is still 404 to another workspace and 403 to a customer."""
    connection_id = await fake.connect("scoped")
    for _ in range(3):
        await fake.credentials(connection_id)  # hot in memory
    other = await make_workspace()
    async with fake.http.get(
        other.url(f"/connections/{connection_id}/credentials"),
        headers=bearer(await other.admin_token()),
    ) as resp:
        assert resp.status == 404, await resp.text()
    async with fake.http.get(
        fake.ws.url(f"/connections/{connection_id}/credentials"),
        headers=await fake.customer("scoped"),
    ) as resp:
        assert resp.status == 403, await resp.text()  # credentials are admin-only, as before


async def test_credentials_cache_gateway_keeps_hot_reads_until_a_change(
    fake: Fake, stack: Stack
) -> None:
    """The gateway answers a hot read again without asking; its own writes drop it at once."""
    connection_id = await fake.connect("kept")
    await _events_sent(stack, connection_id)
    first = await fake.credentials(connection_id)
    asked = await served(stack, c.CREDENTIALS_GET)
    for _ in range(5):
        assert await fake.credentials(connection_id) == first
    assert await served(stack, c.CREDENTIALS_GET) == asked  # not one call more
    async with fake.http.post(
        fake.ws.url(f"/connections/{connection_id}/refresh"), headers=fake.admin
    ) as resp:
        assert resp.status == 200, await resp.text()
    renewed = await fake.credentials(connection_id)  # the same replica: at once
    assert renewed["values"]["access_token"] == fake.provider.issued_access_tokens[-1]
    assert renewed["values"]["access_token"] != first["values"]["access_token"]
    assert await served(stack, c.CREDENTIALS_GET) == asked + 1


async def test_credentials_cache_other_gateways_follow_the_archive(
    fake: Fake, stack: Stack
) -> None:
    connection_id = await fake.connect("kept-elsewhere")
    await _events_sent(stack, connection_id)
    async with another_gateway(stack.infra) as (_, other):
        # Spelt in capitals: the same connection, kept under the key its events drop.
        path = f"/connections/{connection_id.upper()}/credentials"
        for _ in range(2):  # kept there now
            async with fake.http.get(other + path, headers=fake.admin) as resp:
                assert resp.status == 200, await resp.text()
        async with fake.http.delete(
            fake.ws.url(f"/connections/{connection_id}"), headers=fake.admin
        ) as resp:
            assert resp.status == 200, await resp.text()

        async def gone() -> bool:  # connection.archived reached the other gateway
            async with fake.http.get(other + path, headers=fake.admin) as resp:
                return resp.status == 404

        await eventually(gone)


async def test_credentials_cache_a_renewal_elsewhere_reaches_every_gateway(
    fake: Fake, stack: Stack
) -> None:
    """``connection.refreshed`` drops the old credentials every gateway keeps."""
    connection_id = await fake.connect("renewed-elsewhere")
    await _events_sent(stack, connection_id)
    old = (await fake.credentials(connection_id))["values"]["access_token"]
    async with another_gateway(stack.infra) as (_, other):
        async with fake.http.post(
            f"{other}/connections/{connection_id}/refresh", headers=fake.admin
        ) as resp:
            assert resp.status == 200, await resp.text()
        newest = fake.provider.issued_access_tokens[-1]
        assert newest != old
        assert await _refreshed_events(stack, connection_id) == 1  # renewed early: said so

        async def followed() -> bool:  # the stack's own gateway kept the old ones
            creds = await fake.credentials(connection_id)
            return bool(creds["values"]["access_token"] == newest)

        await eventually(followed)
