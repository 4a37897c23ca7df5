"""Accepting a webhook: no SQL when its route is in memory, routes follow changes, repeats drop."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID, uuid4

import aiohttp

from libs.common.contracts import instances as c
from services.instances.keys import WEBHOOKS
from services.instances.steps import token_digest
from services.instances.webhooks import inbound_id
from tests.conftest import Stack, eventually
from tests.instances.conftest import Crm

HOT_TABLES = "subscriptions, app_event_types, webhook_deliveries, outbox"


async def _connected(crm: Crm, customer_id: str) -> tuple[str, str]:
    connection_id = await crm.connect(customer_id)
    await crm.settled(connection_id)
    [external] = [
        s["id"] for s in crm.app.subscriptions.values() if s["connection"] == connection_id
    ]
    return connection_id, external


async def _received(stack: Stack, connection_id: str) -> list[dict[str, Any]]:
    """Return the app_event.received payloads queued for a connection, oldest first."""
    pool = await stack.pool("instances")
    try:
        rows = await pool.fetch(
            "SELECT payload FROM outbox WHERE subject = $1 AND payload->>'connectionId' = $2"
            " ORDER BY created_at, id",
            c.APP_EVENT_RECEIVED.subject,
            connection_id,
        )
    finally:
        await pool.close()
    return [dict(r["payload"]) for r in rows]


def _routes_hold(stack: Stack, url: str) -> bool:
    """Tell whether the stack's instances replica routes ``url``'s token from memory."""
    digest = token_digest(url.rsplit("/", 1)[1])
    return any(WEBHOOKS in r.app and digest in r.app[WEBHOOKS].routes for r in stack.runners)


async def test_webhook_accept_hot_route_touches_no_table(
    crm: Crm, stack: Stack, http: aiohttp.ClientSession
) -> None:
    """With every table a delivery could read or write locked, a hot delivery is still 202."""
    connection_id, external = await _connected(crm, "hot-hook")
    first = await crm.app.deliver(http, external, {"events": [{"id": "warm"}]}, delivery_id="w")
    assert first.status == 202, first.body

    async def warm_handled() -> bool:  # nothing of it still holds a lock
        return len(await _received(stack, connection_id)) == 1

    await eventually(warm_handled)
    assert _routes_hold(stack, crm.app.subscriptions[external]["url"])
    pool = await stack.pool("instances")
    try:
        async with pool.acquire() as locker:
            locking = locker.transaction()
            await locking.start()
            await locker.execute(f"LOCK TABLE {HOT_TABLES} IN ACCESS EXCLUSIVE MODE")
            try:
                delivered = await asyncio.wait_for(
                    crm.app.deliver(
                        http, external, {"events": [{"id": "a"}, {"id": "b"}]}, delivery_id="hot"
                    ),
                    timeout=5,  # a read or write of a locked table would wait for the rollback
                )
            finally:
                await locking.rollback()
    finally:
        await pool.close()
    assert delivered.status == 202, delivered.body
    assert json.loads(delivered.body) == {"accepted": 2, "duplicate": False}

    async def handled() -> bool:
        return len(await _received(stack, connection_id)) == 3

    await eventually(handled)
    events = await _received(stack, connection_id)
    assert [(e["deliveryId"], e["payload"]["id"]) for e in events] == [
        ("w", "warm"),
        ("hot", "a"),
        ("hot", "b"),
    ]


async def test_webhook_accept_route_follows_a_changed_app_event_type(
    crm: Crm, http: aiohttp.ClientSession
) -> None:
    _, external = await _connected(crm, "patched-hook")
    body = {"events": [{"id": 1}], "items": [{"id": 2}, {"id": 3}]}
    first = await crm.app.deliver(http, external, body, delivery_id="p-0")
    assert json.loads(first.body) == {"accepted": 1, "duplicate": False}  # remembered now
    status, patched = await crm.request(
        "PATCH", "/app-event-types/contact-created", {"eventsPath": "items"}
    )
    assert status == 200, patched
    sent = iter(range(1, 1000))

    async def new_path_used() -> bool:  # the change's NOTIFY dropped the remembered route
        again = await crm.app.deliver(http, external, body, delivery_id=f"p-{next(sent)}")
        assert again.status == 202, again.body
        return bool(json.loads(again.body)["accepted"] == 2)

    await eventually(new_path_used, timeout=5)


async def test_webhook_accept_repeat_after_the_window_is_dropped_by_the_consumer(
    crm: Crm, stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A delivery id seen before is handled once, even under another JetStream message id."""
    connection_id, external = await _connected(crm, "late-repeat")
    delivered = await crm.app.deliver(
        http, external, {"events": [{"id": "once"}]}, delivery_id="late"
    )
    assert json.loads(delivered.body) == {"accepted": 1, "duplicate": False}

    async def handled() -> bool:
        return len(await _received(stack, connection_id)) == 1

    await eventually(handled)
    [event] = await _received(stack, connection_id)
    sub_id = UUID(event["subscriptionId"])
    _, event_id = inbound_id(sub_id, "late")
    repeat = c.InboundWebhook(  # what a retry after JetStream's window puts on the queue
        event_id=event_id,
        workspace_id=UUID(crm.ws.id),
        customer_id="late-repeat",
        connection_id=UUID(connection_id),
        integration_key="crm",
        app_event_type_key="contact-created",
        subscription_id=sub_id,
        delivery_id="late",
        events=[{"id": "once"}],
    )
    # The same id again, and (as if processed_events had forgotten it) a new id: only
    # webhook_deliveries can tell the second one apart.
    renamed = repeat.model_copy(update={"event_id": uuid4()})
    marker = repeat.model_copy(update={"event_id": uuid4(), "delivery_id": "m"})
    for message in (repeat, renamed, marker):  # the marker is handled after the repeats
        ack = await stack.bus.js.publish(
            c.INBOUND_WEBHOOK.subject,
            message.model_dump_json().encode(),
            headers={"Nats-Msg-Id": str(uuid4())},
        )
        assert not ack.duplicate

    async def marker_handled() -> bool:
        return len(await _received(stack, connection_id)) == 2

    await eventually(marker_handled)
    events = await _received(stack, connection_id)
    assert [e["deliveryId"] for e in events] == ["late", "m"]
