"""The console's Status page in a real browser: every service, this workspace's checks, and a
connection in error shown as a problem."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page

from libs.common.config import SERVICES
from tests.conftest import Stack, WorkspaceHandle, bearer, eventually, expire_token
from tests.connections.conftest import Fake, oauth_spec
from tests.console.conftest import signed_in
from tests.fakes.oauth_provider import FakeProvider

pytestmark = pytest.mark.slow


async def _connection_errors(http: aiohttp.ClientSession, ws: WorkspaceHandle) -> int:
    async with http.get(ws.url("/system/status"), headers=bearer(await ws.admin_token())) as resp:
        assert resp.status == 200, await resp.text()
        doc: dict[str, Any] = await resp.json()
    checks = doc["services"]["connections"]["status"]["checks"]
    return int(next(c["count"] for c in checks if c["key"] == "connections_in_error"))


async def test_console_status_page_shows_services_checks_and_a_problem(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    await signed_in(page, stack, workspace)
    await page.get_by_test_id("nav-status").click()
    rows = page.get_by_test_id("status-service-row")
    await rows.nth(len(SERVICES) - 1).wait_for()
    assert await rows.count() == len(SERVICES)
    for name in SERVICES:
        row = page.locator(f'[data-testid="status-service-row"][data-service="{name}"]')
        replicas = await row.get_by_test_id("status-replicas").inner_text()
        assert int(replicas.split()[0]) >= 1, (name, replicas)
        assert await row.get_by_test_id("status-service-state").inner_text() != "down"
    in_error = page.locator('[data-testid="status-check-row"][data-check="connections_in_error"]')
    assert await in_error.get_by_test_id("status-check-summary").inner_text() == (
        "0 connections in error"
    )
    assert await page.get_by_test_id("nav-status").get_attribute("aria-current") == "page"

    # A connection whose renewals keep failing goes to `error`: the page lists the problem.
    admin = bearer(await workspace.admin_token())
    async with FakeProvider(client_id="status-client", client_secret="status-secret") as provider:
        async with http.post(
            workspace.url("/integrations"),
            json={"key": "fake", **oauth_spec(provider)},
            headers=admin,
        ) as resp:
            assert resp.status == 201, await resp.text()
        connection_id = await Fake(workspace, provider, http, admin).connect("flaky")
        provider.token_failures = [500] * 50
        await expire_token(stack, connection_id)

        async def errored() -> bool:
            return await _connection_errors(http, workspace) == 1

        await eventually(errored, timeout=20)
    await page.get_by_test_id("status-refresh").click()
    problem = page.get_by_test_id("status-problem").filter(has_text="1 connection in error")
    await problem.wait_for()
    assert await problem.inner_text() == "connections: 1 connection in error"
    await (
        in_error.get_by_test_id("status-check-summary")
        .filter(has_text="1 connection in error")
        .wait_for()
    )
    assert connection_id in await in_error.inner_text()
    assert "problem" in await page.get_by_test_id("status-overall").inner_text()
