"""A bare aiohttp JSON handler: the baseline every gateway figure is a ratio of."""

from __future__ import annotations

import sys

from aiohttp import web

from libs.common.runtime import run


async def handler(_: web.Request) -> web.Response:
    """Answer a small JSON document, like a ping reply."""
    return web.json_response({"service": "bare", "ok": True})


async def sink(request: web.Request) -> web.Response:
    """Take an OTLP/HTTP export and drop it (the traced runs' collector)."""
    await request.read()
    return web.Response(body=b"", content_type="application/x-protobuf")


async def main(port: int) -> None:
    """Serve until killed."""
    app = web.Application()
    app.router.add_get("/ping", handler)
    app.router.add_post("/ping", handler)
    app.router.add_post("/v1/traces", sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    while True:
        await __import__("asyncio").sleep(3600)


if __name__ == "__main__":
    run(main(int(sys.argv[1])), use_uvloop="--no-uvloop" not in sys.argv[2:])
