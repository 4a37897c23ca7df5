"""Baselines for bench/auth.py: one asyncpg primary-key select, one PyJWT HS256 verification."""

from __future__ import annotations

import asyncio
import sys

import asyncpg
import jwt
from aiohttp import web

from libs.common.runtime import run

SECRET = "bench-secret-bench-secret-bench-secret-00"


async def main(port: int, database_url: str) -> None:
    """Serve GET /select and GET /verify until killed."""
    pool = await asyncpg.create_pool(database_url, min_size=10, max_size=10)
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_kv (id text PRIMARY KEY, v text)")
    await pool.execute("INSERT INTO bench_kv VALUES ('k', 'v') ON CONFLICT DO NOTHING")

    async def select(_: web.Request) -> web.Response:
        row = await pool.fetchrow("SELECT id, v FROM bench_kv WHERE id = $1", "k")
        return web.json_response(dict(row) if row else {})

    async def verify(request: web.Request) -> web.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp"]})
        return web.json_response({"id": claims["id"]})

    app = web.Application()
    app.router.add_get("/select", select)
    app.router.add_get("/verify", verify)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    run(main(int(sys.argv[1]), sys.argv[2]))
