"""The console's Actions pages in a real browser: definitions, New action, the Run form generated
from the inputSchema on the test customer's connection (against a fake app), the run log."""

from __future__ import annotations

import json

import aiohttp
import pytest
from playwright.async_api import Page

from tests.conftest import Stack, WorkspaceFactory, WorkspaceHandle, bearer
from tests.console.conftest import ARTIFACTS, no_sideways_scroll, signed_in
from tests.instances.test_actions import Actions, actions_env, app_action

__all__ = ["actions_env"]  # a fixture shared with the instances tests

pytestmark = pytest.mark.slow

TEST_CUSTOMER = "test-customer"  # every new workspace's test customer


async def _open(page: Page, ws: WorkspaceHandle, hash_path: str) -> None:
    await page.goto(f"{ws.stack.gateway_url}/console/#/{hash_path}")


async def test_console_actions_list_and_new_action(
    page: Page, stack: Stack, actions_env: Actions
) -> None:
    env = actions_env
    await signed_in(page, stack, env.ws)
    await _open(page, env.ws, "actions")
    empty = page.get_by_test_id("actions-empty")
    await empty.wait_for()
    assert "No actions yet." in await empty.inner_text()
    assert f"{stack.gateway_url}/actions" in await empty.locator("textarea").input_value()

    await env.define(app_action())
    await env.define(app_action("cancel-order", name="Cancel an order"))
    await page.reload()
    rows = page.get_by_test_id("action-row")
    await rows.nth(1).wait_for()
    assert await rows.count() == 2
    texts = [await rows.nth(i).inner_text() for i in range(2)]
    assert any("create-order" in t and "Create an order" in t and "counting" in t for t in texts)
    assert any("cancel-order" in t and "Cancel an order" in t for t in texts)

    # New action sits behind its button; a bad key is refused in a sentence, before any call.
    await page.get_by_test_id("new-action").click()
    await page.get_by_test_id("new-action-key").fill("Ping It")
    await page.get_by_test_id("new-action-name").fill("Ping")
    await page.get_by_test_id("new-action-create").click()
    error = page.get_by_test_id("new-action-error")
    await error.wait_for()
    assert (await error.inner_text()).startswith("The key may hold lowercase letters")
    await page.get_by_test_id("new-action-key").fill("ping-it")
    await page.get_by_test_id("new-action-integration").select_option("counting")
    await page.get_by_test_id("new-action-method").select_option("POST")
    await page.get_by_test_id("new-action-path").fill("/ping")
    await page.get_by_test_id("new-action-create").click()
    await page.wait_for_url("**/#/action/ping-it")
    await page.get_by_role("heading", name="Ping").wait_for()
    status, created = await env.request("GET", "/actions/ping-it")
    assert status == 200, created
    assert created["request"] == {
        "method": "POST",
        "path": "/ping",
        "query": {},
        "headers": {},
        "body": None,
    }
    assert created["inputSchema"]["required"] == ["email"]


async def test_console_action_run_form_validates_runs_and_logs(
    page: Page, stack: Stack, actions_env: Actions
) -> None:
    env = actions_env
    await env.define(app_action())
    await signed_in(page, stack, env.ws)
    await _open(page, env.ws, "action/create-order")

    # No connection yet: the page says what to do next.
    none = page.get_by_test_id("run-no-connection")
    await none.wait_for()
    assert f"{TEST_CUSTOMER} has no connection to counting yet." in await none.inner_text()
    assert await page.get_by_test_id("run-customer").inner_text() == TEST_CUSTOMER
    connection = await env.connect(TEST_CUSTOMER)
    await env.connect("someone-else")  # not the test customer's: never offered
    await page.reload()

    # A field per property of the inputSchema.
    item = page.get_by_test_id("run-input-field-item")
    qty = page.get_by_test_id("run-input-field-qty")
    await item.wait_for()
    assert await qty.count() == 1
    options = page.get_by_test_id("run-connection").locator("option")
    assert await options.count() == 1
    assert await options.get_attribute("value") == connection
    empty_log = page.get_by_test_id("action-runs-empty")
    await empty_log.wait_for()

    # The required field left empty: a sentence naming it, and no call to the app.
    await page.get_by_test_id("run-submit").click()
    error = page.get_by_test_id("run-error")
    await error.wait_for()
    message = await error.inner_text()
    assert "item" in message.lower(), message
    assert message.endswith("."), message
    assert env.app.received == []

    # A valid run: the output is shown, and the run is logged with its input and output.
    await item.fill("pen")
    await qty.fill("3")
    await page.get_by_test_id("run-submit").click()
    output = page.get_by_test_id("run-output")
    await output.wait_for()
    assert json.loads(await output.inner_text()) == {
        "id": "pen",
        "count": 3,
        "path": "/api/orders/pen",
    }
    assert await error.is_hidden()
    [call] = env.app.received
    assert (call.method, call.path, call.body["customer"]) == (
        "POST",
        "/api/orders/pen",
        TEST_CUSTOMER,
    )
    run = page.get_by_test_id("action-run").first
    await run.wait_for()
    assert await run.get_attribute("data-status") == "success"
    await run.locator("summary").click()
    assert json.loads(await run.get_by_test_id("action-run-input").inner_text()) == {
        "item": "pen",
        "qty": 3,
    }
    logged_output = json.loads(await run.get_by_test_id("action-run-output").inner_text())
    assert logged_output["id"] == "pen"
    status, page_of_runs = await env.request("GET", "/action-runs?actionKey=create-order")
    assert status == 200, page_of_runs
    [logged] = page_of_runs["items"]
    assert (logged["status"], logged["connectionId"]) == ("success", connection)

    # The app refuses: the error is read once, as a sentence, and the failed run is logged.
    env.app.fail("/api/orders/ink", 404, body={"message": "no such item"})
    await item.fill("ink")
    await page.get_by_test_id("run-submit").click()
    await error.wait_for()
    refused = await error.inner_text()
    assert "404" in refused, refused
    assert refused.count("404") == 1, refused
    failed = page.locator('[data-testid="action-run"][data-status="error"]')
    await failed.wait_for()
    await failed.locator("summary").click()
    assert "404" in await failed.get_by_test_id("action-run-error").inner_text()
    assert await page.get_by_test_id("action-run").count() == 2


