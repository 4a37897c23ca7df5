"""Refresh: single-flight across replicas, rotation, backoff, invalid_grant, schedules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import Stack, build_service, eventually, expire_token
from tests.connections.conftest import Fake


@pytest.fixture
async def second_replica(stack: Stack) -> AsyncIterator[None]:
    """A second connections replica in the same queue group, on its own pool and NATS link."""
    runner = web.AppRunner(build_service("connections", stack.infra, public_url=stack.gateway_url))
    await runner.setup()
    yield
    await runner.cleanup()


async def _row(stack: Stack, connection_id: str) -> dict[str, Any]:
    pool = await stack.pool("connections")
    try:
        row = await pool.fetchrow("SELECT * FROM connections WHERE id = $1", connection_id)
        assert row is not None
        return dict(row)
    finally:
        await pool.close()


async def test_refresh_100_concurrent_readers_on_2_replicas_one_provider_call(
    fake: Fake, stack: Stack, second_replica: None
) -> None:
    connection_id = await fake.connect("race")
    # Not read through the API: a replica would keep it in memory, trusted until it is due,
    # and _expire below changes the row behind that replica's back.
    old = fake.provider.issued_access_tokens[-1]
    calls_before = fake.provider.token_calls
    fake.provider.expire_access_tokens()
    fake.provider.token_delay = 0.3  # a slow provider widens the race window
    await expire_token(stack, connection_id)
    results = await asyncio.gather(*(fake.credentials(connection_id) for _ in range(100)))
    tokens = {r["values"]["access_token"] for r in results}
    assert fake.provider.token_calls - calls_before == 1
    assert len(tokens) == 1
    assert tokens != {old}
    assert tokens == {fake.provider.issued_access_tokens[-1]}


async def test_refresh_rotating_refresh_token_is_committed(fake: Fake, stack: Stack) -> None:
    connection_id = await fake.connect("rot")
    first_rt = (await fake.credentials(connection_id))["values"]["refresh_token"]
    async with fake.http.post(
        fake.ws.url(f"/connections/{connection_id}/refresh"), headers=fake.admin
    ) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["lastRefreshAt"] is not None
    second_rt = (await fake.credentials(connection_id))["values"]["refresh_token"]
    assert second_rt != first_rt
    assert second_rt == fake.provider.issued_refresh_tokens[-1]
    async with fake.http.post(
        fake.ws.url(f"/connections/{connection_id}/refresh"), headers=fake.admin
    ) as resp:
        assert resp.status == 200  # the rotated token works; the old one would be invalid_grant
    assert (await _row(stack, connection_id))["state"] == "connected"


async def test_refresh_without_new_refresh_token_keeps_old(fake: Fake) -> None:
    fake.provider.include_refresh_token_on_refresh = False
    connection_id = await fake.connect("keep")
    rt = (await fake.credentials(connection_id))["values"]["refresh_token"]
    for _ in range(2):
        async with fake.http.post(
            fake.ws.url(f"/connections/{connection_id}/refresh"), headers=fake.admin
        ) as resp:
            assert resp.status == 200
    assert (await fake.credentials(connection_id))["values"]["refresh_token"] == rt


async def test_refresh_invalid_grant_disconnects_at_once(fake: Fake, stack: Stack) -> None:
    connection_id = await fake.connect("revoked")
    fake.provider.revoked = True
    calls = fake.provider.token_calls
    await expire_token(stack, connection_id)
    async with fake.http.get(
        fake.ws.url(f"/connections/{connection_id}/credentials"), headers=fake.admin
    ) as resp:
        assert resp.status == 409
        assert (await resp.json())["error"]["code"] == "connection_disconnected"
    row = await _row(stack, connection_id)
    assert row["state"] == "disconnected"
    assert "invalid_grant" in row["last_error"]
    assert fake.provider.token_calls - calls == 1  # no retries
    pool = await stack.pool("connections")
    try:
        events = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = 'tether.evt.connections.connection.disconnected'"
            " AND payload->>'connectionId' = $1",
            connection_id,
        )
    finally:
        await pool.close()
    assert events == 1


async def test_refresh_transient_failures_back_off_then_error(fake: Fake, stack: Stack) -> None:
    connection_id = await fake.connect("flaky")
    calls = fake.provider.token_calls
    fake.provider.token_failures = [500] * 50
    await expire_token(stack, connection_id)

    async def errored() -> bool:  # the background refresher retries with backoff (3 failures max)
        return bool((await _row(stack, connection_id))["state"] == "error")

    await eventually(errored, timeout=20)
    row = await _row(stack, connection_id)
    assert row["refresh_attempts"] == 3
    assert row["last_error"] == "token endpoint answered 500"
    assert row["cooldown_until"] is not None
    assert fake.provider.token_calls - calls == 3  # bounded: no storm
    async with fake.http.get(
        fake.ws.url(f"/connections/{connection_id}"), headers=fake.admin
    ) as resp:
        body = await resp.json()
    assert (body["state"], body["refreshAttempts"]) == ("error", 3)
    assert body["lastError"] == "token endpoint answered 500"
    assert await _events(stack, "error", connection_id) == ["refresh_failed"]  # once, not per try

    # A refresh request retries a connection in error; success says it works again.
    fake.provider.token_failures = []
    async with fake.http.post(
        fake.ws.url(f"/connections/{connection_id}/refresh"), headers=fake.admin
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    assert (body["state"], body["refreshAttempts"], body["lastError"]) == ("connected", 0, None)
    assert await _events(stack, "reconnected", connection_id) == ["refreshed"]


async def _events(stack: Stack, kind: str, connection_id: str) -> list[str | None]:
    """The reasons of the connection's ``connection.<kind>`` events in the outbox."""
    pool = await stack.pool("connections")
    try:
        rows = await pool.fetch(
            "SELECT payload->>'reason' AS reason FROM outbox WHERE subject = $1"
            " AND payload->>'connectionId' = $2 ORDER BY created_at",
            f"tether.evt.connections.connection.{kind}",
            connection_id,
        )
    finally:
        await pool.close()
    return [r["reason"] for r in rows]


