"""Deploy fan-out: redeploy a changed app-event type to 1,000 connections against the fake app.

Prints the wall time, steps/s, the instances service's peak memory, and the progress
readings (steps done / total) over time. Run: ``.venv/bin/python -m bench.deploy``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import aiohttp

from bench.common import (
    admin_token,
    call_json,
    crm_integration,
    embedded_infra,
    peak_memory_mb,
    stack_env,
    stack_processes,
)
from libs.common.infra import free_port
from tests.fakes.webhook_app import FakeWebhookApp
from tests.instances.conftest import DATA_SOURCE, app_event_type


async def progress(
    http: aiohttp.ClientSession, gateway: str, count: int, since: int
) -> tuple[int, int]:
    """Return (steps done, steps total) over the newest ``count`` deployments."""
    page = await call_json(http, "GET", f"{gateway}/deployments?integrationKey=crm&limit={count}")
    fresh = (
        [d for d in page["items"] if d["reason"].startswith("definition:")]
        if since
        else page["items"]
    )
    return sum(d["stepsDone"] for d in fresh), sum(d["stepsTotal"] for d in fresh)


async def run(args: argparse.Namespace, gateway: str, token: str, instances_pid: int) -> None:
    """Seed, fan out, watch, print."""
    async with FakeWebhookApp(api_key="bench-key") as app:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(
            headers=headers, connector=aiohttp.TCPConnector(limit=32)
        ) as http:
            await call_json(http, "POST", f"{gateway}/integrations", crm_integration(app.url))
            await call_json(http, "POST", f"{gateway}/app-event-types", app_event_type())
            await call_json(http, "POST", f"{gateway}/data-sources", DATA_SOURCE)
            sem = asyncio.Semaphore(32)

            async def connect(i: int) -> None:
                body = {
                    "customerId": f"c{i}",
                    "integrationKey": "crm",
                    "credentials": {"apiKey": "bench-key"},
                }
                async with sem:
                    await call_json(http, "POST", f"{gateway}/connections", body)

            started = time.perf_counter()
            await asyncio.gather(*(connect(i) for i in range(args.connections)))
            while True:  # the first deployments (on connection.created) run by themselves
                done, total = await progress(http, gateway, args.connections, 0)
                if total and done == total and total >= args.connections:
                    break
                await asyncio.sleep(0.5)  # polling progress
            print(
                f"seeded {args.connections} connections and deployed them in {time.perf_counter() - started:.1f}s"
            )
            changed = app_event_type()["subscribe"]
            changed["body"] = {**changed["body"], "events": ["contact.created", "contact.updated"]}
            await call_json(
                http, "PATCH", f"{gateway}/app-event-types/contact-created", {"subscribe": changed}
            )
            started = time.perf_counter()
            fan = await call_json(http, "POST", f"{gateway}/app-event-types/contact-created/deploy")
            readings = []
            while True:
                done, total = await progress(http, gateway, args.connections, 1)
                readings.append((time.perf_counter() - started, done, total))
                if total and done >= total:
                    break
                await asyncio.sleep(0.5)  # polling progress
            wall = time.perf_counter() - started
    print(
        f"fan-out: {fan['deployments']} deployments, {total} steps in {wall:.1f}s = {total / wall:.0f} steps/s"
    )
    print(f"instances peak memory: {peak_memory_mb(instances_pid):.0f} MB")
    print(
        "progress (s, done/total): "
        + ", ".join(f"{t:.1f}s {d}/{n}" for t, d, n in readings[:: max(1, len(readings) // 12)])
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    with embedded_infra() as infra:
        gw = free_port()
        env = stack_env(
            infra, TETHER_LOG_LEVEL="warning", TETHER_PUBLIC_URL=f"http://127.0.0.1:{gw}"
        )
        with contextlib.ExitStack() as running:
            procs = stack_processes(running, env, ["identity", "connections", "instances"], gw)
            token = admin_token(env)
            asyncio.run(run(args, f"http://127.0.0.1:{gw}", token, procs["instances"].pid))


if __name__ == "__main__":
    main()
