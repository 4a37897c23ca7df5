"""The console's Runs pages in a real browser: the list and its filters, a run's diagram
coloured by node state with each node's input, output and error, live progress and Stop,
Rerun from a node, another workspace's run, and the run page on a phone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.conftest import Stack
from tests.console.conftest import signed_in
from tests.flows.runs_stack import RunsEnv, make_env, runs_env, runs_stack
from tests.flows.test_runs import http, transform

__all__ = ["runs_env", "runs_stack"]  # fixtures this module uses from the runs tests

pytestmark = pytest.mark.slow


# What sticks out past the screen's right edge (tag, class, test id, right edge).
WIDER_THAN_THE_SCREEN = """
Array.from(document.querySelectorAll("body *"))
  .filter((el) => el.getBoundingClientRect().right > innerWidth + 1
    && !el.closest(".graph-wrap, .table-wrap"))
  .slice(0, 8)
  .map((el) => [el.tagName, el.className.baseVal ?? el.className, el.dataset.testid,
                Math.round(el.getBoundingClientRect().right)])
"""


def delay(seconds: int, *to: str) -> dict[str, Any]:
    """Return a delay node linking to ``to``."""
    return {"type": "delay", "config": {"seconds": seconds}, "links": [{"to": t} for t in to]}


async def _open(page: Page, stack: Stack, env: RunsEnv, hash_path: str) -> None:
    """Sign in to the env's workspace and show the console page at ``hash_path``."""
    await signed_in(page, stack, env.ws)
    await page.goto(f"{stack.gateway_url}/console/#{hash_path}")


def _node(page: Page, key: str) -> Any:
    return page.locator(f'[data-testid="flow-node"][data-node="{key}"]')


async def _rows(page: Page) -> list[str]:
    """Return the run ids the list shows, top to bottom."""
    rows = page.get_by_test_id("run-row")
    return [str(await rows.nth(i).get_attribute("data-run-id")) for i in range(await rows.count())]


async def test_console_runs_list_filters_by_state_and_customer(
    page: Page, runs_stack: Stack, runs_env: RunsEnv
) -> None:
    await _open(page, runs_stack, runs_env, "/runs")
    empty = page.get_by_test_id("runs-empty")
    await expect(empty).to_contain_text("No runs yet.")
    curl = await empty.get_by_role("textbox", name="curl command").input_value()
    assert "/flow-instances/$FLOW_INSTANCE_ID/run" in curl

    runs_env.app.fail("/bad", 400, times=None)
    good = await runs_env.instance({"a": transform("input")}, customer="alice")
    bad = await runs_env.instance({"send": http(runs_env.url("/bad"))}, customer="bob")
    alice = [(await runs_env.start(good, {"n": n}))["id"] for n in range(2)]
    bob = (await runs_env.start(bad))["id"]
    for run_id in [*alice, bob]:
        await runs_env.ended(run_id)

    await page.goto(f"{runs_stack.gateway_url}/console/#/runs?customer=")
    await expect(page.get_by_test_id("run-row")).to_have_count(3)
    assert set(await _rows(page)) == {*alice, bob}
    failed_row = page.locator(f'[data-testid="run-row"][data-run-id="{bob}"]')
    await expect(failed_row.get_by_test_id("run-row-state")).to_have_text("failed")
    # A row leads to its run.
    await failed_row.get_by_test_id("run-link").click()
    await expect(page.get_by_test_id("run-page")).to_have_attribute("data-run-id", bob)
    await page.go_back()

    # A page at a time: "Load more" brings the older ones.
    await page.goto(f"{runs_stack.gateway_url}/console/#/runs?limit=2")
    await expect(page.get_by_test_id("run-row")).to_have_count(2)
    await page.get_by_test_id("runs-more").click()
    await expect(page.get_by_test_id("run-row")).to_have_count(3)
    await expect(page.get_by_test_id("runs-more")).to_be_hidden()
    assert await _rows(page) == [bob, *reversed(alice)]  # newest first

    await page.get_by_test_id("runs-filter-state").select_option("failed")
    await page.get_by_test_id("runs-filter-apply").click()
    await expect(page).to_have_url(re.compile(r"#/runs\?state=failed&limit=2$"))
    await expect(page.get_by_test_id("run-row")).to_have_count(1)
    assert await _rows(page) == [bob]

    await page.get_by_test_id("runs-filter-state").select_option("")
    await page.get_by_test_id("runs-filter-customer").fill("alice")
    await page.get_by_test_id("runs-filter-apply").click()
    await expect(page).to_have_url(re.compile(r"#/runs\?customer=alice&limit=2$"))
    await expect(page.get_by_test_id("run-row")).to_have_count(2)
    assert set(await _rows(page)) == set(alice)
    for cell in await page.get_by_test_id("run-row-customer").all():
        assert await cell.inner_text() == "alice"

    # Filters in the hash survive a reload; nothing matching says how to widen them.
    await page.goto(f"{runs_stack.gateway_url}/console/#/runs?customer=alice&state=failed")
    await page.reload()
    await expect(page.get_by_test_id("runs-empty")).to_contain_text("No runs match")
    await expect(page.get_by_test_id("runs-filter-customer")).to_have_value("alice")
    await expect(page.get_by_test_id("runs-filter-state")).to_have_value("failed")
    await page.get_by_test_id("runs-empty-clear").click()
    await expect(page.get_by_test_id("run-row")).to_have_count(3)


