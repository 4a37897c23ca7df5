"""The integrations page in a real browser: an auth spec edited in the form of its type."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.conftest import Stack, WorkspaceHandle
from tests.conftest import as_admin as _api
from tests.console.conftest import signed_in

pytestmark = pytest.mark.slow


async def test_console_integrations_create_oauth2_through_the_form(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """From the empty list, an OAuth2 integration is created and edited without JSON."""
    await signed_in(page, stack, workspace)
    await page.goto(f"{stack.gateway_url}/console/#/integrations")
    empty = page.get_by_test_id("integrations-empty")
    await expect(empty).to_contain_text("No integrations yet.")
    assert "/integrations" in await empty.locator("textarea").input_value()
    await expect(page.get_by_test_id("int-key")).to_have_count(0)  # behind "New integration"
    await page.get_by_test_id("new-integration").click()
    await page.get_by_test_id("int-key").fill("acme")
    await page.get_by_test_id("int-name").fill("Acme CRM")
    await page.get_by_test_id("int-client-id").fill("acme-client")
    secret = page.get_by_test_id("int-client-secret")
    assert await secret.get_attribute("type") == "password"
    await secret.fill("acme-secret")
    await page.get_by_test_id("int-auth-type").select_option("oauth2")
    await page.get_by_test_id("int-auth-field-authorizeUrl").fill("https://acme.test/authorize")
    await page.get_by_test_id("int-auth-field-tokenUrl").fill("https://acme.test/token")
    await page.get_by_test_id("int-auth-add-scopes").click()
    await page.get_by_test_id("int-auth-field-scopes.0").fill("contacts.read")
    await page.get_by_test_id("int-create").click()
    await expect(page.get_by_test_id("edit-key")).to_contain_text("acme")

    created = await _api(http, workspace, "GET", "/integrations/acme")
    assert created["name"] == "Acme CRM"
    assert created["clientSecretSet"] is True
    auth = created["auth"]
    assert auth["type"] == "oauth2"
    assert auth["authorizeUrl"] == "https://acme.test/authorize"
    assert auth["tokenUrl"] == "https://acme.test/token"
    assert auth["scopes"] == ["contacts.read"]
    assert auth["clientId"] == "acme-client"
    assert "acme-secret" not in await page.content()

    await expect(page.get_by_test_id("edit-auth-field-tokenUrl")).to_have_value(
        "https://acme.test/token"
    )
    await page.get_by_test_id("edit-auth-field-tokenUrl").fill("https://acme.test/oauth/token")
    await page.get_by_test_id("edit-save").click()
    await expect(page.get_by_test_id("edit-saved")).to_have_text("Saved")
    edited = (await _api(http, workspace, "GET", "/integrations/acme"))["auth"]
    assert edited["tokenUrl"] == "https://acme.test/oauth/token"
    assert edited["clientId"] == "acme-client"
    assert edited["scopes"] == ["contacts.read"]
    row = page.get_by_test_id("integration-row").filter(has_text="Acme CRM")
    await expect(row.get_by_test_id("integration-key")).to_contain_text("acme")


async def test_console_integrations_list_on_a_phone(
    phone: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """On a phone the list keeps its copyable keys and the New button opens the form."""
    body = {"key": "keyed", "name": "Keyed", "auth": {"type": "api_key"}}
    await _api(http, workspace, "POST", "/integrations", body)
    await signed_in(phone, stack, workspace)
    await phone.goto(f"{stack.gateway_url}/console/#/integrations")
    key = phone.get_by_test_id("integration-key")
    await expect(key).to_contain_text("keyed")
    await expect(key.get_by_role("button")).to_be_visible()
    await phone.get_by_test_id("new-integration").click()
    await expect(phone.get_by_test_id("int-auth-type")).to_be_visible()
    assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
