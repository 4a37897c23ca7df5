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
from typing import Any

import aiohttp
import asyncpg

from bench.common import admin_token, best, embedded_infra, load, process, python
from libs.common.infra import free_port
from tests.fakes.oauth_provider import FakeProvider

KEYS = "b:" + "A" * 43 + "="


async def _json(
    http: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None
) -> Any:
    async with http.request(
        method, url, json=body, headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status < 300, await resp.text()
        return await resp.json()


async def run(
    args: argparse.Namespace, gateway: str, database_url: str, bare: str, token: str
) -> None:
    """Seed, measure, print."""
    secret = "bench-secret"
    async with FakeProvider(client_id="bench", client_secret=secret) as provider:
        spec = {
            "key": "fake",
            "name": "Fake",
            "auth": {"type": "oauth2", "authorizeUrl": provider.authorize_url, "tokenUrl": provider.token_url,
                     "clientId": "bench"},
            "clientSecret": secret,
            "api": {"baseUrl": provider.api_base},
        }  # fmt: skip
        connector = aiohttp.TCPConnector(limit=32)
        async with aiohttp.ClientSession(connector=connector) as http:
            await _json(http, "POST", f"{gateway}/integrations", token, spec)
            sem = asyncio.Semaphore(32)

            async def seed(i: int) -> str:
                body = {
                    "customerId": f"c{i}",
                    "integrationKey": "fake",
                    "credentials": {"access_token": f"at-{i}", "refresh_token": provider.grant_refresh_token(),
                                    "expires_in": 3600},
                }  # fmt: skip
                async with sem:
                    return str(
                        (await _json(http, "POST", f"{gateway}/connections", token, body))["id"]
                    )

            started = time.perf_counter()
            ids = await asyncio.gather(*(seed(i) for i in range(args.connections)))
            print(f"seeded {len(ids)} connections in {time.perf_counter() - started:.1f}s")
        headers = {"Authorization": f"Bearer {token}"}
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with embedded_infra() as infra:
        env = {
            "TETHER_DATABASE_URL": infra.database_url,
            "TETHER_NATS_URL": infra.nats_url,
            "TETHER_MASTER_KEYS": KEYS,
        }
        gw, bare = free_port(), free_port()
        ports = {"identity": free_port(), "connections": free_port(), "connections-2": free_port()}
        with contextlib.ExitStack() as running:
            for name, port in ports.items():
                running.enter_context(
                    process(python(f"services.{name.split('-')[0]}"), {**env, "TETHER_HEALTH_PORT": str(port)},
                            f"http://127.0.0.1:{port}/readyz")
                )  # fmt: skip
            running.enter_context(
                process(
                    python("services.gateway"),
                    {**env, "TETHER_GATEWAY_PORT": str(gw)},
                    f"http://127.0.0.1:{gw}/healthz",
                )
            )
            running.enter_context(
                process(python("bench.bare_server", str(bare)), {}, f"http://127.0.0.1:{bare}/ping")
            )
            token = admin_token(env)
            gateway, bare_url = f"http://127.0.0.1:{gw}", f"http://127.0.0.1:{bare}/ping"
            asyncio.run(run(args, gateway, infra.database_url, bare_url, token))


if __name__ == "__main__":
    main()
