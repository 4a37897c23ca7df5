"""kill -9 of the instances service mid-subscribe: the deployment still ends with one subscription."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import eventually
from tests.e2e.stack import admin_of_new_workspace, kill_9, tether_up
from tests.fakes.webhook_app import FakeWebhookApp
from tests.instances.conftest import app_event_type

pytestmark = pytest.mark.slow


async def test_deploy_survives_kill_9_during_subscribe(tmp_path: Path) -> None:
    async with FakeWebhookApp(api_key="crash-key") as app:
        app.hold_subscribe = True
        with tether_up(tmp_path, TETHER_STEP_LEASE="3", TETHER_DEPLOY_POLL_INTERVAL="0.2") as (
            _,
            state,
            env,
        ):
            headers = admin_of_new_workspace("crash", env)
            gateway = state["gatewayUrl"]
            async with aiohttp.ClientSession(headers=headers) as http:

                async def post(path: str, body: dict[str, Any]) -> Any:
                    async with http.post(gateway + path, json=body) as resp:
                        assert resp.status == 201, await resp.text()
                        return await resp.json()

                await post("/integrations", app.integration())
                await post("/app-event-types", app_event_type())
                connection = await post(
                    "/connections",
                    {
                        "customerId": "c1",
                        "integrationKey": "crm",
                        "credentials": {"apiKey": "crash-key"},
                    },
                )
                await asyncio.wait_for(app.subscribe_received.wait(), 30)  # the app holds the call
                assert len(app.subscriptions) == 1  # …having created the subscription already
                await kill_9("instances", env)

                async def finished() -> bool:
                    async with http.get(
                        f"{gateway}/deployments?connectionId={connection['id']}"
                    ) as resp:
                        if resp.status != 200:  # the restarted replica may not answer yet
                            return False
                        items = (await resp.json())["items"]
                    return bool(items) and items[0]["status"] in ("succeeded", "failed", "partial")

                await eventually(finished, timeout=60)
                app.release_subscribe.set()
                async with http.get(
                    f"{gateway}/deployments?connectionId={connection['id']}"
                ) as resp:
                    [deployment] = (await resp.json())["items"]
                assert deployment["status"] == "succeeded"
                async with http.get(
                    f"{gateway}/app-event-subscriptions?connectionId={connection['id']}"
                ) as resp:
                    [sub] = (await resp.json())["items"]
                assert sub["status"] == "active"
                assert app.subscribe_calls == 1  # adopted by its URL, not created twice
                assert len(app.subscriptions) == 1
                assert sub["externalId"] == next(iter(app.subscriptions))
