"""A bare aiohttp JSON handler: the baseline every gateway figure is a ratio of.

``python -m bench.bare_server PORT`` serves ``/ping`` itself. Two more processes make the
*raw hop* reference, the least any gateway → NATS → service hop can cost with these
libraries: ``--nats URL`` serves ``/raw-hop``, which makes one plain nats-py request to
``bench.raw.ping`` and answers its reply; ``--responder URL`` (no HTTP port) answers
those requests from a plain subscription, as a service with no code of its own would.
"""

from __future__ import annotations

import asyncio
import sys

import nats
from aiohttp import web
from nats.aio.msg import Msg

from libs.common.runtime import run

RAW_SUBJECT = "bench.raw.ping"
PING_REPLY = b'{"service":"bare","ok":true}'


async def handler(_: web.Request) -> web.Response:
    """Answer a small JSON document, like a ping reply."""
    return web.json_response({"service": "bare", "ok": True})


async def sink(request: web.Request) -> web.Response:
    """Take an OTLP/HTTP export and drop it (the traced runs' collector)."""
    await request.read()
    return web.Response(body=b"", content_type="application/x-protobuf")


async def main(port: int, nats_url: str | None) -> None:
    """Serve until killed."""
    app = web.Application()
    app.router.add_get("/ping", handler)
    app.router.add_post("/ping", handler)
    app.router.add_post("/v1/traces", sink)
    if nats_url is not None:
        nc = await nats.connect(nats_url)

        async def raw_hop(_: web.Request) -> web.Response:
            msg = await nc.request(RAW_SUBJECT, b"{}", timeout=5)
            return web.Response(body=msg.data, content_type="application/json")

        app.router.add_get("/raw-hop", raw_hop)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def respond(nats_url: str) -> None:
    """Answer every raw ping until killed."""
    nc = await nats.connect(nats_url)

    async def answer(msg: Msg) -> None:
        await msg.respond(PING_REPLY)

    await nc.subscribe(RAW_SUBJECT, cb=answer, queue="bench")
    await nc.flush()
    await asyncio.Event().wait()


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


if __name__ == "__main__":
    argv = sys.argv[1:]
    uvloop = "--no-uvloop" not in argv
    responder = _option(argv, "--responder")
    if responder is not None:
        run(respond(responder), use_uvloop=uvloop)
    else:
        run(main(int(argv[0]), _option(argv, "--nats")), use_uvloop=uvloop)
