"""Credentials: hot reads through the gateway, and a refresh storm shared by 2 replicas.

(1) ``GET /connections/{id}/credentials`` for one hot connection: requests/s and p99,
beside a bare aiohttp handler in the same run (the ratio is printed).
(2) 2,000 connections due at once, renewed by 2 connections replicas against the fake
provider: time to renew all, provider calls (must be 2,000), failures (must be 0).
Run: ``.venv/bin/python -m bench.credentials``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import aiohttp
import asyncpg

from bench.common import (
    admin_token,
    bare_server,
    bench_parser,
    best,
    call_json,
    embedded_infra,
    load,
    record,
    stack_env,
    stack_processes,
)
from libs.common.infra import free_port
from tests.fakes.oauth_provider import FakeProvider

SECRET = "bench-secret"
"""The fake provider's client secret."""


async def seed_connections(
    provider: FakeProvider, gateway: str, headers: dict[str, str], count: int
) -> list[str]:
    """Create an OAuth2 integration on ``provider`` and ``count`` connections; return their ids.

    ``provider`` must have been made with client id ``bench`` and client secret ``SECRET``.
    """
    spec = {
        "key": "fake",
        "name": "Fake",
        "auth": {
            "type": "oauth2",
            "authorizeUrl": provider.authorize_url,
            "tokenUrl": provider.token_url,
            "clientId": "bench",
        },
        "clientSecret": SECRET,
        "api": {"baseUrl": provider.api_base},
    }
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        await call_json(http, "POST", f"{gateway}/integrations", spec)
        sem = asyncio.Semaphore(32)

        async def seed(i: int) -> str:
            body = {
                "customerId": f"c{i}",
                "integrationKey": "fake",
                "credentials": {
                    "access_token": f"at-{i}",
                    "refresh_token": provider.grant_refresh_token(),
                    "expires_in": 3600,
                },
            }
            async with sem:
                return str((await call_json(http, "POST", f"{gateway}/connections", body))["id"])

        return await asyncio.gather(*(seed(i) for i in range(count)))


async def run(
    args: argparse.Namespace, gateway: str, database_url: str, bare: str, token: str
) -> None:
    """Seed, measure, print."""
    async with FakeProvider(client_id="bench", client_secret=SECRET) as provider:
        headers = {"Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        ids = await seed_connections(provider, gateway, headers, args.connections)
        print(f"seeded {len(ids)} connections in {time.perf_counter() - started:.1f}s")
        creds_url = f"{gateway}/connections/{ids[0]}/credentials"
        kw = {"seconds": args.seconds, "concurrency": 32}
        reads, bases = [], []
        for _ in range(args.rounds):
            bases.append(await load("bare aiohttp handler", bare, **kw))
            reads.append(await load("GET credentials (hot)", creds_url, headers=headers, **kw))
        b, r = best(bases), best(reads)
        print(b.line())
        print(r.line())
        print(f"ratio credentials/bare: {r.rps / b.rps:.2f}")
        record("credentials", "hot credentials read/bare", r.rps / b.rps)

        calls_before = provider.token_calls
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                "UPDATE connections.connections SET refresh_due_at = now(), expires_at = now()"
            )
            started = time.perf_counter()
            while True:
                done = await conn.fetchval(
                    "SELECT count(*) FROM connections.connections WHERE version > 1"
                )
                failed = await conn.fetchval(
                    "SELECT count(*) FROM connections.connections WHERE refresh_attempts > 0 OR state <> 'connected'"
                )
                if done + failed >= len(ids):
                    break
                await asyncio.sleep(0.05)  # polling the database for progress
            elapsed = time.perf_counter() - started
        finally:
            await conn.close()
        calls = provider.token_calls - calls_before
        print(
            f"refresh storm: {len(ids)} connections renewed by 2 replicas in {elapsed:.2f}s "
            f"({len(ids) / elapsed:.0f}/s); provider calls {calls}; failures {failed}"
        )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = bench_parser(__doc__)
    parser.add_argument("--connections", type=int, default=2000)
    args = parser.parse_args()
    with embedded_infra() as infra:
        env = stack_env(infra)
        gw = free_port()
        with contextlib.ExitStack() as running:
            stack_processes(running, env, ["identity", "connections", "connections-2"], gw)
            bare = bare_server(running)
            token = admin_token(env)
            asyncio.run(run(args, f"http://127.0.0.1:{gw}", infra.database_url, bare, token))


if __name__ == "__main__":
    main()
