"""Per-endpoint isolation: a dead endpoint's deep queue never delays another endpoint."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.conftest import eventually
from tests.fakes.webhook_receiver import Behaviour, WebhookReceiver
from tests.notifications.conftest import Api, received

PILE = 120


@pytest.mark.slow
async def test_isolation_dead_endpoint_never_delays_another_first_attempt(
    api: Api, receiver: WebhookReceiver
) -> None:
    dead, dead_hook = await api.endpoint(receiver, "dead", ["customer.*"])
    dead_hook.behaviour = Behaviour(delay=30.0)  # hangs until the 3 s delivery timeout
    for n in range(PILE):
        await api.customer(f"pile-{n}")
    pool = await api.ws.stack.pool("notifications")
    try:

        async def piled() -> bool:
            count = await pool.fetchval(
                "SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND status = 'pending'",
                uuid.UUID(dead["id"]),
            )
            return bool(count >= PILE)

        await eventually(piled, timeout=30)
        _, healthy = await api.endpoint(receiver, "healthy", ["customer.*"])
        started = time.monotonic()
        await api.customer("the-one")
        await received(healthy, 1, timeout=10)
        latency = healthy.received[0].at - started
        pending = await pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND status = 'pending'",
            uuid.UUID(dead["id"]),
        )
    finally:
        await pool.close()
    assert healthy.received[0].body["data"]["customerId"] == "the-one"
    assert latency < 2.0, f"the healthy endpoint waited {latency:.2f} s"
    assert pending > PILE - 20, "the dead endpoint's queue was still deep"
    # the dead endpoint never had more in flight than its concurrency (4)
    assert len(dead_hook.received) <= 4 * 3
