"""Inbound webhooks: verified, extracted, published once to JetStream with the right ids."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from libs.common.contracts import instances
from tests.conftest import Stack
from tests.instances.conftest import Crm


@pytest.fixture
async def received(stack: Stack) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """Every app_event.received event published to JetStream, as it arrives."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def put(msg: Any) -> None:
        await queue.put(json.loads(msg.data))

    sub = await stack.bus.nc.subscribe(instances.APP_EVENT_RECEIVED.subject, cb=put)
    yield queue
    await sub.unsubscribe()


async def _connected(crm: Crm, customer_id: str) -> tuple[str, str]:
    connection_id = await crm.connect(customer_id)
    await crm.settled(connection_id)
    [external] = [
        s["id"] for s in crm.app.subscriptions.values() if s["connection"] == connection_id
    ]
    return connection_id, external


async def _next_for(queue: asyncio.Queue[dict[str, Any]], connection_id: str) -> dict[str, Any]:
    while True:
        event = await asyncio.wait_for(queue.get(), 10)
        if event["connectionId"] == connection_id:
            return event


async def test_webhook_events_reach_jetstream_with_ids(
    crm: Crm, received: asyncio.Queue[dict[str, Any]], http: aiohttp.ClientSession
) -> None:
    connection_id, external = await _connected(crm, "hook-1")
    payload = {
        "events": [
            {"type": "contact.created", "id": "ct-1"},
            {"type": "contact.created", "id": "ct-2"},
        ]
    }
    delivery = await crm.app.deliver(http, external, payload, delivery_id="d-1")
    assert delivery.status == 202, delivery.body
    assert json.loads(delivery.body) == {"accepted": 2, "duplicate": False}
    first, second = (
        await _next_for(received, connection_id),
        await _next_for(received, connection_id),
    )
    assert [first["payload"]["id"], second["payload"]["id"]] == ["ct-1", "ct-2"]
    [sub] = await crm.subscriptions(connection_id)
    assert first["workspaceId"] == crm.ws.id
    assert first["customerId"] == "hook-1"
    assert first["integrationKey"] == "crm"
    assert first["appEventTypeKey"] == "contact-created"
    assert first["subscriptionId"] == sub["id"]
    assert first["deliveryId"] == "d-1"


async def test_webhook_retry_of_same_delivery_publishes_nothing(
    crm: Crm, received: asyncio.Queue[dict[str, Any]], stack: Stack, http: aiohttp.ClientSession
) -> None:
    connection_id, external = await _connected(crm, "hook-2")
    payload = {"events": [{"id": "once"}]}
    assert (await crm.app.deliver(http, external, payload, delivery_id="same")).status == 202
    again = await crm.app.deliver(http, external, payload, delivery_id="same")
    assert json.loads(again.body) == {"accepted": 0, "duplicate": True}
    await _next_for(received, connection_id)
    pool = await stack.pool("instances")
    try:
        count = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = $1 AND payload->>'connectionId' = $2",
            instances.APP_EVENT_RECEIVED.subject,
            connection_id,
        )
    finally:
        await pool.close()
    assert count == 1


async def test_webhook_bad_signature_unknown_gone_and_too_large(
    crm: Crm, stack: Stack, http: aiohttp.ClientSession
) -> None:
    connection_id, external = await _connected(crm, "hook-3")
    url = crm.app.subscriptions[external]["url"]
    bad = await crm.app.deliver(
        http, external, {"events": [{"id": "x"}]}, signature="sha256=" + "0" * 64
    )
    assert bad.status == 401
    assert json.loads(bad.body)["error"]["code"] == "bad_signature"
    async with http.post(url.rsplit("/", 1)[0] + "/" + "n" * 43, json={}) as resp:
        assert resp.status == 404
    async with http.post(
        url, data=b"x" * (70 * 1024), headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 413
    pool = await stack.pool("instances")
    try:
        published = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = $1 AND payload->>'connectionId' = $2",
            instances.APP_EVENT_RECEIVED.subject,
            connection_id,
        )
    finally:
        await pool.close()
    assert published == 0
    status, _ = await crm.request("DELETE", f"/connections/{connection_id}")
    assert status == 200
    await crm.settled(connection_id, count=2)
    async with http.post(url, json={"events": []}) as resp:
        assert resp.status == 410
