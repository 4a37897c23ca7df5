"""Browser SDK fixtures (``tests/sdk/conftest.py`` exports them): Chromium (the console's), and
an app page on another origin that imports ``${gateway}/sdk/tether.js`` as a workspace's own web
app would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page

from tests.conftest import ROOT, Stack
from tests.console.conftest import browser
from tests.fakes.server import LocalServer

__all__ = ["AppPage", "app_page", "browser"]

ARTIFACTS = ROOT / "test-artifacts" / "sdk"

# The page keeps what the SDK did in `window.outcome` (a promise of a plain object, so that
# Playwright can hand it back) and starts connect() from a real click, as an app would.
_PAGE = """<!doctype html>
<html lang=en><head><meta charset=utf-8><title>An app using Tether</title></head>
<body><h1>Your app</h1><button id=connect>Connect an account</button><pre id=log></pre>
<script>
// What the SDK leaves behind: its "message" listeners and its intervals, counted as they come
// and go (a listener that is never removed, or a timer never cleared, stays counted).
window.live = {{ listeners: new Set(), intervals: new Set() }};
const addListener = window.addEventListener.bind(window);
const removeListener = window.removeEventListener.bind(window);
window.addEventListener = (type, fn, options) => {{
  if (type === "message") window.live.listeners.add(fn);
  return addListener(type, fn, options);
}};
window.removeEventListener = (type, fn, options) => {{
  if (type === "message") window.live.listeners.delete(fn);
  return removeListener(type, fn, options);
}};
const startInterval = window.setInterval.bind(window);
const stopInterval = window.clearInterval.bind(window);
window.setInterval = (...args) => {{
  const id = startInterval(...args);
  window.live.intervals.add(id);
  return id;
}};
window.clearInterval = (id) => {{
  window.live.intervals.delete(id);
  stopInterval(id);
}};
window.leftovers = () => window.live.listeners.size + window.live.intervals.size;
</script>
<script type=module>
import * as sdk from {sdk_url};
const describe = (e) => ({{
  ok: false, isTetherError: e instanceof sdk.TetherError, name: e.name, code: e.code,
  message: e.message, status: e.status, requestId: e.requestId, details: e.details,
}});
window.sdk = sdk;
window.settled = false;
window.outcome = null;
window.settle = (promise) => {{
  window.settled = false;
  window.outcome = promise.then((value) => ({{ ok: true, value }}), describe)
    .finally(() => {{ window.settled = true; }});
  return window.outcome;
}};
window.makeTether = (token, baseUrl = {gateway}) => {{
  window.tether = new sdk.Tether({{ token, baseUrl }});
}};
document.getElementById("connect").addEventListener("click", () => {{
  window.settle(window.tether.connect(window.connectOptions));
}});
document.getElementById("log").textContent = "SDK " + sdk.VERSION + " loaded";
</script></body></html>
"""


class AppSite(LocalServer):
    """A workspace's web app: one page on ``http://localhost:<port>`` (another origin)."""

    def __init__(self, gateway_url: str) -> None:
        """Serve a page that imports the SDK from ``gateway_url``."""
        super().__init__()
        self.gateway_url = gateway_url

    def build(self) -> web.Application:
        """Return the app's one page."""
        app = web.Application()
        app.router.add_get("/", self._index)
        return app

    @property
    def origin(self) -> str:
        """Return the page's origin: ``localhost``, while the gateway is ``127.0.0.1``."""
        return self.url.replace("127.0.0.1", "localhost")

    async def _index(self, _: web.Request) -> web.Response:
        body = _PAGE.format(
            sdk_url=json.dumps(f"{self.gateway_url}/sdk/tether.js"),
            gateway=json.dumps(self.gateway_url),
        )
        return web.Response(text=body, content_type="text/html")


class AppPage:
    """The app page in Chromium, with the SDK loaded and a ``Tether`` for ``token``."""

    def __init__(self, page: Page, site: AppSite) -> None:
        """Wrap a loaded page."""
        self.page = page
        self.site = site

    async def use_token(self, token: str) -> None:
        """Make ``window.tether`` a client with this token."""
        await self.page.evaluate("(token) => window.makeTether(token)", token)

    async def call(self, expression: str, *args: Any) -> dict[str, Any]:
        """Evaluate ``expression`` (a function of ``tether`` and ``args``); return the outcome.

        The outcome is ``{ok: true, value}`` or the TetherError's fields with ``ok: false``.
        """
        script = f"(args) => window.settle(({expression})(window.tether, ...args))"
        outcome = await self.page.evaluate(script, list(args))
        assert isinstance(outcome, dict)
        return outcome

    async def outcome(self) -> dict[str, Any]:
        """Wait for the pending outcome (connect()'s) and return it."""
        outcome = await self.page.evaluate("window.outcome")
        assert isinstance(outcome, dict)
        return outcome


@pytest.fixture
async def app_page(
    browser: Browser, stack: Stack, request: pytest.FixtureRequest
) -> AsyncIterator[AppPage]:
    """The app page, loaded with the SDK; its last view is saved as ``test-artifacts/sdk/``."""
    async with AppSite(stack.gateway_url) as site:
        context = await browser.new_context(viewport={"width": 1024, "height": 720})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(site.origin + "/")
        await page.get_by_text("loaded").wait_for()
        try:
            yield AppPage(page, site)
        finally:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / f"{request.node.name}.png"
            await page.screenshot(path=str(shot), full_page=True)
            await context.close()
        assert not errors, f"the page raised: {errors}"
