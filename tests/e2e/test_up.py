"""`tether up` end to end: separate processes, gateway → every service, clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from libs.common.bus import connect
from libs.common.config import SERVICES
from libs.common.infra import free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _tether(
    *args: str, env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "libs.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any], dict[str, str]]]:
    home = tmp_path_factory.mktemp("home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TETHER_")},
        "TETHER_HOME": str(home),
        "TETHER_GATEWAY_PORT": str(free_port()),
    }
    out = home / "up.out"
    with out.open("w") as sink:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "libs.cli", "up"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = _tether("status", "--json", env=env)
        state = json.loads(status.stdout)
        if state["running"]:
            break
        if proc.poll() is not None:
            raise AssertionError(f"tether up exited: {out.read_text()}")
        time.sleep(0.2)
    assert state.get("running"), "tether up did not come up in time"
    try:
        yield proc, state, env
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_up_prints_how_to_call_it(
    running: tuple[subprocess.Popen[bytes], dict[str, Any], dict[str, str]],
) -> None:
    _, state, env = running
    assert state["gatewayUrl"] == f"http://127.0.0.1:{env['TETHER_GATEWAY_PORT']}"
    assert state["workspaceKey"].startswith("ws_")
    printed = (Path(env["TETHER_HOME"]) / "up.out").read_text()
    assert state["gatewayUrl"] in printed
    assert state["adminToken"] in printed
    assert "curl" in printed
    for name in (*SERVICES, "gateway", "postgres", "nats"):
        assert state["processes"][name]["state"] == "running", name
        assert _alive(state["processes"][name]["pid"]), name
    assert len({state["processes"][n]["pid"] for n in (*SERVICES, "gateway")}) == len(SERVICES) + 1


async def test_up_gateway_reaches_every_service(
    running: tuple[subprocess.Popen[bytes], dict[str, Any], dict[str, str]],
) -> None:
    _, state, _ = running
    async with aiohttp.ClientSession() as http:
        async with http.get(state["gatewayUrl"] + "/healthz") as resp:
            assert resp.status == 200
        async with http.get(state["gatewayUrl"] + "/system/ping") as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        assert all(body["services"][name]["ok"] for name in SERVICES)
        headers = {"Authorization": f"Bearer {state['adminToken']}"}
        async with http.get(state["gatewayUrl"] + "/workspace", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["key"] == state["workspaceKey"]


async def test_up_every_service_answers_srv_ping(
    running: tuple[subprocess.Popen[bytes], dict[str, Any], dict[str, str]],
) -> None:
    _, state, _ = running
    nc = await connect(state["natsUrl"], "e2e")
    try:
        for name in SERVICES:
            msg = await nc.request(f"$SRV.PING.{name}", b"", timeout=5)
            assert json.loads(msg.data)["name"] == name
    finally:
        await nc.close()


def test_up_cli_creates_workspace_and_tokens(
    running: tuple[subprocess.Popen[bytes], dict[str, Any], dict[str, str]],
) -> None:
    _, state, env = running
    created = _tether("workspace", "create", "--name", "Acme", "--json", env=env)
    assert created.returncode == 0, created.stderr
    ws = json.loads(created.stdout)
    assert set(ws) == {"id", "key", "secret"}
    token = _tether("token", "--workspace", ws["key"], "--admin", env=env)
    assert token.returncode == 0, token.stderr

    async def check() -> None:
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
            async with http.get(state["gatewayUrl"] + "/workspace", headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["id"] == ws["id"]

    asyncio.run(check())
    second = _tether("up", env=env)
    assert second.returncode == 1
    assert "already running" in second.stdout


def test_up_sigterm_stops_everything_within_10s(
    running: tuple[subprocess.Popen[bytes], dict[str, Any], dict[str, str]],
) -> None:
    proc, state, env = running
    pids = [p["pid"] for p in state["processes"].values()]
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    deadline = started + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if _alive(pid)], "processes left behind"
    assert time.monotonic() - started < 10
    assert proc.returncode == 0
    status = _tether("status", "--json", env=env)
    assert json.loads(status.stdout)["running"] is False
    assert status.returncode == 1
