"""The console after its critique, on a desktop (1440x900) and a phone (390x844): ids stay on
one line with a copy button, creation forms wait behind "New …" buttons, empty lists say what
to do next (with a curl line for this gateway), a customer's page shows everything at a glance,
a schema error reads as sentences once, and the navigation folds behind a menu on a phone."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Locator, Page

from tests.conftest import Stack, WorkspaceHandle, eventually
from tests.conftest import as_admin as _api
from tests.console.conftest import ARTIFACTS, counting_connection, signed_in
from tests.fakes.counting_app import CountingApp

pytestmark = pytest.mark.slow

LONG_ID = "user-2f0b5a6c-7d9e-4f12-a3b4-c5d6e7f8a9b0"
NAV_KEYS = [
    "settings",
    "customers",
    "integrations",
    "connections",
    "deployments",
    "flows",
    "runs",
    "actions",
    "data",
    "notifications",
    "status",
]


async def _one_line(text: Locator) -> None:
    """Assert that an element's text is on one line (its height is under two line heights)."""
    box = await text.bounding_box()
    assert box is not None
    line = await text.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)")
    assert box["height"] < 1.6 * line, (box, line)


async def _shot(tab: Page, name: str) -> None:
    """Save a screenshot of a view the test passes through (the fixtures keep only the last)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def _open(tab: Page, stack: Stack, workspace: WorkspaceHandle, hash_: str) -> None:
    await signed_in(tab, stack, workspace)
    await tab.goto(f"{stack.gateway_url}/console/#/{hash_}")


async def test_console_customers_ids_never_wrap_on_a_phone(
    page: Page, phone: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    for customer_id, name in (("cus_8f3a2b1c9d", "Ada Lovelace"), (LONG_ID, "Grace Hopper")):
        await _api(http, workspace, "POST", "/customers", {"id": customer_id, "name": name})
    for tab in (page, phone):
        await _open(tab, stack, workspace, "customers")
        row = tab.get_by_test_id("customer-row").filter(has_text="Ada Lovelace")
        await row.wait_for()
        for code in await tab.locator("[data-testid=customer-id] code.id").all():
            await _one_line(code)
            box = await code.bounding_box()
            assert box is not None
            assert box["width"] >= 90, box  # never squeezed to a letter
        # A copy button beside every id; the link leads to the customer.
        assert await row.get_by_test_id("copy-value").is_visible()
        long_id = tab.locator("[data-testid=customer-id]").filter(has_text="user-2f0b")
        assert await long_id.locator("code.id").get_attribute("title") == LONG_ID
    # On the phone the table scrolls inside its card rather than the page growing sideways.
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
    await (
        page.get_by_test_id("customer-row")
        .filter(has_text="Ada Lovelace")
        .get_by_role("link")
        .click()
    )
    await page.get_by_test_id("customer-name").filter(has_text="Ada Lovelace").wait_for()
    await page.get_by_test_id("customer-connections-empty").wait_for()


async def test_console_customers_empty_state_and_new_customer_form(
    page: Page, phone: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """An empty workspace shows what to do (curl at this gateway); the form waits behind New."""
    await _api(http, workspace, "DELETE", "/customers/test-customer")  # the only customer
    await _open(phone, stack, workspace, "customers")
    empty = phone.get_by_test_id("customers-empty")
    await empty.wait_for()
    assert "No customers yet." in await empty.inner_text()
    curl = await empty.get_by_role("textbox").input_value()
    assert curl.startswith(f"curl -X POST {stack.gateway_url}/customers ")
    assert "$TETHER_ADMIN_TOKEN" in curl
    assert await phone.get_by_test_id("new-customer-id").count() == 0

    await _open(page, stack, workspace, "customers")
    await page.get_by_test_id("customers-empty").wait_for()
    assert await page.get_by_test_id("new-customer-id").count() == 0
    await page.get_by_test_id("new-customer").click()
    await page.get_by_test_id("new-customer-id").fill("cus_42")
    await page.get_by_test_id("new-customer-name").fill("Ada")
    await page.get_by_test_id("new-customer-create").click()
    await page.get_by_test_id("customer-name").filter(has_text="Ada").wait_for()
    assert "#/customers/cus_42" in page.url
    created = await _api(http, workspace, "GET", "/customers/cus_42")
    assert created["name"] == "Ada"
    # Cancel hides the form again.
    await page.goto(f"{stack.gateway_url}/console/#/customers")
    await page.get_by_test_id("new-customer").click()
    await page.get_by_test_id("new-customer-cancel").click()
    assert await page.get_by_test_id("new-customer-id").count() == 0
    await page.get_by_test_id("customer-row").first.wait_for()


async def test_console_schema_error_reads_as_sentences_once(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    schema = {"type": "object", "properties": {"plan": {"type": "string"}}, "required": ["plan"]}
    await _api(
        http, workspace, "PATCH", "/workspace", {"settings": {"customerFieldsSchema": schema}}
    )
    await _open(page, stack, workspace, "customers")
    await page.get_by_test_id("new-customer").click()
    await page.get_by_test_id("new-customer-id").fill("cus_schema")
    await page.get_by_test_id("new-customer-create").click()
    error = page.get_by_test_id("new-customer-error")
    await error.wait_for()
    text = await error.inner_text()
    assert text.count("fields.plan") == 1, text  # once, not message + a detail repeating it
    assert await error.locator("li").count() == 0, text
    assert text.strip().endswith("."), text
    assert text[0].isupper(), text

    await page.get_by_test_id("new-customer-fields").fill('{"plan": 5}')
    await page.get_by_test_id("new-customer-create").click()
    await error.filter(has_text="must be a string").wait_for()
    lines = [line for line in (await error.inner_text()).splitlines() if line.strip()]
    assert lines == [
        "The customer's fields do not match the workspace's schema.",
        "fields.plan must be a string, not 5.",
    ], lines


async def test_console_customer_page_at_a_glance(
    page: Page, phone: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """Fields, a connection with its state, a flow instance and a run, without a click."""
    await _api(
        http, workspace, "POST", "/customers", {"id": "acme", "name": "Acme", "fields": {"n": 1}}
    )
    async with CountingApp() as app:
        connection = await counting_connection(http, workspace, app, "acme")
        flow = await _api(
            http,
            workspace,
            "POST",
            "/flows",
            {
                "key": "glance",
                "level": "universal",
                "name": "Glance flow",
                "trigger": {"type": "api"},
                "nodes": {"shape": {"type": "transform", "config": {"expression": "input"}}},
                "autoDeploy": False,
            },
        )
        instance = await _api(
            http,
            workspace,
            "POST",
            "/flow-instances",
            {"flowId": flow["id"], "connectionId": connection["id"]},
        )
        run = await _api(
            http, workspace, "POST", f"/flow-instances/{instance['id']}/run", {"input": {"a": 1}}
        )

        async def ended() -> bool:
            got = await _api(http, workspace, "GET", f"/flow-runs/{run['id']}")
            return bool(got["state"] in ("completed", "failed", "stopped"))

        await eventually(ended, timeout=20)
        for tab in (page, phone):
            await _open(tab, stack, workspace, "customers/acme")
            conn_row = tab.get_by_test_id("customer-connection-row")
            await conn_row.wait_for()
            assert await conn_row.get_by_test_id("customer-connection-state").inner_text() == (
                "connected"
            )
            assert await conn_row.get_by_test_id("copy-value").is_visible()
            instance_row = tab.get_by_test_id("customer-instance-row")
            await instance_row.wait_for()
            assert "Glance flow" in await instance_row.inner_text()
            run_row = tab.get_by_test_id("customer-run-row")
            await run_row.wait_for()
            assert await run_row.get_by_test_id("customer-run-state").inner_text() == "completed"
            link = run_row.locator(f'a[href="#/run/{run["id"]}"]')
            assert await link.count() == 1
            assert '"n": 1' in await tab.get_by_test_id("customer-fields").inner_text()
            summary = tab.get_by_test_id("customer-summary")
            await summary.filter(has_text="1 connection").wait_for()
            assert "1 flow instance" in await summary.inner_text()
            await tab.get_by_test_id("customer-data-sources-empty").wait_for()
            for code in await tab.locator(".copy-value code.id").all():
                await _one_line(code)
        assert await phone.evaluate("document.documentElement.scrollWidth") <= 390


async def test_console_connections_and_deployments_empty_then_new_connection(
    page: Page, phone: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    async with CountingApp() as app:
        await _api(http, workspace, "POST", "/integrations", app.integration())
        for tab in (phone, page):
            await _open(tab, stack, workspace, "deployments")
            empty = tab.get_by_test_id("deployments-empty")
            await empty.wait_for()
            curl = await empty.get_by_role("textbox").input_value()
            assert f"{stack.gateway_url}/connections/<connection id>/deploy" in curl
            assert await tab.get_by_test_id("deployments-table").is_hidden()
            await _shot(tab, f"critique-deployments-empty-{'phone' if tab is phone else 'desktop'}")

            await tab.goto(f"{stack.gateway_url}/console/#/connections")
            empty = tab.get_by_test_id("connections-empty")
            await empty.wait_for()
            assert "No connections yet." in await empty.inner_text()
            curl = await empty.get_by_role("textbox").input_value()
            assert curl.startswith(f"curl -X POST {stack.gateway_url}/connect-sessions ")
            assert '"integrationKey":"counting"' in curl
            assert await tab.get_by_test_id("connect-integration").count() == 0
        await page.get_by_test_id("new-connection").click()
        await page.get_by_test_id("connect-integration").wait_for()
        assert await page.get_by_test_id("connect-start").is_enabled()
        await page.get_by_test_id("new-connection-cancel").click()
        assert await page.get_by_test_id("connect-integration").count() == 0

        # A connection made through the API appears without a reload, its id with a copy button.
        connection = await _api(
            http,
            workspace,
            "POST",
            "/connections",
            {"customerId": LONG_ID, "integrationKey": "counting", "credentials": {"apiKey": "k"}},
        )
        row = page.locator(f'[data-testid=connection-row][data-connection-id="{connection["id"]}"]')
        await row.wait_for(timeout=15_000)
        assert await page.get_by_test_id("connections-empty").is_hidden()
        ids = row.get_by_test_id("connection-id")
        assert await ids.locator("code.id").get_attribute("title") == connection["id"]
        assert await ids.get_by_test_id("copy-value").is_visible()
        await _one_line(row.locator("td.id-cell code.id"))
        await _shot(page, "critique-connections-desktop")
        await page.goto(f"{stack.gateway_url}/console/#/deployments")
        await page.get_by_test_id("deployment-row").first.wait_for(timeout=15_000)
        await page.get_by_test_id("deployment-row").first.click()
        await page.get_by_test_id("deployment-id").get_by_test_id("copy-value").wait_for()


async def test_console_settings_key_copy_and_test_customer_behind_edit(
    page: Page, phone: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    for tab in (phone, page):
        await _open(tab, stack, workspace, "settings")
        key = tab.get_by_test_id("workspace-key")
        await key.wait_for()
        assert await key.locator("code.id").inner_text() == workspace.key
        assert await key.get_by_test_id("copy-value").is_visible()
        await tab.get_by_test_id("tab-testing").click()
        shown = await tab.get_by_test_id("test-customer-id").inner_text()
        assert "test-customer" in shown, shown
        assert "(the default)" in shown, shown
        assert await tab.get_by_test_id("test-id").count() == 0
    await page.get_by_test_id("edit-test-customer").click()
    await page.get_by_test_id("test-id").fill("qa-customer")
    await page.get_by_test_id("test-save").click()
    await page.get_by_test_id("test-saved").wait_for()
    assert await page.get_by_test_id("test-id").count() == 0
    assert "qa-customer" in await page.get_by_test_id("test-customer-id").inner_text()


async def test_console_navigation_folds_behind_a_menu_on_a_phone(
    page: Page, phone: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    await signed_in(page, stack, workspace)
    assert await page.get_by_test_id("nav-toggle").is_hidden()
    tops = set()
    for key in NAV_KEYS:
        box = await page.get_by_test_id(f"nav-{key}").bounding_box()
        assert box is not None, key
        tops.add(round(box["y"]))
    assert len(tops) == 1, tops  # all eleven on one row at 1440

    await signed_in(phone, stack, workspace)
    toggle = phone.get_by_test_id("nav-toggle")
    assert await toggle.is_visible()
    assert await phone.get_by_test_id("nav-status").is_hidden()
    assert "Settings" in await toggle.inner_text()
    await toggle.click()
    assert await toggle.get_attribute("aria-expanded") == "true"
    for key in NAV_KEYS:
        assert await phone.get_by_test_id(f"nav-{key}").is_visible(), key
    await _shot(phone, "critique-nav-open-phone")
    await phone.get_by_test_id("nav-status").click()
    await phone.get_by_test_id("status-service-row").first.wait_for()
    assert await phone.get_by_test_id("nav-status").is_hidden()
    assert "Status" in await toggle.inner_text()
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 390


async def test_console_status_page_on_a_phone(
    phone: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    await _open(phone, stack, workspace, "status")
    rows = phone.get_by_test_id("status-service-row")
    await rows.first.wait_for()
    names = await phone.locator("[data-testid=status-service-row] td:first-child strong").all()
    for name in names:
        await _one_line(name)
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
