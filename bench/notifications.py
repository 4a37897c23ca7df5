"""Outbound webhooks: three figures, each beside a baseline measured in the same run.

1. Deliveries/s from a notifications process to a local receiver, against a bare aiohttp
   client posting the same bodies with the same concurrency (ratio = ours / bare).
2. Time to drain 10,000 pending deliveries once the receiver comes back (it was down:
   every delivery has had its first attempt refused), against the bare client posting
   10,000 (ratio = ours / bare).
3. p99 first-attempt latency (recorded → received) of a healthy endpoint while another
   endpoint hangs with 10,000 pending, against the same endpoint with nothing else queued.

Deliveries are recorded with the service's own code (``delivery.record_delivery``, as its
consumer does), so the figures measure the delivery path, not event production.
Run: ``.venv/bin/python -m bench.notifications``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import asyncpg
from aiohttp import web

from bench.common import MASTER_KEYS, embedded_infra, process, python, stack_env
from bench.common import record as record_ratio  # `record` here records deliveries
from libs.common.crypto import Keyring
from libs.common.db import Conn, create_pool, migrate
from libs.common.infra import free_port
from services.notifications import delivery, signing
from services.notifications.app import MIGRATIONS
from services.notifications.settings import NotificationsOptions
from services.notifications.store import endpoints

BODY = delivery.body("customer.created", datetime.now(UTC), {"customerId": "bench"})


class Receiver:
    """A minimal receiver: ``/ok`` answers 200, ``/hang`` never answers; ``up`` toggles /ok."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.up = True
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Serve on 127.0.0.1."""
        app = web.Application()
        app.router.add_post("/ok", self._ok)
        app.router.add_post("/hang", self._hang)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _ok(self, request: web.Request) -> web.Response:
        await request.read()
        if not self.up:
            return web.Response(status=503)
        self.seen.setdefault(request.headers.get("webhook-id", ""), time.perf_counter())
        return web.Response(text="ok")

    async def _hang(self, request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response()

    def url(self, path: str) -> str:
        """Return the URL of ``path``."""
        return f"http://127.0.0.1:{self.port}{path}"


async def bare(url: str, count: int, concurrency: int) -> float:
    """Post ``count`` signed bodies with a plain aiohttp client; return the seconds taken."""
    queue = list(range(count))
    secret = signing.new_secret()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def worker() -> None:
            while queue:
                queue.pop()
                msg = "msg_" + uuid4().hex
                headers = signing.headers([secret], msg, int(time.time()), BODY.encode())
                async with http.post(url, data=BODY, headers=headers) as resp:
                    await resp.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def add_endpoint(conn: Conn, keyring: Keyring, ws: UUID, url: str) -> UUID:
    """Register an endpoint with the service's store code."""
    endpoint_id = uuid4()
    await endpoints.insert_endpoint(
        conn,
        endpoint_id,
        ws,
        url=url,
        events=["*"],
        enabled=True,
        description=None,
        secret_sealed=signing.seal(keyring, ws, endpoint_id, signing.new_secret()),
    )
    return endpoint_id


async def record(
    pool: asyncpg.Pool[Any], ws: UUID, endpoint_id: UUID, n: int, options: NotificationsOptions
) -> list[str]:
    """Record ``n`` deliveries (and their jobs) in one transaction; return their ids."""
    ids = []
    async with pool.acquire() as conn, conn.transaction():
        for _ in range(n):
            msg = delivery.new_delivery_id()
            await delivery.record_delivery(
                conn,
                ws,
                endpoint_id,
                delivery=msg,
                event_id=uuid4(),
                event_type="customer.created",
                payload=BODY,
                options=options,
            )
            ids.append(msg)
    return ids


async def wait_seen(receiver: Receiver, ids: list[str], timeout: float = 900) -> float:
    """Wait until every id reached the receiver; return when the last one did."""
    deadline = time.perf_counter() + timeout
    while not all(i in receiver.seen for i in ids):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{sum(i in receiver.seen for i in ids)}/{len(ids)} arrived")
        await asyncio.sleep(0.05)
    return max(receiver.seen[i] for i in ids)