async def test_console_action_definition_edit(
    page: Page, stack: Stack, actions_env: Actions
) -> None:
    env = actions_env
    await env.define(app_action())
    await signed_in(page, stack, env.ws)
    await _open(page, env.ws, "action/create-order")
    definition = page.get_by_test_id("action-definition")
    await definition.wait_for()
    assert "POST /orders/{{ input.item }}" in await definition.inner_text()
    assert await page.get_by_test_id("action-revision").inner_text() == "revision 1"
    await page.get_by_test_id("action-edit").click()
    # The request is edited with the form generated from GET /action-request-types.
    path = page.get_by_test_id("edit-request-field-path")
    await path.wait_for()
    assert await path.input_value() == "/orders/{{ input.item }}"
    await path.fill("/orders/{{ input.item }}/v2")
    await page.get_by_test_id("edit-action-name").fill("Place an order")
    await page.get_by_test_id("edit-action-output").fill("body")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "action-edit.png"), full_page=True)
    await page.get_by_test_id("edit-action-save").click()
    await page.get_by_test_id("action-revision").filter(has_text="revision 2").wait_for()
    await page.get_by_role("heading", name="Place an order").wait_for()
    status, got = await env.request("GET", "/actions/create-order")
    assert status == 200, got
    assert (got["revision"], got["name"], got["outputMapping"]) == (2, "Place an order", "body")
    assert got["request"]["path"] == "/orders/{{ input.item }}/v2"
    assert got["request"]["body"]["item"] == {"$expr": "input.item"}  # kept as it was


async def test_console_action_of_another_workspace_is_not_reachable(
    page: Page,
    stack: Stack,
    actions_env: Actions,
    make_workspace: WorkspaceFactory,
    http: aiohttp.ClientSession,
) -> None:
    other = await make_workspace()
    theirs = Actions(
        other, actions_env.app, actions_env.other, http, bearer(await other.admin_token())
    )
    status, created = await theirs.request("POST", "/integrations", actions_env.app.integration())
    assert status == 201, created
    await theirs.define(app_action("their-action", name="Their secret action"))
    await signed_in(page, stack, actions_env.ws)
    await _open(page, actions_env.ws, "action/their-action")
    alert = page.get_by_role("alert").filter(has_text="their-action")
    await alert.wait_for()
    assert "not found" in await alert.inner_text()
    assert "Their secret action" not in await page.content()
    assert await page.get_by_test_id("run-card").count() == 0
    await _open(page, actions_env.ws, "actions")
    await page.get_by_test_id("actions-empty").wait_for()


async def test_console_action_run_on_a_phone(
    phone: Page, stack: Stack, actions_env: Actions
) -> None:
    env = actions_env
    await env.define(app_action())
    await env.connect(TEST_CUSTOMER)
    await signed_in(phone, stack, env.ws)
    await _open(phone, env.ws, "actions")
    await phone.get_by_test_id("action-row").wait_for()
    await no_sideways_scroll(phone)
    await phone.get_by_test_id("action-link").click()
    await phone.get_by_test_id("run-input-field-item").fill("pen")
    await phone.get_by_test_id("run-submit").click()
    await phone.get_by_test_id("run-output").wait_for()
    run = phone.get_by_test_id("action-run").first
    await run.locator("summary").click()
    await run.get_by_test_id("action-run-output").wait_for()
    await no_sideways_scroll(phone)
