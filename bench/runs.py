"""Flow runs: throughput, latency, fairness under a deep queue, and delays that hold nothing.

Figures (two flows replicas, the whole stack as processes, this machine):

(a) API-triggered runs of a 3-node transform flow spread over many connections: runs/s
    from the first queued to the last completed, p50/p99 queued → completed; beside it the
    accept rate of a bare aiohttp handler under the same client (the client's own ceiling).
(b) inbound webhook → run completed (an app-event flow): p50/p99 from the POST to the end.
(c) 10,000 runs queued on one connection while 100 other connections run: the others'
    p99 queued → completed, and its ratio to the same load without the deep queue.
(d) 1,000 runs waiting in a 30 s delay: the flows processes' resident memory, and the
    runs/s of other work meanwhile as a ratio to (a).

Run: ``.venv/bin/python -m bench.runs`` (``--quick`` for a smaller pass).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.common import (
    admin_token,
    bare_server,
    bench_parser,
    call_json,
    crm_integration,
    embedded_infra,
    load,
    record,
    stack_env,
    stack_processes,
)
from libs.common.infra import free_port
from tests.fakes.webhook_app import FakeWebhookApp
from tests.instances.conftest import app_event_type

TRANSFORMS = {
    "a": {"type": "transform", "config": {"expression": "input"}, "links": [{"to": "b"}]},
    "b": {"type": "transform", "config": {"expression": "nodes.a"}, "links": [{"to": "c"}]},
    "c": {"type": "transform", "config": {"expression": "{n: nodes.b.n}"}},
}
ENDED_SQL = """
SELECT count(*) FILTER (WHERE state IN ('completed', 'failed', 'stopped')) AS ended,
       count(*) FILTER (WHERE state = 'failed') AS failed
FROM flows.flow_runs WHERE workspace_id = $1 AND id = ANY($2::uuid[])
"""
TIMES_SQL = """
SELECT extract(epoch FROM created_at) AS queued, extract(epoch FROM ended_at) AS ended
FROM flows.flow_runs WHERE workspace_id = $1 AND id = ANY($2::uuid[])
"""
WAITING_SQL = """
SELECT count(*) FROM flows.flow_run_nodes WHERE workspace_id = $1 AND state = 'waiting'
"""
BY_INPUT_SQL = """
SELECT input->>'id' AS id, extract(epoch FROM ended_at) AS ended FROM flows.flow_runs
WHERE workspace_id = $1 AND state = 'completed' AND input ? 'id'
"""


def pct(values: list[float], q: float) -> float:
    """Return the ``q`` quantile of ``values`` (milliseconds in, milliseconds out)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bench:
    """One workspace on the running stack, with helpers to make flows and runs."""

    def __init__(self, http: aiohttp.ClientSession, gateway: str, db: asyncpg.Pool[Any]) -> None:
        self.http = http
        self.gateway = gateway
        self.db = db
        self.workspace_id: Any = None

    async def connection(self, customer: str) -> str:
        """Create an API-key connection for ``customer``; return its id."""
        body = {"customerId": customer, "integrationKey": "crm", "credentials": {"apiKey": "k"}}
        created = await call_json(self.http, "POST", f"{self.gateway}/connections", body)
        return str(created["id"])

    async def flow(self, key: str, trigger: dict[str, Any], nodes: dict[str, Any]) -> str:
        """Create an app-level flow; return its id."""
        body = {
            "key": key,
            "level": "app",
            "integrationKey": "crm",
            "name": key,
            "trigger": trigger,
            "nodes": nodes,
        }
        return str((await call_json(self.http, "POST", f"{self.gateway}/flows", body))["id"])

    async def instance(self, flow_id: str, connection_id: str) -> str:
        """Deploy a flow to a connection; return the instance id (and learn the workspace)."""
        body = {"flowId": flow_id, "connectionId": connection_id}
        made = await call_json(self.http, "POST", f"{self.gateway}/flow-instances", body)
        self.workspace_id = await self.db.fetchval(
            "SELECT workspace_id FROM flows.flow_instances WHERE id = $1::uuid", made["id"]
        )
        return str(made["id"])

    async def start(self, instance_ids: list[str], total: int, concurrency: int) -> list[str]:
        """Start ``total`` runs round-robin over the instances; return their ids."""
        ids: list[str] = []
        queue = iter(range(total))

        async def client() -> None:
            for n in queue:
                url = f"{self.gateway}/flow-instances/{instance_ids[n % len(instance_ids)]}/run"
                async with self.http.post(url, json={"input": {"n": n}}) as resp:
                    assert resp.status == 202, await resp.text()
                    ids.append((await resp.json())["id"])

        await asyncio.gather(*(client() for _ in range(concurrency)))
        return ids

    async def ended(self, ids: list[str], timeout: float = 600) -> None:
        """Wait until every run of ``ids`` ended (polling the database: this is a benchmark)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = await self.db.fetchrow(ENDED_SQL, self.workspace_id, ids)
            assert row is not None
            if row["ended"] == len(ids):
                assert row["failed"] == 0, f"{row['failed']} runs failed"
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"runs did not end within {timeout} s")

    async def waiting(self, count: int, timeout: float = 120) -> None:
        """Wait until ``count`` runs of the workspace wait in a delay."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.db.fetchval(WAITING_SQL, self.workspace_id) >= count:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{count} runs did not reach their delay within {timeout} s")

    async def figures(self, ids: list[str]) -> tuple[float, float, float]:
        """Return (runs/s first queued → last ended, p50 ms, p99 ms queued → completed)."""
        rows = await self.db.fetch(TIMES_SQL, self.workspace_id, ids)
        lat = [(r["ended"] - r["queued"]) * 1000 for r in rows]
        span = max(float(r["ended"]) for r in rows) - min(float(r["queued"]) for r in rows)
        return len(rows) / span, pct(lat, 0.5), pct(lat, 0.99)