async def run(args: argparse.Namespace, database_url: str, options: NotificationsOptions) -> None:
    """Measure the three figures (the service runs as a child process meanwhile)."""
    receiver = Receiver()
    await receiver.start()
    keyring = Keyring.from_setting(MASTER_KEYS)
    pool = await create_pool(database_url, "notifications", min_size=1, max_size=4)
    ws = uuid4()
    try:
        async with pool.acquire() as conn:
            ok = await add_endpoint(conn, keyring, ws, receiver.url("/ok"))
        # 1. throughput
        for _ in range(args.rounds):
            base = await bare(receiver.url("/ok"), args.count, options.endpoint_concurrency)
            started = time.perf_counter()
            ids = await record(pool, ws, ok, args.count, options)
            ours = await wait_seen(receiver, ids) - started
            print(
                f"deliveries/s ({args.count}, concurrency {options.endpoint_concurrency}): "
                f"tether {args.count / ours:8.0f}   bare client {args.count / base:8.0f}   "
                f"ratio {base / ours:.2f}"
            )
            record_ratio("notifications", "deliveries/s tether/bare client", base / ours)
        # 2. drain after an outage
        receiver.up = False
        ids = await record(pool, ws, ok, args.pending, options)
        while True:  # every delivery has had (and failed) its first attempt
            tried = await pool.fetchval(
                "SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND attempt_count > 0"
                " AND id = ANY($2::text[])",
                ok,
                ids,
            )
            if tried == len(ids):
                break
            await asyncio.sleep(0.5)
        receiver.up = True
        started = time.perf_counter()
        drained = await wait_seen(receiver, ids) - started
        base = await bare(receiver.url("/ok"), args.pending, options.endpoint_concurrency)
        print(
            f"drain {args.pending} pending after the receiver came back: tether {drained:6.1f} s"
            f"   bare client {base:6.1f} s   ratio {drained / base:.2f}"
            f"   (includes up to {options.delivery_schedule[1]:g} s of retry wait)"
        )
        record_ratio("notifications", "drain time tether/bare client", drained / base)

        # 3. first-attempt latency beside a dead endpoint
        async def latencies() -> list[float]:
            found = []
            for _ in range(args.probes):
                at = time.perf_counter()
                [msg] = await record(pool, ws, ok, 1, options)
                found.append(await wait_seen(receiver, [msg], timeout=60) - at)
                await asyncio.sleep(0.02)
            return found

        def p99(values: list[float]) -> float:
            return statistics.quantiles(values, n=100)[98] * 1000

        alone = await latencies()
        async with pool.acquire() as conn:
            dead = await add_endpoint(conn, keyring, ws, receiver.url("/hang"))
        await record(pool, ws, dead, args.pending, options)
        beside = await latencies()
        print(
            f"first-attempt p99 of a healthy endpoint: alone {p99(alone):7.1f} ms   beside a dead"
            f" endpoint with {args.pending} pending {p99(beside):7.1f} ms   ratio"
            f" {p99(beside) / p99(alone):.2f}   (p50 {statistics.median(alone) * 1000:.1f}"
            f" → {statistics.median(beside) * 1000:.1f} ms)"
        )
        record_ratio(
            "notifications",
            "first-attempt p99 beside a dead endpoint/alone",
            p99(beside) / p99(alone),
        )
    finally:
        await pool.close()
        if receiver.runner is not None:
            await receiver.runner.cleanup()


def main() -> None:
    """Start embedded infra and a notifications process, then measure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = {
        "TETHER_ALLOW_PRIVATE_URLS": "true",
        "TETHER_DELIVERY_WORKERS": "32",
        "TETHER_ENDPOINT_CONCURRENCY": "16",
        "TETHER_DELIVERY_SCHEDULE": "[0, 2, 2, 2, 2, 2, 2, 2, 2, 2]",
        "TETHER_DELIVERY_POLL_INTERVAL": "0.2",
        "TETHER_LOG_LEVEL": "warning",
    }
    options = NotificationsOptions.model_validate(
        {
            "allow_private_urls": True,
            "endpoint_concurrency": 16,
            "delivery_schedule": [0, 2, 2, 2, 2, 2, 2, 2, 2, 2],
        }
    )
    with embedded_infra() as infra, ExitStack() as running:
        asyncio.run(migrate(infra.database_url, "notifications", MIGRATIONS))
        port = free_port()
        running.enter_context(
            process(
                python("services.notifications"),
                stack_env(infra, TETHER_HEALTH_PORT=str(port), **settings),
                f"http://127.0.0.1:{port}/readyz",
            )
        )
        asyncio.run(run(args, infra.database_url, options))


if __name__ == "__main__":
    main()
