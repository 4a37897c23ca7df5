"""The console in a real browser: sign-in, settings, test token, flows, connecting, deployments."""

from __future__ import annotations

import re

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.conftest import Stack, WorkspaceHandle
from tests.conftest import as_admin as _api
from tests.connections.conftest import oauth_spec
from tests.console.conftest import console_link, signed_in
from tests.fakes.oauth_provider import FakeProvider
from tests.fakes.webhook_app import FakeWebhookApp
from tests.instances.conftest import app_event_type

pytestmark = pytest.mark.slow


async def test_console_sign_in_with_one_time_link(
    page: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    link = await console_link(stack, workspace)
    await page.goto(link)
    await page.get_by_test_id("signout").wait_for()
    assert "code=" not in page.url
    assert "eyJ" not in page.url
    token = await page.evaluate("sessionStorage.getItem('tether.token')")
    assert token
    assert token.count(".") == 2
    assert await page.evaluate("localStorage.length") == 0
    await page.get_by_test_id("signout").click()
    await page.get_by_test_id("signin-token").wait_for()
    assert await page.evaluate("sessionStorage.getItem('tether.token')") is None
    await page.goto(link)  # the code works once
    await page.get_by_role("alert").wait_for()
    assert "expired or was already used" in await page.get_by_role("alert").inner_text()


async def test_console_fields_schema_validation_error(
    page: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    await signed_in(page, stack, workspace)
    await page.goto(f"{stack.gateway_url}/console/#/settings")
    editor = page.get_by_test_id("fields-schema")
    await editor.fill('{"type": "objekt"}')
    await page.get_by_test_id("fields-save").click()
    error = page.get_by_test_id("fields-error")
    await error.wait_for()
    assert "customerFieldsSchema" in await error.inner_text()
    await editor.fill('{"type": "object", "properties": {"plan": {"type": "string"}}}')
    await page.get_by_test_id("fields-save").click()
    await page.get_by_test_id("fields-saved").wait_for()


async def test_console_form_error_shows_each_detail_once(
    page: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    """A 422 shows as a sentence with one sentence per field; bad JSON focuses its box."""
    await signed_in(page, stack, workspace)
    await page.goto(f"{stack.gateway_url}/console/#/customers")
    await page.get_by_test_id("new-customer").click()
    customer_id = page.get_by_test_id("new-customer-id")
    # The API's limit, not the input's maxlength, is what this test is about.
    await customer_id.evaluate("el => el.removeAttribute('maxlength')")
    await customer_id.fill("x" * 300)
    await page.get_by_test_id("new-customer-create").click()
    error = page.get_by_test_id("new-customer-error")
    await error.wait_for()
    lines = [line for line in (await error.inner_text()).splitlines() if line.strip()]
    assert lines[0] == "The input is not valid.", lines  # the field list left the message
    assert len(lines) == 2, lines
    assert lines[1].startswith("id: "), lines
    assert lines[1].endswith("."), lines
    assert await page.get_by_test_id("new-customer-create").is_enabled()
    await customer_id.fill("cus_json")
    await page.get_by_test_id("new-customer-fields").fill('{"plan": ')
    await page.get_by_test_id("new-customer-create").click()
    # Locator assertions poll from Playwright's own script: the console's CSP forbids the
    # eval that a string page.wait_for_function needs.
    await expect(page.get_by_test_id("new-customer-fields")).to_be_focused()
    assert (await error.inner_text()).startswith("Fields: Invalid JSON")


async def test_console_test_customer_token(
    page: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    await signed_in(page, stack, workspace)
    await page.goto(f"{stack.gateway_url}/console/#/settings")
    await page.get_by_test_id("tab-testing").click()
    await page.get_by_test_id("test-token").click()
    value = page.get_by_test_id("test-token-value")
    await value.wait_for()
    await expect(value).to_have_value(re.compile(r".{21,}"))
    token = await value.input_value()
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", token)


async def test_console_test_token_error_shows_at_the_test_customer_form(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    schema = {"type": "object", "properties": {"plan": {"type": "string"}}, "required": ["plan"]}
    await _api(
        http, workspace, "PATCH", "/workspace", {"settings": {"customerFieldsSchema": schema}}
    )
    await signed_in(page, stack, workspace)
    await page.goto(f"{stack.gateway_url}/console/#/settings")
    await page.get_by_test_id("tab-testing").click()
    await page.get_by_test_id("test-token").click()
    error = page.get_by_test_id("test-error")  # the test customer's form, not the token card
    await error.wait_for()
    assert "settings.testCustomer.fields.plan" in await error.inner_text()
    assert await page.get_by_test_id("test-token-error").is_hidden()
    await page.get_by_test_id("test-id").fill("test-customer")
    await page.get_by_test_id("test-fields").fill('{"plan": "pro"}')
    await page.get_by_test_id("test-save").click()
    await page.get_by_test_id("test-saved").wait_for()
    await page.get_by_test_id("test-token").click()
    await page.get_by_test_id("test-token-value").wait_for()


async def test_console_customer_level_flow(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    await _api(http, workspace, "POST", "/customers", {"id": "acme", "name": "Acme"})
    await signed_in(page, stack, workspace)
    await page.goto(f"{stack.gateway_url}/console/#/customers/acme")
    await page.get_by_test_id("tab-customer-flows").click()
    assert not await page.get_by_test_id("cflow-key").is_visible()  # behind its New button
    await page.get_by_test_id("new-cflow").click()
    await page.get_by_test_id("cflow-key").fill("acme-sync")
    await page.get_by_test_id("cflow-name").fill("Acme sync")
    await page.get_by_test_id("cflow-create").click()
    row = page.get_by_test_id("cflow-row").filter(has_text="acme-sync")
    await row.wait_for()
    flows = await _api(http, workspace, "GET", "/flows?customerId=acme")
    assert [f["key"] for f in flows["items"]] == ["acme-sync"]


async def test_console_connect_session_against_fake_oauth(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    async with FakeProvider(client_id="console-client", client_secret="console-secret") as provider:
        await _api(
            http, workspace, "POST", "/integrations", {"key": "fake", **oauth_spec(provider)}
        )
        await signed_in(page, stack, workspace)
        await page.goto(f"{stack.gateway_url}/console/#/connections")
        await page.get_by_test_id("new-connection").click()  # the form waits behind "New …"
        await page.get_by_test_id("connect-integration").select_option("fake")
        async with page.expect_popup() as popup_info:
            await page.get_by_test_id("connect-start").click()
        popup = await popup_info.value
        result = page.get_by_test_id("connect-result")
        await result.wait_for(timeout=20_000)
        assert "connected" in (await result.inner_text()).lower()
        await page.get_by_test_id("connection-state").filter(has_text="connected").first.wait_for()
        assert provider.code_exchanges == 1
        if not popup.is_closed():
            await popup.close()


async def test_console_deployment_progress_reaches_100(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    async with FakeWebhookApp(api_key="console-key") as app:
        await _api(http, workspace, "POST", "/integrations", app.integration())
        await _api(http, workspace, "POST", "/app-event-types", app_event_type())
        await signed_in(page, stack, workspace)
        await page.goto(f"{stack.gateway_url}/console/#/deployments")
        await _api(
            http,
            workspace,
            "POST",
            "/connections",
            {
                "customerId": "c1",
                "integrationKey": "crm",
                "credentials": {"apiKey": "console-key"},
            },
        )
        await (
            page.get_by_test_id("deployment-percent")
            .filter(has_text="100%")
            .first.wait_for(timeout=20_000)
        )