async def test_console_run_page_colours_nodes_and_shows_input_output_and_error(
    page: Page, runs_stack: Stack, runs_env: RunsEnv
) -> None:
    runs_env.app.fail("/bad", 400)
    instance = await runs_env.instance(
        {
            "shape": transform("{doubled: sum([input.n, input.n])}", "send"),
            "send": http(runs_env.url("/bad"), "after"),
            "after": transform("nodes.send"),
        },
        customer="carol",
    )
    run = await runs_env.ended((await runs_env.start(instance, {"n": 21}))["id"])
    assert run["state"] == "failed", run
    await _open(page, runs_stack, runs_env, f"/run/{run['id']}")

    await expect(page.get_by_test_id("run-state")).to_have_text("failed")
    await expect(_node(page, "shape")).to_have_attribute("data-state", "completed")
    await expect(_node(page, "send")).to_have_attribute("data-state", "failed")
    assert await _node(page, "after").get_attribute("data-state") is None  # never reached
    await expect(page.get_by_test_id("run-progress-percent")).to_have_text("67%")
    await expect(page.get_by_test_id("run-customer")).to_have_text("carol")
    await expect(page.get_by_test_id("run-trigger")).to_have_text("api")
    await expect(page.get_by_test_id("run-errors")).to_contain_text("send")
    fill = await _node(page, "send").locator("rect").evaluate("r => getComputedStyle(r).fill")
    assert fill != await _node(page, "after").locator("rect").evaluate(
        "r => getComputedStyle(r).fill"
    )

    await _node(page, "shape").click()
    panel = page.get_by_test_id("run-node")
    await expect(panel.get_by_test_id("run-node-key")).to_have_text("shape")
    await expect(panel.get_by_test_id("execution-output")).to_contain_text('"doubled": 42')
    await expect(panel.get_by_test_id("execution-input")).to_contain_text("sum([input.n")
    await expect(page).to_have_url(re.compile(r"\?node=shape$"))

    await _node(page, "send").click()
    await expect(panel.get_by_test_id("run-node-key")).to_have_text("send")
    error = panel.get_by_test_id("execution-error")
    await expect(error).to_contain_text("http_error")
    await expect(error).to_contain_text("400")
    await expect(panel.get_by_test_id("execution-state")).to_have_text("failed")
    # A run that ended offers no Stop.
    await expect(page.get_by_test_id("run-stop")).to_have_count(0)


async def test_console_run_live_progress_then_stop(
    page: Page, runs_stack: Stack, runs_env: RunsEnv
) -> None:
    instance = await runs_env.instance(
        {
            "pause": delay(1, "wait"),
            "wait": delay(600, "send"),
            "send": http(runs_env.url("/never")),
        }
    )
    run_id = (await runs_env.start(instance))["id"]
    await _open(page, runs_stack, runs_env, f"/run/{run_id}")
    await expect(page.get_by_test_id("run-page")).to_be_visible()

    # The page follows the run by itself: the first delay ends, the second one waits.
    await expect(_node(page, "pause")).to_have_attribute("data-state", "completed", timeout=15_000)
    await expect(_node(page, "wait")).to_have_attribute("data-state", "waiting", timeout=15_000)
    await expect(page.get_by_test_id("run-state")).to_have_text("running")
    await expect(page.get_by_test_id("run-progress-percent")).to_have_text("33%")
    await expect(page.get_by_test_id("run-progress-now")).to_contain_text("1 waiting")
    await expect(page.get_by_test_id("run-live")).to_contain_text("Live")
    await expect(page.get_by_test_id("run-rerun-from")).to_be_disabled()

    await page.get_by_test_id("run-stop").click()
    await page.get_by_test_id("run-stop-confirm").click()
    await expect(page.get_by_test_id("run-state")).to_have_text("stopped")
    await expect(_node(page, "wait")).to_have_attribute("data-state", "completed")
    await expect(page.get_by_test_id("run-stop")).to_have_count(0)
    await expect(page.get_by_test_id("run-live")).to_have_text("")
    assert (await runs_env.run(run_id))["state"] == "stopped"
    assert runs_env.app.on("/never") == []


