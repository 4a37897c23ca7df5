"""The bus: typed calls, errors across the wire, concurrency, graceful stop."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from pydantic import Field

from libs.common.bus import Bus, ServiceHost, connect, endpoint
from libs.common.contracts.base import Context, Operation, Reply, Request
from libs.common.errors import Conflict, Internal, Timeout, Unavailable
from tests.conftest import Infra


class EchoRequest(Request):
    text: str = Field(min_length=1)
    delay: float = 0.0
    fail: str | None = None


class EchoReply(Reply):
    text: str
    request_id: str


def echo_op(prefix: str) -> Operation[EchoRequest, EchoReply]:
    return Operation(f"tether.{prefix}.echo.say", EchoRequest, EchoReply)


async def echo(req: EchoRequest) -> EchoReply:
    await asyncio.sleep(req.delay)  # simulates slow work inside the handler
    if req.fail == "conflict":
        raise Conflict("already there", code="duplicate", details={"id": 1})
    if req.fail == "crash":
        raise RuntimeError("secret internals")
    return EchoReply(text=req.text, request_id=req.ctx.request_id)


@pytest.fixture
async def served(
    infra: Infra,
) -> AsyncIterator[tuple[Bus, Operation[EchoRequest, EchoReply], ServiceHost]]:
    prefix = f"t{secrets.token_hex(4)}"
    op = echo_op(prefix)
    nc = await connect(infra.nats_url, "bus-test")
    host = ServiceHost(nc, prefix, "0.1.0", [endpoint(op, echo)])
    await host.start()
    try:
        yield Bus(nc, timeout=2), op, host
    finally:
        await host.stop(1)
        await nc.close()


async def test_bus_call_returns_typed_reply(
    served: tuple[Bus, Operation[EchoRequest, EchoReply], ServiceHost],
) -> None:
    bus, op, _ = served
    reply = await bus.call(op, EchoRequest(text="hi", ctx=Context(request_id="rid-1")))
    assert reply == EchoReply(text="hi", request_id="rid-1")


async def test_bus_domain_error_round_trips(
    served: tuple[Bus, Operation[EchoRequest, EchoReply], ServiceHost],
) -> None:
    bus, op, _ = served
    with pytest.raises(Conflict) as info:
        await bus.call(op, EchoRequest(text="x", fail="conflict"))
    assert (info.value.code, info.value.details) == ("duplicate", {"id": 1})


async def test_bus_crash_is_opaque(
    served: tuple[Bus, Operation[EchoRequest, EchoReply], ServiceHost],
) -> None:
    bus, op, _ = served
    with pytest.raises(Internal) as info:
        await bus.call(op, EchoRequest(text="x", fail="crash"))
    assert "secret internals" not in info.value.message


async def test_bus_invalid_request_names_field(
    served: tuple[Bus, Operation[EchoRequest, EchoReply], ServiceHost],
) -> None:
    bus, op, _ = served
    msg = await bus.nc.request(op.subject, b'{"text": ""}', timeout=2)
    assert msg.headers
    assert msg.headers["Nats-Service-Error-Code"] == "422"
    assert b'"field": "text"' in msg.data


async def test_bus_no_responder_is_unavailable(infra: Infra) -> None:
    nc = await connect(infra.nats_url, "bus-test")
    try:
        with pytest.raises(Unavailable):
            await Bus(nc).call(echo_op("nobody"), EchoRequest(text="x"))
    finally:
        await nc.close()


async def test_bus_slow_reply_is_timeout(
    served: tuple[Bus, Operation[EchoRequest, EchoReply], ServiceHost],
) -> None:
    bus, op, _ = served
    with pytest.raises(Timeout):
        await bus.call(op, EchoRequest(text="x", delay=1.0), timeout=0.2)


async def test_bus_handles_requests_concurrently(
    served: tuple[Bus, Operation[EchoRequest, EchoReply], ServiceHost],
) -> None:
    """Twenty 0.3 s requests finish together, not one after another (6 s)."""
    bus, op, _ = served
    loop = asyncio.get_running_loop()
    started = loop.time()
    replies = await asyncio.gather(
        *(bus.call(op, EchoRequest(text=str(i), delay=0.3)) for i in range(20))
    )
    assert [r.text for r in replies] == [str(i) for i in range(20)]
    assert loop.time() - started < 2.0


async def test_bus_stop_finishes_inflight_requests(infra: Infra) -> None:
    prefix = f"t{secrets.token_hex(4)}"
    op = echo_op(prefix)
    nc = await connect(infra.nats_url, "bus-test")
    entered = asyncio.Event()

    async def slow(req: EchoRequest) -> EchoReply:
        entered.set()
        return await echo(req)

    host = ServiceHost(nc, prefix, "0.1.0", [endpoint(op, slow)])
    await host.start()
    try:
        bus = Bus(nc, timeout=5)
        pending = asyncio.create_task(bus.call(op, EchoRequest(text="late", delay=0.3)))
        await asyncio.wait_for(entered.wait(), 5)
        await host.stop(grace=5)
        assert (await pending).text == "late"
        with pytest.raises(Unavailable):
            await bus.call(op, EchoRequest(text="after"))
    finally:
        await nc.close()
