"""The flow editor in a real browser: a flow built in forms and the diagram, saved, read back."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Locator, Page, expect

from tests.conftest import Stack, WorkspaceHandle
from tests.conftest import as_admin as _api
from tests.console.conftest import counting_connection, signed_in
from tests.fakes.counting_app import CountingApp

pytestmark = pytest.mark.slow


async def _flow(
    http: aiohttp.ClientSession, ws: WorkspaceHandle, key: str, nodes: dict[str, Any]
) -> dict[str, Any]:
    """Create a universal flow run by the API trigger."""
    body = {"key": key, "name": key, "level": "universal", "trigger": {"type": "api"}}
    flow: dict[str, Any] = await _api(http, ws, "POST", "/flows", {**body, "nodes": nodes})
    return flow


def _chain(count: int) -> dict[str, Any]:
    """Nodes n1 → n2 → … → n<count> (delays)."""
    return {
        f"n{i}": {
            "type": "delay",
            "config": {"seconds": 1},
            "links": [{"to": f"n{i + 1}"}] if i < count else [],
        }
        for i in range(1, count + 1)
    }


def _node(page: Page, key: str) -> Locator:
    return page.locator(f'[data-testid=flow-node][data-node="{key}"]')


async def _open(page: Page, stack: Stack, ws: WorkspaceHandle, flow_id: str) -> None:
    await signed_in(page, stack, ws)
    await page.goto(f"{stack.gateway_url}/console/#/flows/{flow_id}")
    await page.get_by_test_id("flow-graph").wait_for()


async def _save(page: Page, revision: int) -> None:
    await page.get_by_test_id("flow-save").click()
    await expect(page.get_by_test_id("flow-saved")).to_have_text(f"Saved revision {revision}")


async def _within(inner: Locator, outer: Locator) -> bool:
    a = await inner.bounding_box()
    b = await outer.bounding_box()
    assert a is not None
    assert b is not None
    return (
        a["x"] >= b["x"] - 0.5
        and a["y"] >= b["y"] - 0.5
        and a["x"] + a["width"] <= b["x"] + b["width"] + 0.5
        and a["y"] + a["height"] <= b["y"] + b["height"] + 0.5
    )


async def test_console_flow_editor_builds_a_flow_visually(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """New flow from the empty list, two nodes added, linked and configured in forms, saved."""
    await signed_in(page, stack, workspace)
    await page.goto(f"{stack.gateway_url}/console/#/flows")
    empty = page.get_by_test_id("flows-empty")
    await expect(empty).to_contain_text("No flows yet.")
    assert "/flows" in await page.get_by_test_id("flows-empty").locator("textarea").input_value()
    await page.get_by_test_id("empty-new-flow").click()
    await page.get_by_test_id("flow-key").fill("built")
    await page.get_by_test_id("flow-name").fill("Built in forms")
    await page.get_by_test_id("new-trigger-type").select_option("api")
    await page.get_by_test_id("flow-create").click()
    await expect(page.get_by_test_id("flow-name")).to_have_text("Built in forms")

    await page.get_by_test_id("add-node").click()
    await page.get_by_test_id("add-node-type").select_option("http-request")
    await page.get_by_test_id("add-node-key").fill("fetch")
    await page.get_by_test_id("add-node-submit").click()
    await expect(page.get_by_test_id("node-panel-key")).to_have_text("fetch")
    await page.get_by_test_id("node-config-field-url").fill("https://example.com/items")
    await page.get_by_test_id("node-name").fill("Fetch items")

    await page.get_by_test_id("add-node").click()
    await page.get_by_test_id("add-node-type").select_option("transform")
    await page.get_by_test_id("add-node-key").fill("shape")
    await page.get_by_test_id("add-node-from").select_option("")
    await page.get_by_test_id("add-node-submit").click()
    await expect(page.get_by_test_id("node-panel-key")).to_have_text("shape")
    await page.get_by_test_id("node-config-field-expression").fill("items[].id")

    await _node(page, "fetch").click()
    await expect(page.get_by_test_id("node-panel-key")).to_have_text("fetch")
    await page.get_by_test_id("node-link-target").select_option("shape")
    await page.get_by_test_id("node-link-add").click()
    await expect(page.locator("[data-testid=node-unlink][data-to=shape]")).to_be_visible()
    await page.get_by_test_id("flow-trigger").click()
    await page.get_by_test_id("trigger-type").select_option("schedule")
    await page.get_by_test_id("trigger-field-cron").fill("*/5 * * * *")
    await _save(page, 2)

    await page.reload()
    await page.get_by_test_id("flow-graph").wait_for()
    await expect(page.get_by_test_id("flow-node")).to_have_count(2)
    flows = await _api(http, workspace, "GET", "/flows?level=universal")
    (flow,) = flows["items"]
    assert flow["revision"] == 2
    assert flow["trigger"]["type"] == "schedule"
    assert flow["trigger"]["cron"] == "*/5 * * * *"
    assert set(flow["nodes"]) == {"fetch", "shape"}
    fetch, shape = flow["nodes"]["fetch"], flow["nodes"]["shape"]
    assert (fetch["type"], fetch["name"]) == ("http-request", "Fetch items")
    assert fetch["config"]["url"] == "https://example.com/items"
    assert fetch["links"] == [{"to": "shape"}]
    assert shape["type"] == "transform"
    assert shape["config"]["expression"] == "items[].id"
    assert shape["links"] == []
    await _node(page, "shape").click()
    await expect(page.get_by_test_id("node-config-field-expression")).to_have_value("items[].id")


async def test_console_flow_editor_unlinks_and_deletes_nodes(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """Unlinking drops one link; deleting a node drops the links pointing to it."""
    delay = {"type": "delay", "config": {"seconds": 5}}
    flow = await _flow(
        http,
        workspace,
        "prune",
        {
            "a": {**delay, "links": [{"to": "b"}, {"to": "c"}]},
            "b": {**delay, "links": [{"to": "c"}]},
            "c": delay,
        },
    )
    await signed_in(page, stack, workspace)
    await page.goto(f"{stack.gateway_url}/console/#/flows")
    row = page.get_by_test_id("flow-row").filter(has_text="prune")
    await expect(row.get_by_test_id("flow-id")).to_contain_text(flow["id"][:8])
    await expect(page.get_by_test_id("flow-create")).to_have_count(0)  # behind "New flow"
    await row.get_by_role("link").click()
    await page.get_by_test_id("flow-graph").wait_for()
    await _node(page, "a").click()
    await page.locator("[data-testid=node-unlink][data-to=c]").click()
    await expect(page.locator("[data-testid=node-unlink][data-to=c]")).to_have_count(0)
    await _node(page, "b").click()
    await page.get_by_test_id("node-delete").click()
    await page.get_by_test_id("node-delete-confirm").click()
    await expect(page.get_by_test_id("flow-node")).to_have_count(2)
    await _save(page, 2)
    saved = await _api(http, workspace, "GET", f"/flows/{flow['id']}")
    assert set(saved["nodes"]) == {"a", "c"}
    assert saved["nodes"]["a"]["links"] == []
    assert saved["nodes"]["c"]["config"] == {"seconds": 5}


async def test_console_flow_editor_invalid_config_shows_once_at_the_node(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """The validator's problem marks the node and its field, and reads once, as a sentence."""
    flow = await _flow(
        http, workspace, "broken", {"shape": {"type": "transform", "config": {"expression": "a"}}}
    )
    await _open(page, stack, workspace, flow["id"])
    await _node(page, "shape").click()
    await page.get_by_test_id("node-config-field-expression").fill("items[")
    await page.get_by_test_id("flow-save").click()
    errors = page.get_by_test_id("flow-errors")
    await expect(errors).to_contain_text("Node shape")
    await expect(_node(page, "shape")).to_have_attribute("data-invalid", "true")
    await expect(page.get_by_test_id("node-config-field-expression")).to_have_attribute(
        "aria-invalid", "true"
    )
    lines = [line.strip() for line in (await errors.inner_text()).splitlines() if line.strip()]
    assert lines[0] == "The flow is not valid.", lines
    problem = [line for line in lines if line.startswith("config.expression")]
    assert len(problem) == 1, lines
    assert problem[0].endswith("."), lines
    body = await page.locator("body").inner_text()
    assert body.count("config.expression") == 1, body
    assert (await _api(http, workspace, "GET", f"/flows/{flow['id']}"))["revision"] == 1


