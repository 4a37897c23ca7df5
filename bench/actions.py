"""Action runs: runs/s and p50/p99 through the gateway, beside a direct call to the fake app.

Each run goes gateway → instances (input check, expressions, the run log) → connections
proxy (credentials) → the fake app, and back. The baseline is the same POST sent straight
to the fake app with its API key, and the same POST through the gateway's connection
proxy (no action: what the run adds on top of it), in the same run, interleaved. Run:
``.venv/bin/python -m bench.actions``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import Any

import aiohttp

from bench.common import (
    admin_token,
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
from tests.fakes.counting_app import CountingApp

ACTION = {
    "key": "create-order",
    "level": "app",
    "integrationKey": "counting",
    "name": "Create an order",
    "inputSchema": {
        "type": "object",
        "properties": {"item": {"type": "string"}, "qty": {"type": "integer"}},
        "required": ["item"],
    },
    "request": {
        "method": "POST",
        "path": "/orders/{{ input.item }}",
        "body": {"item": {"$expr": "input.item"}, "qty": {"$expr": "input.qty"}},
    },
    "outputMapping": "{id: body.item, qty: body.qty}",
}


async def run(args: argparse.Namespace, gateway: str, token: str) -> None:
    """Define the action and a connection, then load both paths in alternating rounds."""
    async with CountingApp(api_key="bench-key") as app:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            await call_json(http, "POST", f"{gateway}/integrations", app.integration())
            await call_json(http, "POST", f"{gateway}/actions", ACTION)
            connection = await call_json(
                http,
                "POST",
                f"{gateway}/connections",
                {
                    "customerId": "c1",
                    "integrationKey": "counting",
                    "credentials": {"apiKey": "bench-key"},
                },
            )
        run_body = json.dumps(
            {"connectionId": connection["id"], "input": {"item": "pen", "qty": 2}}
        )
        kw: dict[str, Any] = {
            "seconds": args.seconds,
            "concurrency": args.concurrency,
            "method": "POST",
        }
        direct, proxied, runs = [], [], []
        for _ in range(args.rounds):
            app.received.clear()  # the fake remembers every request; keep it small
            direct.append(
                await load(
                    "direct POST to the fake app",
                    f"{app.url}/api/orders/pen",
                    headers={"Content-Type": "application/json", "X-Api-Key": "bench-key"},
                    body=json.dumps({"item": "pen", "qty": 2}).encode(),
                    **kw,
                )
            )
            app.received.clear()
            proxied.append(
                await load(
                    "POST /connections/{id}/proxy/…",
                    f"{gateway}/connections/{connection['id']}/proxy/orders/pen",
                    headers={
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {token}",
                    },
                    body=json.dumps({"item": "pen", "qty": 2}).encode(),
                    **kw,
                )
            )
            app.received.clear()
            runs.append(
                await load(
                    "POST /actions/{key}/run (200)",
                    f"{gateway}/actions/create-order/run",
                    headers={
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {token}",
                    },
                    body=run_body.encode(),
                    **kw,
                )
            )
    d, p, r = best(direct), best(proxied), best(runs)
    print(d.line())
    print(p.line())
    print(r.line())
    print(f"ratio action runs/direct: {r.rps / d.rps:.2f}   action runs/proxy: {r.rps / p.rps:.2f}")
    record("actions", "action runs/direct", r.rps / d.rps)
    record("actions", "action runs/proxy", r.rps / p.rps)


def main() -> None:
    """Run the benchmark and print its figures."""
    args = bench_parser(__doc__).parse_args()
    with embedded_infra() as infra:
        gw = free_port()
        env = stack_env(infra, TETHER_ALLOW_PRIVATE_URLS="true")
        with contextlib.ExitStack() as running:
            stack_processes(running, env, ["identity", "connections", "instances"], gw)
            token = admin_token(env)
            asyncio.run(run(args, f"http://127.0.0.1:{gw}", token))


if __name__ == "__main__":
    main()
