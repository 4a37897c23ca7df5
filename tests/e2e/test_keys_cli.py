"""`tether keys rotate` against a real `tether up` stack: separate processes, rolled online."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from libs.common.contracts.keys import SEALED_SERVICES
from tests.conftest import ROOT
from tests.e2e.stack import tether, tether_up

pytestmark = pytest.mark.slow


async def _tether_keys(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    command = [sys.executable, "-m", "libs.cli", "keys", *args]
    pipe, merged = asyncio.subprocess.PIPE, asyncio.subprocess.STDOUT
    return await asyncio.create_subprocess_exec(
        *command, env=env, cwd=ROOT, stdout=pipe, stderr=merged
    )


@pytest.mark.timeout(300)  # starts a whole stack, then rolls every one of its processes
async def test_keys_rotate_rolls_the_local_stack_while_it_serves(tmp_path: Path) -> None:
    """Interrupted once and run again, the rotation finishes; the API never stops answering."""
    (tmp_path / "home").mkdir()
    with tether_up(tmp_path / "home") as (_, state, env):
        home = Path(env["TETHER_HOME"])
        url, admin = state["gatewayUrl"], {"Authorization": f"Bearer {state['adminToken']}"}
        old_kid = (home / "master.keys").read_text().split(":")[0]
        async with aiohttp.ClientSession() as http:

            async def call(method: str, path: str, body: object = None) -> tuple[int, Any]:
                async with http.request(method, url + path, json=body, headers=admin) as resp:
                    return resp.status, await resp.json(content_type=None)

            status, _ = await call(
                "POST",
                "/integrations",
                {
                    "key": "crm",
                    "name": "CRM",
                    "auth": {"type": "api_key"},
                    "api": {"baseUrl": "http://127.0.0.1:9"},
                },
            )
            assert status == 201
            ids = []
            for n in range(12):
                status, conn = await call(
                    "POST",
                    "/connections",
                    {
                        "customerId": f"c{n}",
                        "integrationKey": "crm",
                        "credentials": {"apiKey": f"key-{n}"},
                    },
                )
                assert status == 201, conn
                ids.append(conn["id"])

            done = asyncio.Event()
            calls: list[int] = []
            failures: list[tuple[str, int]] = []

            async def load() -> None:
                while not done.is_set():
                    for path in (
                        "/workspace",
                        f"/connections/{ids[len(calls) % len(ids)]}/credentials",
                    ):
                        status, _ = await call("GET", path)
                        calls.append(status)
                        if status != 200:
                            failures.append((path, status))

            workers = [asyncio.create_task(load()) for _ in range(4)]
            try:
                # The first run is killed as it promotes the new key; running again finishes it.
                first = await _tether_keys("rotate", "--kid", "k2", "--batch-size", "3", env=env)
                assert first.stdout is not None
                while b"2/4" not in (line := await first.stdout.readline()):
                    assert line, "the rotation ended before step 2"
                first.kill()
                await first.wait()
                resumed = await _tether_keys("rotate", "--batch-size", "3", env=env)
                out, _ = await asyncio.wait_for(resumed.communicate(), 240)
            finally:
                done.set()
                await asyncio.gather(*workers)
            printed = out.decode()
            assert resumed.returncode == 0, printed
            for step in ("resuming the rotation to k2", "2/4", "3/4", "4/4", f"retired {old_kid}"):
                assert step in printed, printed
            assert not (home / "rotation.json").exists()
            assert not failures, (failures[:10], len(calls))
            assert len(calls) > 50  # the API was busy throughout

            # Only the new key is left, everything is sealed under it, and it all opens.
            assert (home / "master.keys").read_text().split(":")[0] == "k2"
            assert (home / "master.keys").stat().st_mode & 0o777 == 0o600
            statuses = json.loads(tether("keys", "status", "--json", env=env).stdout)
            assert {s["service"] for s in statuses} == set(SEALED_SERVICES)
            for s in statuses:
                assert (s["activeKid"], s["kids"]) == ("k2", ["k2"]), s
                for column in s["columns"]:
                    assert set(column["byKid"]) <= {"k2"}, column
            after = json.loads(tether("status", "--json", env=env).stdout)
            assert after["masterKeyIds"] == ["k2"]
            assert after["rolls"] >= 3
            for name in ("identity", "connections", "instances"):
                assert after["processes"][name]["pid"] != state["processes"][name]["pid"]
            for n, connection_id in enumerate(ids):
                status, creds = await call("GET", f"/connections/{connection_id}/credentials")
                assert (status, creds["values"]) == (200, {"apiKey": f"key-{n}"})
            minted = tether("token", "--workspace", state["workspaceKey"], "--admin", env=env)
            assert minted.returncode == 0, minted.stderr  # the workspace secret opens
            async with http.get(
                url + "/workspace", headers={"Authorization": f"Bearer {minted.stdout.strip()}"}
            ) as resp:
                assert resp.status == 200, await resp.text()
            again = tether("keys", "retire", env=env)
            assert "no key to retire" in again.stdout, again.stdout + again.stderr
