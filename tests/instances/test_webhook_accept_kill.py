"""kill -9 of the instances service right after its 202s: every accepted event, exactly once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import nats
import pytest

from libs.common.contracts import instances as c
from libs.common.contracts.base import INBOUND_STREAM
from services.instances.inbound_webhooks import INBOUND_DURABLE
from tests.conftest import eventually
from tests.e2e.stack import admin_of_new_workspace, kill_9, tether_up
from tests.fakes.webhook_app import FakeWebhookApp
from tests.instances.conftest import app_event_type

pytestmark = pytest.mark.slow

DELIVERIES = 20
EVENTS_EACH = 2


async def test_webhook_accepted_then_kill_9_every_event_once(tmp_path: Path) -> None:
    """The consumer is held (its table locked) while N deliveries get their 202s, then killed."""
    async with FakeWebhookApp(api_key="kill-crm") as app:
        with tether_up(tmp_path, TETHER_INBOUND_ACK_WAIT="2", TETHER_EVENT_BACKOFF="[0.5]") as (
            _,
            state,
            env,
        ):
            headers = admin_of_new_workspace("hook-kill", env)
            gateway = state["gatewayUrl"]
            async with aiohttp.ClientSession() as http:
                for path, body in (
                    ("/integrations", app.integration()),
                    ("/app-event-types", app_event_type()),
                    (
                        "/connections",
                        {
                            "customerId": "c1",
                            "integrationKey": "crm",
                            "credentials": {"apiKey": app.api_key},
                        },
                    ),
                ):
                    async with http.post(gateway + path, json=body, headers=headers) as resp:
                        assert resp.status == 201, await resp.text()

                async def subscribed() -> bool:
                    return bool(app.subscriptions)

                await eventually(subscribed, timeout=60)
                [external] = list(app.subscriptions)
                db = await asyncpg.connect(state["databaseUrl"])
                try:
                    hold = db.transaction()  # the consumer's first write waits behind this
                    await hold.start()
                    await db.execute("LOCK TABLE instances.webhook_deliveries IN EXCLUSIVE MODE")
                    answers = await asyncio.gather(
                        *(
                            app.deliver(
                                http,
                                external,
                                {"events": [{"n": n, "i": i} for i in range(EVENTS_EACH)]},
                                delivery_id=f"kill-{n}",
                            )
                            for n in range(DELIVERIES)
                        )
                    )
                    assert [a.status for a in answers] == [202] * DELIVERIES, answers
                    assert await _received(state) == []  # accepted, and nothing handled yet
                    await kill_9("instances", env)
                    await hold.rollback()
                finally:
                    await db.close()

            async def all_handled() -> bool:
                return len(await _received(state)) >= DELIVERIES * EVENTS_EACH

            await eventually(all_handled, timeout=90)
            await _drained(state["natsUrl"])
            received = await _received(state)
    by_delivery = Counter(r["deliveryId"] for r in received)
    assert by_delivery == {f"kill-{n}": EVENTS_EACH for n in range(DELIVERIES)}
    assert len({json.dumps(r["payload"], sort_keys=True) for r in received}) == len(received)
    assert len({r["eventId"] for r in received}) == len(received)


async def _received(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every app_event.received the instances service queued."""
    db = await asyncpg.connect(state["databaseUrl"])
    try:
        rows = await db.fetch(
            "SELECT payload FROM instances.outbox WHERE subject = $1",
            c.APP_EVENT_RECEIVED.subject,
        )
    finally:
        await db.close()
    return [
        json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"] for r in rows
    ]


async def _drained(nats_url: str) -> None:
    """Wait until the inbound consumer has settled every delivery (none pending or unacked)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()

        async def settled() -> bool:
            info = await js.consumer_info(INBOUND_STREAM, INBOUND_DURABLE)
            return bool(info.num_pending == 0 and info.num_ack_pending == 0)

        await eventually(settled, timeout=60)
    finally:
        await nc.close()
