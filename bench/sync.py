"""Sync throughput: a full pass over 100,000 records from the fake CRM, then 1 % changed.

Prints, for the first pass: wall time, records/s, the instances service's peak memory and
the events it emitted; as a baseline in the same run, the time to read the same pages
live (``GET …/records``, the same proxy hops without storing or detecting anything); and
for a second full pass after 1 % of the records changed: wall time and events emitted.
Run: ``.venv/bin/python -m bench.sync [--records 100000] [--page-size 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import asyncpg

from bench.common import (
    admin_token,
    call_json,
    embedded_infra,
    peak_memory_mb,
    record,
    stack_env,
    stack_processes,
)
from libs.common.infra import free_port
from tests.fakes.fake_crm import FakeCrm

EVENTS_SQL = """
SELECT subject, count(*) AS n FROM instances.outbox
WHERE subject LIKE 'tether.evt.instances.data_record.%' GROUP BY subject
"""


async def events(database_url: str) -> dict[str, int]:
    """Return the data_record events emitted so far, by verb."""
    db = await asyncpg.connect(database_url)
    try:
        rows = await db.fetch(EVENTS_SQL)
    finally:
        await db.close()
    return {str(r["subject"]).rsplit(".", 1)[-1]: int(r["n"]) for r in rows}


async def sync_pass(http: aiohttp.ClientSession, gateway: str, instance: str) -> dict[str, Any]:
    """Run one pass and wait for its end; return the pass."""
    await call_json(http, "POST", f"{gateway}/data-source-instances/{instance}/sync")
    while True:
        view = await call_json(http, "GET", f"{gateway}/data-source-instances/{instance}")
        last = view["lastPass"]
        if view["syncState"] in ("idle", "held", "failed") and last and last["endedAt"]:
            return dict(last)
        await asyncio.sleep(0.2)  # polling the pass's progress


async def list_live(http: aiohttp.ClientSession, gateway: str, instance: str) -> int:
    """Read every page live through the proxy; return the records read."""
    count, cursor = 0, None
    while True:
        params = {"cursor": cursor} if cursor else None
        async with http.get(
            f"{gateway}/data-source-instances/{instance}/records", params=params
        ) as resp:
            page = await resp.json()
        count += len(page["items"])
        cursor = page["cursor"]
        if not cursor:
            return count


async def run(
    args: argparse.Namespace, gateway: str, token: str, pid: int, database_url: str
) -> None:
    """Seed, sync twice, print."""
    async with FakeCrm(api_key="bench-crm", page_size=args.page_size) as crm:
        crm.add(args.records)
        headers = {"Authorization": f"Bearer {token}"}
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            await call_json(http, "POST", f"{gateway}/integrations", crm.integration())
            await call_json(http, "POST", f"{gateway}/data-sources", crm.data_source("cursor"))
            body = {
                "customerId": "c1",
                "integrationKey": "crm",
                "credentials": {"apiKey": "bench-crm"},
            }
            connection = await call_json(http, "POST", f"{gateway}/connections", body)
            instance = ""
            while not instance:
                page = await call_json(
                    http,
                    "GET",
                    f"{gateway}/data-source-instances?connectionId={connection['id']}",
                )
                ready = [i["id"] for i in page["items"] if i["status"] == "ready"]
                instance = ready[0] if ready else ""
                await asyncio.sleep(0.2)  # polling the deployment
            started = time.perf_counter()
            read = await list_live(http, gateway, instance)
            live_wall = time.perf_counter() - started
            started = time.perf_counter()
            first = await sync_pass(http, gateway, instance)
            first_wall = time.perf_counter() - started
            first_events = await events(database_url)
            memory = peak_memory_mb(pid)
            changed = list(crm.contacts)[:: max(1, 100)][: args.records // 100]
            crm.touch(changed)
            started = time.perf_counter()
            second = await sync_pass(http, gateway, instance)
            second_wall = time.perf_counter() - started
            second_events = await events(database_url)
    total = first["records"]
    print(f"records: {args.records} in pages of {args.page_size}")
    print(
        f"baseline, live listing through the proxy: {read} records in {live_wall:.1f}s"
        f" = {read / live_wall:,.0f} records/s"
    )
    print(
        f"first full pass: {first['status']}, {total} records, {first['pages']} pages in"
        f" {first_wall:.1f}s = {total / first_wall:,.0f} records/s"
        f" ({first_wall / live_wall:.2f}x the live listing)"
    )
    record("sync", "first full pass time/live listing time", first_wall / live_wall)
    print(f"  events emitted: {first_events}")
    print(f"  instances peak memory (VmHWM): {memory:.0f} MB")
    print(
        f"second full pass, {len(changed)} records changed (1 %): {second['status']} in"
        f" {second_wall:.1f}s, created {second['created']}, updated {second['updated']},"
        f" deleted {second['deleted']}"
    )
    emitted = {k: second_events.get(k, 0) - first_events.get(k, 0) for k in second_events}
    print(f"  events emitted by the second pass: {emitted}")
    print(f"  instances peak memory after both: {peak_memory_mb(pid):.0f} MB")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    with embedded_infra() as infra:
        gw = free_port()
        env = stack_env(
            infra,
            TETHER_LOG_LEVEL="warning",
            TETHER_PUBLIC_URL=f"http://127.0.0.1:{gw}",
            TETHER_SYNC_POLL_INTERVAL="0.2",
            TETHER_ALLOW_PRIVATE_URLS="true",
        )
        with contextlib.ExitStack() as running:
            procs = stack_processes(running, env, ["identity", "connections", "instances"], gw)
            token = admin_token(env)
            asyncio.run(
                run(
                    args,
                    f"http://127.0.0.1:{gw}",
                    token,
                    procs["instances"].pid,
                    infra.database_url,
                )
            )


if __name__ == "__main__":
    main()
