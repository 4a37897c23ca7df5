"""kill -9 of the instances service mid-pass: the pass resumes at its page, no event twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.conftest import eventually
from tests.e2e.stack import admin_of_new_workspace, kill_9, tether_up
from tests.fakes.fake_crm import FakeCrm

pytestmark = pytest.mark.slow


async def test_sync_resumes_after_kill_9_without_duplicate_events(tmp_path: Path) -> None:
    async with FakeCrm(api_key="crash-crm", page_size=5) as crm:
        crm.add(40)
        crm.hold_after = 3  # three pages answer, the fourth is held while we kill the replica
        with tether_up(tmp_path, TETHER_SYNC_LEASE="3", TETHER_SYNC_POLL_INTERVAL="0.2") as (
            _,
            state,
            env,
        ):
            headers = admin_of_new_workspace("sync-crash", env)
            gateway = state["gatewayUrl"]
            async with aiohttp.ClientSession(headers=headers) as http:

                async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                    async with http.request(method, gateway + path, json=body) as resp:
                        return resp.status, await resp.json()

                for path, body in (
                    ("/integrations", crm.integration()),
                    ("/data-sources", crm.data_source("cursor")),
                    (
                        "/connections",
                        {
                            "customerId": "c1",
                            "integrationKey": "crm",
                            "credentials": {"apiKey": crm.api_key},
                        },
                    ),
                ):
                    status, answer = await call("POST", path, body)
                    assert status == 201, answer
                instance: list[str] = []

                async def deployed() -> bool:
                    status, page = await call("GET", "/data-source-instances")
                    instance[:] = [i["id"] for i in page.get("items", []) if i["status"] == "ready"]
                    return status == 200 and bool(instance)

                await eventually(deployed, timeout=60)
                status, answer = await call("POST", f"/data-source-instances/{instance[0]}/sync")
                assert status == 202, answer
                await asyncio.wait_for(crm.held.wait(), 30)
                await kill_9("instances", env)
                crm.hold_after = None
                crm.release.set()

                async def completed() -> bool:
                    status, view = await call("GET", f"/data-source-instances/{instance[0]}")
                    last = view.get("lastPass") if status == 200 else None
                    return last is not None and last["status"] == "completed"

                await eventually(completed, timeout=60)
                status, view = await call("GET", f"/data-source-instances/{instance[0]}")
            last = view["lastPass"]
            assert (last["created"], last["records"], last["pages"]) == (40, 40, 8), last
            cursors = Counter(q.get("cursor", "0") for q in crm.list_queries)
            assert cursors["0"] == 1, cursors  # pages before the crash were not read again
            assert cursors["15"] == 2, cursors  # the page in flight was read again
            db = await asyncpg.connect(state["databaseUrl"])
            try:
                rows = await db.fetch(
                    "SELECT payload->>'recordId' AS id FROM instances.outbox"
                    " WHERE subject = 'tether.evt.instances.data_record.created'"
                )
            finally:
                await db.close()
            assert len(rows) == 40
            assert len({r["id"] for r in rows}) == 40
