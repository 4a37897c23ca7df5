"""Flow instances at scale: 10,000 flows and 50,000 instances, read through the gateway.

p50/p99 of ``GET /flow-instances/{id}`` (the effective flow computed from the base revision
and the customisation) over random instances, and of a list page of 100, beside a bare
aiohttp handler in the same run. Run: ``.venv/bin/python -m bench.flows``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import time
import uuid
from typing import Any

import aiohttp
import asyncpg

from bench.common import (
    admin_token,
    bare_server,
    bench_parser,
    best,
    embedded_infra,
    load,
    record,
    stack_env,
    stack_processes,
)
from libs.common.infra import free_port
from tests.flows.conftest import flow_body

SEED_FLOWS_SQL = """
INSERT INTO flows.flows (id, workspace_id, key, level, definition, auto_deploy)
SELECT gen_random_uuid(), $1, 'bench-' || i, 'universal', $2::jsonb, false FROM generate_series(1, $3) AS i
"""
SEED_REVISIONS_SQL = """
INSERT INTO flows.flow_revisions (flow_id, workspace_id, revision, definition)
SELECT id, workspace_id, 1, definition FROM flows.flows WHERE workspace_id = $1
ON CONFLICT DO NOTHING
"""
SEED_INSTANCES_SQL = """
INSERT INTO flows.flow_instances (id, workspace_id, flow_id, connection_id, customer_id, integration_key,
    base_revision, customization)
SELECT gen_random_uuid(), f.workspace_id, f.id, gen_random_uuid(), 'c' || (random() * 1000)::int, 'crm', 1,
       CASE WHEN n % 2 = 0 THEN $2::jsonb ELSE '{}'::jsonb END
FROM flows.flows f CROSS JOIN generate_series(1, $3) AS n WHERE f.workspace_id = $1
"""


async def run(
    args: argparse.Namespace, gateway: str, token: str, database_url: str, bare: str
) -> None:
    """Seed, read, print."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{gateway}/flows", json=flow_body("template")) as resp:
            assert resp.status == 201, await resp.text()
            template = await resp.json()
        async with http.get(f"{gateway}/workspace") as resp:
            workspace_id = uuid.UUID((await resp.json())["id"])
    definition = {k: template[k] for k in ("name", "trigger", "nodes", "parameters", "autoDeploy")}
    custom = {
        "nodes": {"send": {"config": {"url": "https://custom.example/in"}}},
        "parameters": {"channel": "#x"},
    }
    conn = await asyncpg.connect(database_url)
    try:
        started = time.perf_counter()
        await conn.execute(SEED_FLOWS_SQL, workspace_id, json.dumps(definition), args.flows - 1)
        await conn.execute(SEED_REVISIONS_SQL, workspace_id)
        await conn.execute(
            SEED_INSTANCES_SQL, workspace_id, json.dumps(custom), args.instances // args.flows
        )
        await conn.execute("ANALYZE")
        ids = [
            str(r["id"])
            for r in await conn.fetch(
                "SELECT id FROM flows.flow_instances WHERE workspace_id = $1", workspace_id
            )
        ]
        flows = await conn.fetchval(
            "SELECT count(*) FROM flows.flows WHERE workspace_id = $1", workspace_id
        )
    finally:
        await conn.close()
    print(f"seeded {flows} flows and {len(ids)} instances in {time.perf_counter() - started:.1f}s")
    rng = random.Random(7)
    one = (f"{gateway}/flow-instances/{rng.choice(ids)}" for _ in itertools.count())
    kw: dict[str, Any] = {"seconds": args.seconds, "concurrency": args.concurrency}
    bases, gets, pages = [], [], []
    for _ in range(args.rounds):
        bases.append(await load("bare aiohttp handler", bare, **kw))
        gets.append(await load("GET /flow-instances/{id}", "", headers=headers, urls=one, **kw))
        pages.append(
            await load(
                "GET /flow-instances?limit=100",
                f"{gateway}/flow-instances?limit=100",
                headers=headers,
                **kw,
            )
        )
    b, g, p = best(bases), best(gets), best(pages)
    for result in (b, g, p):
        print(result.line())
    print(f"ratio get/bare: {g.rps / b.rps:.2f}   ratio list/bare: {p.rps / b.rps:.2f}")
    record("flows", "get instance/bare", g.rps / b.rps)
    record("flows", "list page/bare", p.rps / b.rps)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = bench_parser(__doc__, concurrency=16)
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=50_000)
    args = parser.parse_args()
    with embedded_infra() as infra:
        env = stack_env(infra)
        gw = free_port()
        with contextlib.ExitStack() as running:
            stack_processes(running, env, ["identity", "connections", "instances", "flows"], gw)
            bare = bare_server(running)
            token = admin_token(env)
            asyncio.run(run(args, f"http://127.0.0.1:{gw}", token, infra.database_url, bare))


if __name__ == "__main__":
    main()
