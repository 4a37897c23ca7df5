"""A replica that stops (a rolling restart) still answers every request NATS routed to it."""

from __future__ import annotations

import asyncio
import secrets

from libs.common.bus import Bus, ServiceHost, connect, endpoint
from libs.common.errors import Timeout
from tests.common.test_bus import EchoRequest, echo, echo_op
from tests.conftest import Infra


async def test_bus_stopping_replica_drops_no_routed_request(infra: Infra) -> None:
    op = echo_op(f"t{secrets.token_hex(4)}")
    callers = await connect(infra.nats_url, "callers")
    bus = Bus(callers, timeout=3)
    lost = answered = 0
    try:
        for _ in range(3):
            old_nc = await connect(infra.nats_url, "old-replica")
            new_nc = await connect(infra.nats_url, "new-replica")
            old = ServiceHost(old_nc, op.service, "0.1.0", [endpoint(op, echo)])
            new = ServiceHost(new_nc, op.service, "0.1.0", [endpoint(op, echo)])
            await old.start()
            await new.start()

            async def one(i: int) -> bool:
                try:
                    return (await bus.call(op, EchoRequest(text=str(i)))).text == str(i)
                except Timeout:
                    return False

            burst = [asyncio.create_task(one(i)) for i in range(200)]
            await asyncio.sleep(0)  # the burst is on its way: half of it routed to `old`
            await old.stop(2)
            results = await asyncio.gather(*burst)
            answered += sum(results)
            lost += results.count(False)
            await new.stop(2)
            await old_nc.close()
            await new_nc.close()
    finally:
        await callers.close()
    assert (lost, answered) == (0, 600)