async def test_console_run_rerun_from_a_node_completes(
    page: Page, runs_stack: Stack, runs_env: RunsEnv
) -> None:
    runs_env.app.fail("/two", 400)  # once: the rerun's call succeeds
    instance = await runs_env.instance(
        {
            "one": http(runs_env.url("/one"), "two"),
            "two": http(runs_env.url("/two"), "three"),
            "three": transform("nodes.one.body.body"),
        }
    )
    original = await runs_env.ended((await runs_env.start(instance, {"x": 1}))["id"])
    assert original["state"] == "failed", original
    await _open(page, runs_stack, runs_env, f"/run/{original['id']}")
    await expect(_node(page, "two")).to_have_attribute("data-state", "failed")

    await _node(page, "two").click()
    await expect(page.get_by_test_id("run-rerun-node")).to_have_value("two")
    await page.get_by_test_id("run-rerun-from").click()

    await expect(page).not_to_have_url(re.compile(original["id"]))
    await expect(page.get_by_test_id("run-state")).to_have_text("completed", timeout=20_000)
    new_id = str(await page.get_by_test_id("run-page").get_attribute("data-run-id"))
    assert new_id != original["id"]
    await expect(page.get_by_test_id("run-trigger")).to_contain_text("rerun of")
    await expect(page.get_by_test_id("run-trigger")).to_contain_text("from node two")
    for key in ("one", "two", "three"):
        await expect(_node(page, key)).to_have_attribute("data-state", "completed")
    await _node(page, "one").click()
    await expect(page.get_by_test_id("run-node")).to_contain_text("reused")

    rerun = await runs_env.run(new_id)
    assert rerun["trigger"]["type"] == "rerun"
    assert rerun["trigger"]["fromNode"] == "two"
    assert rerun["trigger"]["rerunOf"] == original["id"]
    assert len(runs_env.app.on("/one")) == 1  # reused, not called again
    await page.get_by_test_id("run-rerun-of").click()
    await expect(page.get_by_test_id("run-page")).to_have_attribute("data-run-id", original["id"])


async def test_console_run_of_another_workspace_is_not_found(
    page: Page, runs_stack: Stack, runs_env: RunsEnv
) -> None:
    instance = await runs_env.instance({"a": transform("input.secret")})
    run = await runs_env.ended((await runs_env.start(instance, {"secret": "s3cret"}))["id"])
    async with make_env(runs_stack) as other:
        await _open(page, runs_stack, other, f"/run/{run['id']}")
        error = page.get_by_test_id("run-error")
        await expect(error).to_contain_text("not found")
        await expect(page.get_by_test_id("run-page")).to_have_count(0)
        assert "s3cret" not in await page.content()
        await page.goto(f"{runs_stack.gateway_url}/console/#/runs")
        await expect(page.get_by_test_id("runs-empty")).to_contain_text("No runs yet.")
        await expect(page.get_by_test_id("run-row")).to_have_count(0)


async def test_console_run_page_on_a_phone(
    phone: Page, runs_stack: Stack, runs_env: RunsEnv
) -> None:
    instance = await runs_env.instance(
        {"a": transform("input.n", "b"), "b": transform("{twice: sum([nodes.a, nodes.a])}")}
    )
    run = await runs_env.ended((await runs_env.start(instance, {"n": 4}))["id"])
    await _open(phone, runs_stack, runs_env, "/runs")
    await expect(phone.get_by_test_id("run-row")).to_have_count(1)
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, await phone.evaluate(WIDER_THAN_THE_SCREEN)
    await phone.get_by_test_id("run-link").click()
    await expect(phone.get_by_test_id("run-page")).to_have_attribute("data-run-id", run["id"])
    await expect(phone.get_by_test_id("run-state")).to_have_text("completed")
    await expect(_node(phone, "b")).to_have_attribute("data-state", "completed")
    await _node(phone, "b").click()
    output = phone.get_by_test_id("execution-output")
    await expect(output).to_contain_text('"twice": 8')
    await output.scroll_into_view_if_needed()
    assert await output.is_visible()
    # Nothing but the diagram scrolls sideways: the page itself fits the phone's width.
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, await phone.evaluate(WIDER_THAN_THE_SCREEN)
    await phone.evaluate("window.scrollTo(0, 0)")