async def transform_instances(b: Bench, connections: list[str]) -> dict[str, str]:
    """Create the 3-node transform flow and deploy it to each connection; return their instances."""
    transform = await b.flow("transform", {"type": "api"}, TRANSFORMS)
    return {c: await b.instance(transform, c) for c in connections}


async def throughput(
    b: Bench, instances: list[str], n: int, conc: int
) -> tuple[float, float, float]:
    """Start ``n`` runs over ``instances`` and wait for all of them; return their figures."""
    began = time.monotonic()
    ids = await b.start(instances, n, conc)
    accepted = n / (time.monotonic() - began)
    await b.ended(ids)
    rate, p50, p99 = await b.figures(ids)
    print(f"    ({n} POST /run accepted at {accepted:.0f}/s; executed at {rate:.0f} runs/s)")
    return rate, p50, p99


async def webhook_latency(
    b: Bench, app: FakeWebhookApp, connection_id: str, count: int
) -> tuple[float, float]:
    """Post ``count`` app events one at a time; return p50/p99 ms from the POST to run end."""
    [sub] = [s for s in app.subscriptions.values() if s["connection"] == connection_id]
    sent: dict[str, float] = {}
    for i in range(count):
        body = json.dumps({"events": [{"type": "contact.created", "id": f"wh-{i}"}]}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hook-Signature": app.sign(body, sub["secret"]),
            "X-Delivery-Id": f"d-{i}",
        }
        sent[f"wh-{i}"] = time.time()
        async with b.http.post(sub["url"], data=body, headers=headers) as resp:
            assert resp.status == 202, await resp.text()
        await asyncio.sleep(0.02)  # a steady trickle, not a burst: this is latency, not load
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = await b.db.fetch(BY_INPUT_SQL, b.workspace_id)
        done = {r["id"]: float(r["ended"]) for r in rows if r["id"] in sent}
        if len(done) == count:
            lat = [(done[k] - sent[k]) * 1000 for k in sent]
            return pct(lat, 0.5), pct(lat, 0.99)
        await asyncio.sleep(0.2)
    raise TimeoutError("webhook runs did not complete")


