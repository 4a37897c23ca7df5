"""kill -9 of a flows replica (two run as separate processes) mid-run and mid-delay: every
run ends, completed nodes never run again, the node in flight at most once more."""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from libs.common.bus import Bus, connect
from libs.common.infra import EmbeddedNats, free_port
from tests.conftest import (
    ROOT,
    Infra,
    Stack,
    build_service,
    create_database,
    eventually,
    start_gateway,
)
from tests.e2e.stack import Proc
from tests.flows.runs_stack import RunsEnv, make_env
from tests.flows.test_runs import http

pytestmark = pytest.mark.slow


class Replica(Proc):
    """One flows process, its health server on ``TETHER_HEALTH_PORT``."""

    @classmethod
    def of(cls, env: dict[str, str], log: Path) -> Replica:
        """Return a flows replica (not started) with a health port of its own."""
        health = {"TETHER_HEALTH_PORT": str(free_port())}
        return cls([sys.executable, "-m", "services.flows"], {**env, **health}, log)

    async def ready(self) -> bool:
        """Tell whether the replica answers ``/readyz`` with 200."""

        def get() -> bool:
            try:
                url = f"http://127.0.0.1:{self.env['TETHER_HEALTH_PORT']}/readyz"
                with urllib.request.urlopen(url, timeout=1) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        return await asyncio.to_thread(get)


@dataclass
class Cluster:
    """The stack with flows as two processes."""

    stack: Stack
    replicas: list[Replica]


@pytest.fixture(scope="module")
async def cluster(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    base = tmp_path_factory.mktemp("runs-crash")
    nats = EmbeddedNats(base / "nats")
    own = Infra(
        await create_database(infra.database_url, "tether_crash"), nats.start(), infra.master_keys
    )
    runners: list[web.AppRunner] = []
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TETHER_")},
        "TETHER_DATABASE_URL": own.database_url,
        "TETHER_NATS_URL": own.nats_url,
        "TETHER_ALLOW_PRIVATE_URLS": "true",
        "TETHER_RUN_LEASE": "2",
        "TETHER_RUN_POLL_INTERVAL": "0.1",
        "TETHER_LOG_FORMAT": "json",
        "TETHER_SHUTDOWN_GRACE": "2",
        "PYTHONPATH": str(ROOT),
    }
    replicas = [Replica.of(env, base / f"flows{i}.log") for i in range(2)]
    try:
        for name in ("identity", "connections", "instances"):
            runner = web.AppRunner(
                build_service(name, own, public_url=f"http://127.0.0.1:{port}"),
                handle_signals=False,
            )
            await runner.setup()
            runners.append(runner)
        gateway, url = await start_gateway(own, port=port)
        runners.append(gateway)
        for replica in replicas:
            replica.start()
        for replica in replicas:
            await eventually(replica.ready, timeout=60)
        nc = await connect(own.nats_url, "crash-tests")
        try:
            yield Cluster(Stack(own, url, Bus(nc), runners), replicas)
        finally:
            await nc.drain()
    finally:
        for replica in replicas:
            replica.stop()
        for runner in reversed(runners):
            await runner.cleanup()
        nats.stop()


@pytest.fixture
async def crash_env(cluster: Cluster) -> AsyncIterator[RunsEnv]:
    async with make_env(cluster.stack) as env:
        yield env


async def _start_many(env: RunsEnv, nodes: dict[str, Any], count: int) -> list[str]:
    ids = []
    for n in range(count):  # one connection each: both replicas get work
        instance = await env.instance(dict(nodes), customer=f"c{n}")
        ids.append((await env.start(instance, {"n": n}))["id"])
    return ids


async def test_runs_survive_kill_9_mid_run(cluster: Cluster, crash_env: RunsEnv) -> None:
    env = crash_env
    env.app.slow("/b", 2.0)
    nodes = {
        "a": http(env.url("/a"), "b"),
        "b": http(env.url("/b"), "c"),
        "c": http(env.url("/c")),
    }
    ids = await _start_many(env, nodes, 4)

    async def in_flight() -> bool:
        return len(env.app.on("/b")) >= 2

    await eventually(in_flight, timeout=30)
    cluster.replicas[0].kill()
    runs = [await env.ended(run_id, timeout=60) for run_id in ids]
    cluster.replicas[0].start()
    await eventually(cluster.replicas[0].ready, timeout=60)
    assert [r["state"] for r in runs] == ["completed"] * 4, runs
    for run_id in ids:
        assert env.app.count(f"{run_id}:a") == 1  # completed before the kill: never again
        assert env.app.count(f"{run_id}:c") == 1
        assert 1 <= env.app.count(f"{run_id}:b") <= 2  # in flight: at most once more
    assert {r.idempotency_key for r in env.app.on("/b")} == {f"{i}:b" for i in ids}


async def test_runs_survive_kill_9_mid_delay(cluster: Cluster, crash_env: RunsEnv) -> None:
    env = crash_env
    nodes = {
        "pre": http(env.url("/pre"), "wait"),
        "wait": {"type": "delay", "config": {"seconds": 3}, "links": [{"to": "post"}]},
        "post": http(env.url("/post")),
    }
    ids = await _start_many(env, nodes, 4)

    async def all_waiting() -> bool:
        runs = [await env.run(run_id) for run_id in ids]
        return all(r["nodes"].get("wait", {}).get("state") == "waiting" for r in runs)

    await eventually(all_waiting, timeout=30)
    for replica in cluster.replicas:  # every replica dies while the runs wait
        replica.kill()
    for replica in cluster.replicas:
        replica.start()
    for replica in cluster.replicas:
        await eventually(replica.ready, timeout=60)
    runs = [await env.ended(run_id, timeout=60) for run_id in ids]
    assert [r["state"] for r in runs] == ["completed"] * 4, runs
    for run_id in ids:
        assert env.app.count(f"{run_id}:pre") == 1
        assert env.app.count(f"{run_id}:post") == 1
