"""`tether up` end to end: separate processes, gateway → every service, clean stop."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from libs.common.bus import connect
from libs.common.config import SERVICES
from tests.e2e.stack import Running, alive, tether, tether_up

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with tether_up(tmp_path_factory.mktemp("home")) as stack:
        yield stack


def test_up_prints_how_to_call_it(
    running: Running,
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
        assert alive(state["processes"][name]["pid"]), name
    assert len({state["processes"][n]["pid"] for n in (*SERVICES, "gateway")}) == len(SERVICES) + 1


async def test_up_gateway_reaches_every_service(
    running: Running,
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
    running: Running,
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
    running: Running,
) -> None:
    _, state, env = running
    created = tether("workspace", "create", "--name", "Acme", "--json", env=env)
    assert created.returncode == 0, created.stderr
    ws = json.loads(created.stdout)
    assert set(ws) == {"id", "key", "secret"}
    token = tether("token", "--workspace", ws["key"], "--admin", env=env)
    assert token.returncode == 0, token.stderr

    async def check() -> None:
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
            async with http.get(state["gatewayUrl"] + "/workspace", headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["id"] == ws["id"]

    asyncio.run(check())
    second = tether("up", env=env)
    assert second.returncode == 1
    assert "already running" in second.stdout


def test_up_sigterm_stops_everything_within_10s(
    running: Running,
) -> None:
    proc, state, env = running
    pids = [p["pid"] for p in state["processes"].values()]
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    deadline = started + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if alive(pid)], "processes left behind"
    assert time.monotonic() - started < 10
    assert proc.returncode == 0
    status = tether("status", "--json", env=env)
    assert json.loads(status.stdout)["running"] is False
    assert status.returncode == 1