def rss_mb(pid: int) -> float:
    """Return a process's resident memory now (VmRSS) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(
    args: argparse.Namespace,
    gateway: str,
    token: str,
    env: dict[str, str],
    bare: str,
    flows_pids: list[int],
) -> None:
    """Set up the workspace, then measure (a) to (d)."""
    scale = 0.2 if args.quick else 1.0
    db = await asyncpg.create_pool(env["TETHER_DATABASE_URL"], min_size=1, max_size=4)
    headers = {"Authorization": f"Bearer {token}"}
    async with FakeWebhookApp(api_key="k") as app, aiohttp.ClientSession(headers=headers) as http:
        b = Bench(http, gateway, db)
        await call_json(http, "POST", f"{gateway}/integrations", crm_integration(app.url))
        await call_json(
            http,
            "POST",
            f"{gateway}/app-event-types",
            app_event_type(deliveryIdHeader="X-Delivery-Id"),
        )
        hooked = await b.flow(
            "hooked",
            {"type": "app-event", "appEventTypeKey": "contact-created"},
            {"t": {"type": "transform", "config": {"expression": "input"}}},
        )
        delayed = await b.flow(
            "delayed",
            {"type": "api"},
            {"wait": {"type": "delay", "config": {"seconds": 30}}},
        )
        conns = [await b.connection(f"c{i}") for i in range(101)]
        deep, others = conns[0], conns[1:]
        inst = await transform_instances(b, conns)
        await b.instance(hooked, conns[1])
        delay_insts = [await b.instance(delayed, c) for c in others]

        # (a) throughput over 100 connections, and the client's ceiling on a bare handler.
        ceiling = await load(
            "bare aiohttp handler (the client's ceiling)",
            bare,
            seconds=3,
            concurrency=32,
            method="POST",
            body=b"{}",
            headers={"Content-Type": "application/json"},
        )
        n = int(2000 * scale)
        rate, p50, p99 = await throughput(b, [inst[c] for c in others], n, 32)
        print(f"(a) {n} API runs of a 3-node transform flow over 100 connections, 2 replicas:")
        print(f"    {rate:.0f} runs/s queued→completed; p50 {p50:.0f} ms, p99 {p99:.0f} ms")
        print(
            f"    ratio runs/s to a bare handler's accepts/s with the same client: {rate / ceiling.rps:.2f}"
        )
        record("runs", "(a) runs/s / bare accepts/s", rate / ceiling.rps)

        # (b) inbound webhook → run completed.
        w50, w99 = await webhook_latency(b, app, conns[1], int(200 * scale))
        print(f"(b) webhook → run completed: p50 {w50:.0f} ms, p99 {w99:.0f} ms")

        # (c) fairness: the others' p99 beside a deep queue on one connection.
        base_rate, _, base99 = await throughput(b, [inst[c] for c in others], int(1000 * scale), 32)
        deep_ids = await b.start([inst[deep]], int(10_000 * scale), 32)
        rate_c, _, deep99 = await throughput(b, [inst[c] for c in others], int(1000 * scale), 32)
        print(f"(c) {len(deep_ids)} runs queued on one connection; 100 others' p99 {deep99:.0f} ms")
        print(
            f"    beside {base99:.0f} ms without the deep queue: ratio {deep99 / base99:.2f} (goal ≤ 1.5)"
        )
        record("runs", "(c) others' p99 beside a deep queue/without", deep99 / base99, "≤ 1.5")
        await b.ended(deep_ids, timeout=1200)

        # (d) 1,000 runs waiting in a 30 s delay.
        before = sum(rss_mb(p) for p in flows_pids)
        waiting = await b.start(delay_insts, int(1000 * scale), 32)
        await b.waiting(len(waiting))
        held = sum(rss_mb(p) for p in flows_pids)
        rate_d, _, _ = await throughput(b, [inst[c] for c in others], int(1000 * scale), 32)
        print(
            f"(d) {len(waiting)} runs waiting in a delay: flows RSS {held:.0f} MB (before {before:.0f} MB)"
        )
        print(
            f"    other runs meanwhile {rate_d:.0f} runs/s, ratio to without: {rate_d / base_rate:.2f}"
        )
        record("runs", "(d) runs/s with delayed runs waiting/without", rate_d / base_rate)
        await b.ended(waiting, timeout=300)
        print(
            f"(ratios) deep queue p99 {deep99 / base99:.2f}; delays' runs/s {rate_d / base_rate:.2f}; (c) runs/s {rate_c / base_rate:.2f}"
        )
        record("runs", "(c) others' runs/s beside a deep queue/without", rate_c / base_rate)
    await db.close()


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = bench_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="a fifth of the runs")
    args = parser.parse_args()
    with embedded_infra() as infra:
        gw = free_port()
        env = stack_env(
            infra,
            TETHER_PUBLIC_URL=f"http://127.0.0.1:{gw}",
            TETHER_ALLOW_PRIVATE_URLS="true",
            TETHER_RUN_QUEUE_LIMIT="20000",
        )
        with contextlib.ExitStack() as running:
            procs = stack_processes(
                running, env, ["identity", "connections", "instances", "flows", "flows-2"], gw
            )
            bare = bare_server(running, "--post")
            token = admin_token(env)
            pids = [procs["flows"].pid, procs["flows-2"].pid]
            asyncio.run(run(args, f"http://127.0.0.1:{gw}", token, env, bare, pids))


if __name__ == "__main__":
    main()