async def test_console_flow_editor_json_view_round_trips(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """The JSON view shows the definition the forms hold, and its edits come back to them."""
    flow = await _flow(
        http,
        workspace,
        "both-ways",
        {"a": {"type": "delay", "config": {"seconds": 5}, "name": "Wait", "onError": "continue"}},
    )
    await _open(page, stack, workspace, flow["id"])
    await page.get_by_test_id("mode-json").click()
    shown = json.loads(await page.get_by_test_id("flow-json").input_value())
    fields = ("name", "trigger", "nodes", "parameters", "autoDeploy")
    assert shown == {k: flow[k] for k in fields}

    shown["nodes"]["a"]["links"] = [{"to": "later"}]
    shown["nodes"]["later"] = {"type": "delay", "config": {"seconds": 7}}
    await page.get_by_test_id("flow-json").fill(json.dumps(shown))
    await page.get_by_test_id("mode-visual").click()
    await expect(page.get_by_test_id("flow-node")).to_have_count(2)
    await _node(page, "later").click()
    await expect(page.get_by_test_id("node-config-field-seconds")).to_have_value("7")
    await page.get_by_test_id("node-config-field-seconds").fill("9")
    await _node(page, "a").click()
    await expect(page.get_by_test_id("node-on-error")).to_have_value("continue")

    await page.get_by_test_id("mode-json").click()
    again = json.loads(await page.get_by_test_id("flow-json").input_value())
    shown["nodes"]["later"]["config"]["seconds"] = 9
    assert again["nodes"]["later"]["config"] == {"seconds": 9}
    assert again["nodes"]["a"] == shown["nodes"]["a"]
    await _save(page, 2)
    saved = await _api(http, workspace, "GET", f"/flows/{flow['id']}")
    assert saved["nodes"]["later"]["config"] == {"seconds": 9}
    assert saved["nodes"]["a"]["links"] == [{"to": "later"}]


async def test_console_flow_editor_fits_a_wide_flow(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """A chain of 9 nodes scrolls in its card, and "Fit" shows it whole inside the card."""
    flow = await _flow(http, workspace, "wide", _chain(9))
    await _open(page, stack, workspace, flow["id"])
    svg = page.get_by_test_id("flow-graph")
    card = page.locator("section.card").filter(has=svg)
    viewport = page.get_by_test_id("graph-viewport")
    await expect(svg).to_have_attribute("data-zoom", "0.500")
    assert await viewport.evaluate("v => v.scrollWidth > v.clientWidth")
    assert await _within(viewport, card)
    await page.get_by_test_id("graph-fit").click()
    await expect(svg).not_to_have_attribute("data-zoom", "0.500")
    assert await _within(svg, card)
    assert await viewport.evaluate("v => v.scrollWidth <= v.clientWidth")
    fitted = await svg.get_attribute("data-zoom")
    assert fitted is not None
    await page.get_by_test_id("graph-zoom-in").click()
    await expect(svg).to_have_attribute("data-zoom", f"{float(fitted) * 1.25:.3f}")
    # The zoom stays when the editor redraws the diagram (a node selected).
    await page.get_by_test_id("graph-fit").click()
    await _node(page, "n1").click()
    await expect(page.get_by_test_id("node-panel-key")).to_have_text("n1")
    await expect(page.get_by_test_id("flow-graph")).to_have_attribute("data-zoom", fitted)


async def test_console_flow_editor_on_a_phone(
    phone: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """On a phone the diagram fits the screen and a tapped node opens its form below it."""
    flow = await _flow(http, workspace, "pocket", _chain(4))
    await _open(phone, stack, workspace, flow["id"])
    await phone.get_by_test_id("graph-fit").click()
    svg = phone.get_by_test_id("flow-graph")
    card = phone.locator("section.card").filter(has=svg)
    assert await _within(svg, card)
    assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await _node(phone, "n2").click()
    await expect(phone.get_by_test_id("node-panel-key")).to_have_text("n2")
    await expect(phone.get_by_test_id("node-config-field-seconds")).to_have_value("1")
    await phone.get_by_test_id("node-panel").scroll_into_view_if_needed()
    assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_console_flow_editor_customises_an_instance_node(
    page: Page, stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """A customer's flow instance gets a node's config changed in its form, as a merge patch."""
    await _api(http, workspace, "POST", "/customers", {"id": "acme", "name": "Acme"})
    async with CountingApp() as app:
        connection = await counting_connection(http, workspace, app, "acme")
        flow = await _flow(
            http,
            workspace,
            "custom",
            {"shape": {"type": "transform", "config": {"expression": "input"}}},
        )
        body = {"flowId": flow["id"], "connectionId": connection["id"]}
        instance = await _api(http, workspace, "POST", "/flow-instances", body)
        await signed_in(page, stack, workspace)
        await page.goto(f"{stack.gateway_url}/console/#/customers/acme")
        await page.get_by_test_id("tab-customer-flows").click()
        await page.get_by_test_id("instance-customize").click()
        expression = page.get_by_test_id("custom-config-field-expression")
        await expect(expression).to_have_value("input")
        await expression.fill("input.a")
        await page.get_by_test_id("custom-save").click()
        await expect(page.get_by_test_id("instance-changes")).to_contain_text(
            "nodes.shape.config.expression"
        )
        got = await _api(http, workspace, "GET", f"/flow-instances/{instance['id']}")
        assert got["customization"] == {"nodes": {"shape": {"config": {"expression": "input.a"}}}}
        assert got["flow"]["nodes"]["shape"]["config"] == {"expression": "input.a"}
