"""Self-test of the fake webhook app: subscriptions, knobs, held calls and signed deliveries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.webhook_app import FakeWebhookApp

KEY = {"X-Api-Key": "key-123"}


@pytest.fixture
async def app() -> AsyncIterator[FakeWebhookApp]:
    """Run a fake webhook app for one test."""
    async with FakeWebhookApp(api_key="key-123") as fake:
        yield fake


async def _subscribe(
    http: aiohttp.ClientSession, app: FakeWebhookApp, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Create a subscription and return the status and JSON answer."""
    async with http.post(f"{app.url}/hooks", json=body, headers=KEY) as resp:
        return resp.status, await resp.json()


async def test_subscribe_list_delete_need_the_api_key(
    http: aiohttp.ClientSession, app: FakeWebhookApp
) -> None:
    """Create, list and delete a subscription; refuse a missing key and a missing url."""
    async with http.post(f"{app.url}/hooks", json={"url": "http://x.test/h"}) as resp:
        assert resp.status == 401
        assert await resp.json() == {"message": "bad api key"}
    assert await _subscribe(http, app, {"events": ["a"]}) == (400, {"message": "url is required"})
    status, body = await _subscribe(
        http, app, {"url": "http://x.test/h", "events": ["a"], "secret": "s", "connection": "c1"}
    )
    assert (status, body) == (201, {"data": {"id": "sub_1", "url": "http://x.test/h"}})
    assert app.subscriptions["sub_1"] == {
        "id": "sub_1",
        "url": "http://x.test/h",
        "events": ["a"],
        "secret": "s",
        "connection": "c1",
    }
    assert app.subscribe_calls == 3
    async with http.get(f"{app.url}/hooks", headers=KEY) as resp:
        assert await resp.json() == {"items": [{"id": "sub_1", "url": "http://x.test/h"}]}
    async with http.delete(f"{app.url}/hooks/sub_1", headers=KEY) as resp:
        assert resp.status == 204
    async with http.delete(f"{app.url}/hooks/sub_1", headers=KEY) as resp:
        assert (resp.status, await resp.json()) == (404, {"message": "not found"})
    assert app.live_urls() == []
    assert app.unsubscribe_calls == 2
    last = app.requests[-1]
    assert (last["method"], last["path"], last["headers"]["x-api-key"]) == (
        "DELETE",
        "/hooks/sub_1",
        "key-123",
    )
    assert app.requests[0]["json"] == {"url": "http://x.test/h"}


async def test_queued_failures_then_success(
    http: aiohttp.ClientSession, app: FakeWebhookApp
) -> None:
    """Answer the queued failures in order, then work; rejected events and other endpoints."""
    app.subscribe_failures = [500, 429, 400]
    app.reject_events = {"bad.event"}
    hook = {"url": "http://x.test/h", "events": ["ok", "bad.event"]}
    assert await _subscribe(http, app, hook) == (500, {"message": "internal error"})
    async with http.post(f"{app.url}/hooks", json=hook, headers=KEY) as resp:
        assert (resp.status, resp.headers["Retry-After"]) == (429, "1")
    assert await _subscribe(http, app, hook) == (400, {"message": "unknown event type"})
    assert await _subscribe(http, app, hook) == (
        400,
        {"message": "unknown event type: bad.event"},
    )
    assert app.subscriptions == {}
    status, body = await _subscribe(http, app, {"url": "http://x.test/h", "events": ["ok"]})
    assert (status, body["data"]["id"]) == (201, "sub_1")
    assert app.subscribe_calls == 5

    app.fields_failures = [503]
    async with http.get(f"{app.url}/fields", headers=KEY) as resp:
        assert resp.status == 503
    async with http.get(f"{app.url}/fields", headers=KEY) as resp:
        assert [f["key"] for f in (await resp.json())["fields"]] == ["email", "age", "vip"]
    app.records_failures = [500]
    async with http.get(f"{app.url}/records", headers=KEY) as resp:
        assert resp.status == 500
    async with http.get(f"{app.url}/records", headers=KEY) as resp:
        body = await resp.json()
    assert ([r["id"] for r in body["records"]], body["cursor"]) == (["r1", "r2", "r3"], "c-3")


async def test_hold_subscribe_creates_before_answering(
    http: aiohttp.ClientSession, app: FakeWebhookApp
) -> None:
    """Create the subscription, signal it, and answer only once released."""
    app.hold_subscribe = True
    task = asyncio.create_task(_subscribe(http, app, {"url": "http://x.test/held"}))
    await asyncio.wait_for(app.subscribe_received.wait(), 5)
    assert app.live_urls() == ["http://x.test/held"]
    assert not task.done()
    app.release_subscribe.set()
    status, body = await asyncio.wait_for(task, 5)
    assert (status, body["data"]["id"]) == (201, "sub_1")


async def test_deliver_signs_the_exact_body(
    http: aiohttp.ClientSession, app: FakeWebhookApp
) -> None:
    """Deliver to the subscription's URL with the HMAC of the bytes sent and the delivery id."""
    received: list[tuple[bytes, dict[str, str]]] = []

    async def receive(request: web.Request) -> web.Response:
        """Keep what arrived and acknowledge it."""
        received.append((await request.read(), dict(request.headers)))
        return web.Response(text="thanks")

    receiver = web.Application()
    receiver.router.add_post("/in", receive)
    runner = web.AppRunner(receiver, access_log=None, shutdown_timeout=1)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        hook = {"url": f"http://{host}:{port}/in", "secret": "whsec"}
        status, body = await _subscribe(http, app, hook)
        assert status == 201
        sub_id = body["data"]["id"]
        delivery = await app.deliver(http, sub_id, {"event": "a", "n": 1}, delivery_id="d-1")
        assert (delivery.status, delivery.body) == (200, "thanks")
        forged = await app.deliver(http, sub_id, [1, 2], signature="sha256=00")
        assert forged.status == 200
    finally:
        await runner.cleanup()
    (raw, headers), (_, forged_headers) = received
    expected = "sha256=" + hmac.new(b"whsec", raw, hashlib.sha256).hexdigest()
    assert headers["X-Hook-Signature"] == expected == app.sign(raw, "whsec")
    assert headers["X-Delivery-Id"] == "d-1"
    assert forged_headers["X-Hook-Signature"] == "sha256=00"
    assert "X-Delivery-Id" not in forged_headers
