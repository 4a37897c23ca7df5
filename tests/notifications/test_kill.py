"""kill -9 of a notifications replica with deliveries in flight: none lost, none recorded twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import aiohttp
import pytest

from libs.common.infra import free_port
from tests.conftest import ROOT, eventually
from tests.fakes.webhook_receiver import Behaviour, WebhookReceiver
from tests.notifications.conftest import Api

EVENTS = 30


@pytest.mark.slow
async def test_kill_9_of_a_replica_loses_no_delivery(api: Api, receiver: WebhookReceiver) -> None:
    infra = api.ws.stack.infra
    port = free_port()
    env = {
        **os.environ,
        "TETHER_DATABASE_URL": infra.database_url,
        "TETHER_NATS_URL": infra.nats_url,
        "TETHER_MASTER_KEYS": infra.master_keys,
        "TETHER_ALLOW_PRIVATE_URLS": "true",
        "TETHER_DELIVERY_LEASE": "2",
        "TETHER_DELIVERY_SCHEDULE": "[0, 0.2, 0.4, 0.6, 0.8, 1]",
        "TETHER_DELIVERY_POLL_INTERVAL": "0.1",
        "TETHER_DELIVERY_TIMEOUT": "5",
        "TETHER_HEALTH_PORT": str(port),
        "TETHER_LOG_LEVEL": "warning",
    }
    replica = subprocess.Popen(  # noqa: ASYNC220 - started once; must be a real process
        [sys.executable, "-m", "services.notifications"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pool = await api.ws.stack.pool("notifications")
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, timeout=30)
        created, hook = await api.endpoint(receiver, "slow", ["customer.*"])
        hook.behaviour = Behaviour(delay=1.0)  # keeps attempts in flight
        await asyncio.gather(*(api.customer(f"k-{n}") for n in range(EVENTS)))
        endpoint_id = uuid.UUID(created["id"])

        async def replica_delivering() -> bool:
            held = await pool.fetchval(
                "SELECT count(*) FROM jobs WHERE queue = 'deliveries' AND status = 'running'"
                " AND lease_owner LIKE $1",
                f"%:{replica.pid}:%",
            )
            return bool(held)

        await eventually(replica_delivering, timeout=30)
        replica.send_signal(signal.SIGKILL)
        replica.wait(10)

        async def all_succeeded() -> bool:
            done = await pool.fetchval(
                "SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND status = 'succeeded'",
                endpoint_id,
            )
            return bool(done == EVENTS)

        hook.behaviour = Behaviour()
        await eventually(all_succeeded, timeout=60)
        rows = await pool.fetch(
            "SELECT id, event_id FROM deliveries WHERE endpoint_id = $1", endpoint_id
        )
    finally:
        if replica.poll() is None:
            replica.kill()
            replica.wait(10)
        await pool.close()
    assert len(rows) == EVENTS, "each event is recorded once"
    assert len({r["event_id"] for r in rows}) == EVENTS
    accepted = {r.webhook_id for r in hook.received}
    assert {r["id"] for r in rows} <= accepted, "every webhook-id was delivered at least once"
    assert all(all(r.verified.values()) for r in hook.received)
