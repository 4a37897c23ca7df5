"""Shared pieces of the benchmarks: embedded infra, child processes, a load generator."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from libs.common.infra import EmbeddedNats, EmbeddedPostgres, free_port

ROOT = Path(__file__).resolve().parents[1]
MASTER_KEYS = "b:" + "A" * 43 + "="
SUMMARY_ENV = "TETHER_BENCH_SUMMARY"
"""Names the file ``record`` appends figures to (``bench.all`` sets it for each benchmark)."""


def record(bench: str, figure: str, ratio: float, goal: str | None = None) -> None:
    """Append one ratio as a JSON line to the file ``TETHER_BENCH_SUMMARY`` names, if any.

    Call it beside the line that prints the ratio; without the variable it does nothing.
    """
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    line = json.dumps({"bench": bench, "figure": figure, "ratio": ratio, "goal": goal})
    with open(path, "a", encoding="utf-8") as summary:
        summary.write(line + "\n")


@dataclass(frozen=True)
class Infra:
    """Throw-away PostgreSQL and NATS for one benchmark run."""

    database_url: str
    nats_url: str
    postgres_pid: int = 0
    """The postmaster's pid (0 if unknown); the backends are its children."""
    nats_pid: int = 0
    """The nats-server's pid (0 if unknown)."""


@contextmanager
def embedded_infra() -> Iterator[Infra]:
    """Start embedded PostgreSQL and NATS in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", durable=False)
        nats = EmbeddedNats(Path(tmp) / "nats")
        try:
            database_url, nats_url = pg.start(), nats.start()
            yield Infra(database_url, nats_url, pg.pid or 0, nats.pid or 0)
        finally:
            nats.stop()
            pg.stop()


def stack_env(infra: Infra, **extra: str) -> dict[str, str]:
    """Return the environment of the stack's processes on ``infra`` (plus ``extra``)."""
    return {
        "TETHER_DATABASE_URL": infra.database_url,
        "TETHER_NATS_URL": infra.nats_url,
        "TETHER_MASTER_KEYS": MASTER_KEYS,
        **extra,
    }


def bench_parser(
    doc: str | None, *, seconds: float = 4.0, rounds: int = 2, concurrency: int = 32
) -> argparse.ArgumentParser:
    """Return a parser with the options every load benchmark takes (add its own to it)."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--concurrency", type=int, default=concurrency)
    return parser


@contextmanager
def process(
    args: list[str], env: dict[str, str], ready_url: str, timeout: float = 30
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a child process until the block ends; wait until ``ready_url`` answers 200."""
    proc = subprocess.Popen(
        args,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{args} exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(ready_url, timeout=1) as resp:  # noqa: S310 - loopback
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{args} not ready")
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def python(module: str, *args: str) -> list[str]:
    """Return the command that runs ``module`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def bare_server(running: ExitStack, *flags: str) -> str:
    """Start the bare aiohttp handler (``bench.bare_server``) in ``running``; return its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/ping"
    running.enter_context(process(python("bench.bare_server", str(port), *flags), {}, url))
    return url


async def call_json(http: aiohttp.ClientSession, method: str, url: str, body: object = None) -> Any:
    """Send one JSON request that must succeed; return the JSON answer."""
    async with http.request(method, url, json=body) as resp:
        assert resp.status < 300, await resp.text()
        return await resp.json()


def crm_integration(base_url: str) -> dict[str, Any]:
    """Return the API-key integration ``crm`` of the fake webhook app at ``base_url``."""
    return {
        "key": "crm",
        "name": "CRM",
        "auth": {"type": "api_key"},
        "api": {"baseUrl": base_url, "headers": {"X-Api-Key": "{apiKey}"}},
    }


@dataclass(frozen=True)
class Result:
    """Throughput and latency of one load run."""

    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        """Latency percentile in milliseconds."""
        if not self.latencies:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100)[int(p) - 1] * 1000

    def line(self) -> str:
        """Format one result line."""
        return (
            f"{self.name:<34} {self.rps:>9.0f} req/s   p50 {self.pct(50):6.2f} ms   "
            f"p99 {self.pct(99):6.2f} ms   errors {self.errors}"
        )


async def load(
    name: str,
    url: str,
    *,
    seconds: float,
    concurrency: int,
    headers: dict[str, str] | None = None,
    per_request: Iterator[dict[str, str]] | None = None,
    method: str = "GET",
    body: bytes | None = None,
    ok: int = 200,
    urls: Iterator[str] | None = None,
) -> Result:
    """Send GET ``url`` from ``concurrency`` workers for ``seconds``; return the figures.

    ``per_request`` yields extra headers for each request (e.g. a fresh token each time).
    """
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                extra = next(per_request) if per_request is not None else None
                target = next(urls) if urls is not None else url
                async with http.request(method, target, headers=extra, data=body) as resp:
                    await resp.read()
                    if resp.status != ok:
                        errors += 1
                        continue
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(name, len(latencies), errors, elapsed, latencies)


def best(results: list[Result]) -> Result:
    """Return the run with the highest throughput (noise only ever slows a run down)."""
    return max(results, key=lambda r: r.rps)


def stack_processes(
    running: ExitStack, env: dict[str, str], services: list[str], gateway_port: int
) -> dict[str, subprocess.Popen[bytes]]:
    """Start ``services`` (``name`` or ``name-2`` for a replica) and the gateway in ``running``."""
    procs = {}
    for name in services:
        port = free_port()
        procs[name] = running.enter_context(
            process(
                python(f"services.{name.split('-')[0]}"),
                {**env, "TETHER_HEALTH_PORT": str(port)},
                f"http://127.0.0.1:{port}/readyz",
            )
        )
    procs["gateway"] = running.enter_context(
        process(
            python("services.gateway"),
            {**env, "TETHER_GATEWAY_PORT": str(gateway_port)},
            f"http://127.0.0.1:{gateway_port}/healthz",
        )
    )
    return procs


def cli(env: dict[str, str], *args: str) -> str:
    """Run ``tether`` with ``args``; return what it printed."""
    return subprocess.run(
        python("libs.cli", *args), env=env, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def create_workspace(env: dict[str, str]) -> dict[str, Any]:
    """Create a workspace with the CLI; return it (with its key and secret)."""
    created: dict[str, Any] = json.loads(
        cli(env, "workspace", "create", "--name", "bench", "--json")
    )
    return created


def admin_token(env: dict[str, str]) -> str:
    """Create a workspace with the CLI and mint an admin token for it."""
    key = create_workspace(env)["key"]
    return cli(env, "token", "--workspace", key, "--admin", "--ttl", "7200").strip()


def peak_memory_mb(pid: int) -> float:
    """Return a process's peak resident memory (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