async def test_refresh_recovers_and_stays_connected_while_token_valid(
    fake: Fake, stack: Stack
) -> None:
    connection_id = await fake.connect("recovers")
    fake.provider.token_failures = [503]
    pool = await stack.pool("connections")
    try:  # due, but the token itself is still valid for an hour
        await pool.execute(
            "UPDATE connections SET refresh_due_at = now() WHERE id = $1", connection_id
        )
    finally:
        await pool.close()
    creds = await fake.credentials(connection_id)  # served with the current token meanwhile
    assert creds["values"]["access_token"]

    async def renewed() -> bool:
        row = await _row(stack, connection_id)
        return bool(row["refresh_attempts"] == 0 and row["version"] > 1)

    await eventually(renewed, timeout=15)
    assert (await _row(stack, connection_id))["state"] == "connected"


async def test_refresh_schedule_margin_and_missing_expiry(fake: Fake, stack: Stack) -> None:
    fake.provider.access_token_ttl = 300  # five-minute tokens: renew at half-life, not 10 min early
    connection_id = await fake.connect("short")
    row = await _row(stack, connection_id)
    lead = (row["expires_at"] - row["refresh_due_at"]).total_seconds()
    assert lead == pytest.approx(150, abs=1)
    fake.provider.access_token_ttl = None  # no expires_in: default lifetime, and scheduled checks
    other = await fake.connect("forever", allowMultiple=True)
    row = await _row(stack, other)
    lifetime = (row["expires_at"] - datetime.now(UTC)).total_seconds()
    assert lifetime == pytest.approx(3600, abs=60)
    assert row["check_due_at"] is not None


async def test_scheduled_check_disconnects_a_dead_token(fake: Fake, stack: Stack) -> None:
    """A token that never said when it expires is tested on a schedule, not left to die silently."""
    fake.provider.access_token_ttl = None
    connection_id = await fake.connect("checked")
    fake.provider.revoked = (
        True  # the app forgot us: the API says 401, refreshing says invalid_grant
    )
    fake.provider.expire_access_tokens()
    pool = await stack.pool("connections")
    try:
        await pool.execute(
            "UPDATE connections SET check_due_at = now() WHERE id = $1", connection_id
        )
    finally:
        await pool.close()

    async def disconnected() -> bool:
        return bool((await _row(stack, connection_id))["state"] == "disconnected")

    await eventually(disconnected, timeout=15)
