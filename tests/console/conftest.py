"""Browser fixtures: Debian's Chromium driven by Playwright, signed in through a one-time link."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright

from libs.common.contracts import identity
from tests.conftest import ROOT, SYSTEM, Stack, WorkspaceHandle, as_admin
from tests.fakes.counting_app import CountingApp

ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Return Debian's Chromium (or TETHER_CHROMIUM), if installed."""
    candidate = os.environ.get("TETHER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return candidate if Path(candidate).exists() else None


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium for the session (skips the browser tests when none is installed)."""
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "no Chromium found (apt-get install chromium): the console's browser tests are skipped"
        )
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        yield instance
        await instance.close()


async def console_link(stack: Stack, workspace: WorkspaceHandle) -> str:
    """Return a one-time console sign-in link for the workspace."""
    code = await stack.bus.call(
        identity.CONSOLE_CODE_CREATE,
        identity.ConsoleCodeCreateRequest(workspace_key=workspace.key, ctx=SYSTEM),
    )
    return f"{stack.gateway_url}/console/#code={code.code}"


DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


async def _tab(
    browser: Browser, request: pytest.FixtureRequest, viewport: dict[str, int], suffix: str
) -> AsyncIterator[Page]:
    """A fresh page at ``viewport``; a screenshot of where it ends is saved as a test artifact."""
    context = await browser.new_context(
        viewport={"width": viewport["width"], "height": viewport["height"]}
    )
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}{suffix}.png"), full_page=True)
    await context.close()
    assert not errors, f"the page raised: {errors}"


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A desktop page (1440x900); its last view is saved as ``<test name>.png``."""
    async for tab in _tab(browser, request, DESKTOP, ""):
        yield tab


@pytest.fixture
async def phone(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A phone-sized page (390x844); its last view is saved as ``<test name>-phone.png``."""
    async for tab in _tab(browser, request, PHONE, "-phone"):
        yield tab


async def signed_in(page: Page, stack: Stack, workspace: WorkspaceHandle) -> None:
    """Open the one-time link and wait for the console to show the workspace."""
    await page.goto(await console_link(stack, workspace))
    await page.get_by_test_id("signout").wait_for(timeout=10_000)


async def sideways(page: Page) -> int:
    """Return how far the page scrolls sideways (0 or less when it fits the viewport)."""
    return int(
        await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


async def no_sideways_scroll(page: Page) -> None:
    """Assert the page fits its viewport's width (tables scroll inside their cards)."""
    overflow = await sideways(page)
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


async def counting_connection(
    http: aiohttp.ClientSession, ws: WorkspaceHandle, app: CountingApp, customer_id: str
) -> Any:
    """Add ``app``'s integration and connect ``customer_id`` to it; return the connection."""
    await as_admin(http, ws, "POST", "/integrations", app.integration())
    body = {"customerId": customer_id, "integrationKey": "counting", "credentials": {"apiKey": "k"}}
    return await as_admin(http, ws, "POST", "/connections", body)
