"""Capacity: CPU µs per request of each component on each path, replicas for a load, one check.

The whole stack runs as processes (the gateway, every service, nats-server, PostgreSQL). For
each path a steady load runs for ``--seconds``; the CPU time (``utime + stime`` from
``/proc/<pid>/stat``) of every process is read before it and after the work it caused has
settled (every outbox drained, every JetStream consumer caught up, every run ended), and
divided by the requests completed. PostgreSQL is the postmaster and all its children,
found at each read (``bench.sizing.model`` says how backends that come and go count); the
load generator is this process. The background CPU of an idle stack, measured first, is
taken off; each path runs ``--rounds`` times and keeps its least CPU. Paths:

(1) ``GET /customers/me`` with one hot token; (2) the same with a fresh token per request;
(3) ``GET /connections/{id}/credentials`` of one connection (hot); (4) ``POST
/webhooks/{token}`` accepted (202), until its ``app_event.received`` are published and
consumed; (5) runs of a 3-node transform flow, ``POST /run`` to completed.

Then: requests/s per core per component (``1e6 / µs``), replicas per component for the
target loads (``--loads``, at ``--utilisation``), and a check of the model: path (1) with 1
and 2 gateway replicas, predicted max req/s (``bench.sizing.model.predicted_max_rps`` on
this machine's cores, and on the cores other tenants left us during the run) against
measured; it runs first, while the machine is quietest. ``--write docs/capacity.md``
rewrites the generated blocks of that document.
Run: ``.venv/bin/python -m bench.capacity [--write docs/capacity.md]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.auth import tokens
from bench.common import (
    Result,
    admin_token,
    bench_parser,
    call_json,
    create_workspace,
    crm_integration,
    embedded_infra,
    load,
    process,
    python,
    record,
    stack_env,
    stack_processes,
)
from bench.credentials import SECRET, seed_connections
from bench.runs import Bench, transform_instances
from bench.sizing.probe import idle_rate, measure, settle
from bench.sizing.tables import (
    LABELS,
    LOAD_GENERATOR,
    Measured,
    Report,
    conditions,
    write_blocks,
)
from bench.webhooks import subscribed_delivery
from libs.common.config import SERVICES
from libs.common.infra import free_port
from tests.fakes.oauth_provider import FakeProvider
from tests.fakes.webhook_app import FakeWebhookApp


@dataclass(frozen=True)
class Stack:
    """The processes of the running stack, by component, and where to reach it."""

    components: dict[str, list[int]]
    """Every component measured on the paths (PostgreSQL's children are found at each read)."""
    gateway_2: int
    """A second gateway, idle but for the check."""
    urls: tuple[str, str]
    """The two gateways' base URLs."""
    database_url: str
    nats_url: str


async def runs_done(b: Bench, instances: list[str], count: int, concurrency: int) -> Result:
    """Start ``count`` runs over ``instances``, wait until every one ended; return the figures.

    The result's seconds are those of starting them (the load), its requests the runs.
    """
    started = time.perf_counter()
    ids = await b.start(instances, count, concurrency)
    elapsed = time.perf_counter() - started
    await b.ended(ids)
    return Result(LABELS["runs"], len(ids), 0, elapsed, [])


def fresh_tokens(key: str, secret: str, ready: int) -> Iterator[dict[str, str]]:
    """Return distinct tokens without end: ``ready`` made now, then a thousand at a time.

    Made in advance, their signing stays out of the load generator's CPU while they last.
    """

    def more() -> Iterator[dict[str, str]]:
        for first in itertools.count(ready, 1000):
            yield from tokens(key, secret, 1000, first)

    return itertools.chain(tokens(key, secret, ready), more())


@dataclass(frozen=True)
class Paths:
    """Each path set up on the stack: what the load generator sends."""

    me: str
    hot: dict[str, str]
    fresh: Iterator[dict[str, str]]
    credentials: str
    admin: dict[str, str]
    webhook: str
    delivery: bytes
    signed: dict[str, str]
    runs: Bench
    instances: list[str]


async def set_up(
    stack: Stack,
    auth: dict[str, Any],
    admins: list[str],
    apps: tuple[FakeProvider, FakeWebhookApp, FakeWebhookApp],
    http: aiohttp.ClientSession,
    db: asyncpg.Pool[Any],
    args: argparse.Namespace,
) -> Paths:
    """Set every path up (its own workspace each) with the benchmarks' own set-up functions."""
    gw = stack.urls[0]
    provider, hook_app, runs_app = apps
    admin = {"Authorization": f"Bearer {admins[0]}"}
    [connection] = await seed_connections(provider, gw, admin, 1)
    webhook, delivery, signed = await subscribed_delivery(hook_app, gw, admins[1])
    b = Bench(http, gw, db)
    await call_json(http, "POST", f"{gw}/integrations", crm_integration(runs_app.url))
    conns = [await b.connection(f"c{i}") for i in range(args.connections)]
    return Paths(
        me=f"{gw}/customers/me",
        hot=next(tokens(auth["key"], auth["secret"], 1)),
        fresh=fresh_tokens(auth["key"], auth["secret"], int(args.seconds * args.rounds * 8_000)),
        credentials=f"{gw}/connections/{connection}/credentials",
        admin=admin,
        webhook=webhook,
        delivery=delivery,
        signed=signed,
        runs=b,
        instances=[*(await transform_instances(b, conns)).values()],
    )


def work(
    p: Paths, args: argparse.Namespace, seconds: float, runs: int
) -> dict[str, Callable[[], Awaitable[Result]]]:
    """Return the load of each path: ``seconds`` of requests, or ``runs`` runs."""
    kw: dict[str, Any] = {"seconds": seconds, "concurrency": args.concurrency}
    post: dict[str, Any] = {"method": "POST", "body": p.delivery, "headers": p.signed, "ok": 202}
    return {
        "hot": lambda: load(LABELS["hot"], p.me, headers=p.hot, **kw),
        "fresh": lambda: load(LABELS["fresh"], p.me, per_request=p.fresh, **kw),
        "credentials": lambda: load(LABELS["credentials"], p.credentials, headers=p.admin, **kw),
        "webhooks": lambda: load(LABELS["webhooks"], p.webhook, **post, **kw),
        "runs": lambda: runs_done(p.runs, p.instances, runs, args.run_concurrency),
    }


async def check(
    stack: Stack,
    p: Paths,
    db: asyncpg.Pool[Any],
    args: argparse.Namespace,
    idle: Mapping[str, float],
) -> dict[int, Measured]:
    """Saturate path (1) through 1 and 2 gateways, rounds interleaved; return the best of each."""
    two = {**stack.components, "gateway": [*stack.components["gateway"], stack.gateway_2]}
    setups = {1: (stack.urls[:1], stack.components), 2: (stack.urls, two)}
    rounds: dict[int, list[Measured]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for gateways, (bases, components) in setups.items():
            urls = itertools.cycle([f"{base}/customers/me" for base in bases])

            def saturate(urls: Iterator[str] = urls, gateways: int = gateways) -> Awaitable[Result]:
                name = f"check: path (1) on {gateways} gateway(s)"
                return load(
                    name,
                    p.me,
                    urls=urls,
                    headers=p.hot,
                    seconds=args.check_seconds,
                    concurrency=args.check_concurrency,
                )

            rounds[gateways].append(await measure(components, db, stack.nats_url, saturate, idle))
    return {n: max(ms, key=lambda m: m.result.rps) for n, ms in rounds.items()}


async def run(
    args: argparse.Namespace, stack: Stack, auth: dict[str, Any], admins: list[str]
) -> Report:
    """Set every path up, run the check, measure each path; return the figures."""
    db = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2)
    try:
        async with (
            FakeProvider(client_id="bench", client_secret=SECRET) as provider,
            FakeWebhookApp(api_key="bench-key") as hook_app,
            FakeWebhookApp(api_key="k") as runs_app,
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {admins[2]}"}) as http,
        ):
            p = await set_up(stack, auth, admins, (provider, hook_app, runs_app), http, db, args)
            for warm in work(p, args, 1.0, 50).values():
                await warm()
            await load(
                "warm-up", f"{stack.urls[1]}/customers/me", headers=p.hot, seconds=1, concurrency=8
            )
            await settle(db, stack.nats_url)
            idle = await idle_rate(stack.components, args.idle_seconds)
            # The check first: its throughput suffers from other jobs on the machine far
            # more than CPU per request does, and the machine is quietest at the start.
            checked = await check(stack, p, db, args, idle)
            rounds: dict[str, list[Measured]] = {}
            for _ in range(args.rounds):  # interleaved, the least CPU of each: noise only adds
                for name, load_of in work(p, args, args.seconds, args.runs).items():
                    measured = await measure(stack.components, db, stack.nats_url, load_of, idle)
                    rounds.setdefault(name, []).append(measured)
            paths = {name: min(ms, key=lambda m: sum(m.us.values())) for name, ms in rounds.items()}
    finally:
        await db.close()
    return Report(
        paths=paths,
        idle=idle,
        check=checked,
        loads=args.loads,
        utilisation=args.utilisation,
        cores=args.cores,
        conditions=conditions(
            args,
            args.load_average,
            max(m.others for m in paths.values()),
            max(m.others for m in checked.values()),
        ),
    )


def parse_loads(text: str) -> dict[str, float]:
    """Parse ``hot=10000,webhooks=2000,runs=500`` into path → requests/s."""
    loads = {}
    for item in text.split(","):
        path, _, rps = item.partition("=")
        if path.strip() not in LABELS:
            raise argparse.ArgumentTypeError(f"unknown path {path!r} (from: {', '.join(LABELS)})")
        loads[path.strip()] = float(rps)
    return loads


def parser() -> argparse.ArgumentParser:
    """Return the command line of the benchmark."""
    parser = bench_parser(__doc__, seconds=10.0, rounds=2, concurrency=32)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--runs", type=int, default=2000, help="runs of path (5)")
    parser.add_argument("--run-concurrency", type=int, default=16)
    parser.add_argument("--connections", type=int, default=50, help="connections runs spread over")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--check-seconds", type=float, default=8.0)
    parser.add_argument("--check-concurrency", type=int, default=64)
    parser.add_argument(
        "--loads",
        type=parse_loads,
        default=parse_loads("hot=10000,webhooks=2000,runs=500"),
        help="target loads, path=req/s (paths: hot, fresh, credentials, webhooks, runs)",
    )
    parser.add_argument("--utilisation", type=float, default=0.7)
    parser.add_argument("--cores", type=float, default=float(os.cpu_count() or 1))
    parser.add_argument("--write", metavar="DOC", help="rewrite the generated blocks of DOC")
    return parser


def main() -> None:
    """Run the benchmark, print its tables, and write them into a document if asked."""
    args = parser().parse_args()
    args.load_average = os.getloadavg()[0]
    with embedded_infra() as infra:
        gw, gw_2 = free_port(), free_port()
        env = stack_env(
            infra,
            TETHER_PUBLIC_URL=f"http://127.0.0.1:{gw}",
            TETHER_ALLOW_PRIVATE_URLS="true",
            TETHER_RUN_QUEUE_LIMIT="50000",
        )
        with contextlib.ExitStack() as running:
            procs = stack_processes(running, env, list(SERVICES), gw)
            second = running.enter_context(
                process(
                    python("services.gateway"),
                    {**env, "TETHER_GATEWAY_PORT": str(gw_2)},
                    f"http://127.0.0.1:{gw_2}/healthz",
                )
            )
            components = {name: [proc.pid] for name, proc in procs.items()}
            components |= {"nats": [infra.nats_pid], "postgres": [infra.postgres_pid]}
            components[LOAD_GENERATOR] = [os.getpid()]
            urls = (f"http://127.0.0.1:{gw}", f"http://127.0.0.1:{gw_2}")
            stack = Stack(components, second.pid, urls, infra.database_url, infra.nats_url)
            auth = create_workspace(env)
            admins = [admin_token(env) for _ in range(3)]
            result = asyncio.run(run(args, stack, auth, admins))
    blocks = result.blocks()
    for name, text in blocks.items():
        print(f"\n## {name}\n{text}")
    ratio = result.check_ratio(2)
    print(f"\n2 gateways: predicted/measured req/s {ratio:.2f} (goal ≈ 1)")
    record("capacity", "2 gateways: predicted/measured req/s", ratio, "≈ 1")
    if args.write:
        doc = Path(args.write)
        text = write_blocks(doc.read_text(encoding="utf-8"), blocks)
        doc.write_text(text, encoding="utf-8")
        print(f"wrote the generated blocks of {doc}")


if __name__ == "__main__":
    main()
