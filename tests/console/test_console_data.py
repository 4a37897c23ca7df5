"""The console's data pages in a real browser: data-source instances and their syncs (a held
mass delete confirmed and discarded), the records browser, the field-mapping editor, and
another workspace's data kept out of reach."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.conftest import Stack, WorkspaceFactory, eventually
from tests.console.conftest import ARTIFACTS, sideways, signed_in
from tests.instances.test_records import DataEnv, data_env

__all__ = ["data_env"]

pytestmark = pytest.mark.slow

APP_SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": "string"},
        "score": {"type": "integer"},
        "name": {"type": "string"},
        "nickname": {"type": "string"},
    },
    "required": ["email", "score"],
}


def mapping_body() -> dict[str, Any]:
    """Return an auto-deployed field mapping of the fake CRM's contacts with ``score`` unmapped."""
    return {
        "key": "contact-fields",
        "level": "app",
        "integrationKey": "crm",
        "dataSourceKey": "contacts",
        "name": "Contact fields",
        "appSchema": APP_SCHEMA,
        "importValue": {"email": {"$expr": "email"}, "name": {"$expr": "name"}},
        "autoDeploy": True,
    }


async def mapping_instance(env: DataEnv) -> dict[str, Any]:
    """Wait for the workspace's one field-mapping instance; return it."""
    found: list[dict[str, Any]] = []

    async def deployed() -> bool:
        status, page = await env.request("GET", "/field-mapping-instances")
        assert status == 200, page
        found[:] = page["items"]
        return bool(found)

    await eventually(deployed, timeout=20)
    return found[0]


async def held_pass(env: DataEnv, instance_id: str) -> None:
    """Sync, drop 7 of the 12 contacts, and sync again: the second pass is held."""
    first = await env.sync(instance_id)
    assert first["status"] == "completed", first
    env.crm.remove(list(env.crm.contacts)[:7])
    held = await env.sync(instance_id)
    assert held["status"] == "held", held


async def test_console_data_lists_instances_and_decides_held_mass_deletes(
    page: Page, stack: Stack, data_env: DataEnv
) -> None:
    await data_env.define()
    instance_id = await data_env.connect("acme")
    first = await data_env.sync(instance_id)
    assert first["created"] == 12, first

    await signed_in(page, stack, data_env.ws)
    await page.get_by_test_id("nav-data").click()
    row = page.locator(f'[data-testid="data-source-row"][data-instance-id="{instance_id}"]')
    await expect(row.get_by_test_id("data-source-status")).to_have_text("ready")
    await expect(row.get_by_test_id("data-source-sync")).to_have_text("idle")
    assert "acme" in await row.inner_text()
    await page.get_by_test_id("data-filter-customer").fill("nobody")
    await expect(row).to_have_count(0)
    await expect(page.get_by_test_id("data-sources-count")).to_have_text(
        "0 of 1 instance(s) match the filters"
    )
    await page.get_by_test_id("data-filter-customer").fill("acm")
    await page.get_by_test_id("data-filter-state").select_option("sync:idle")
    await row.get_by_test_id("data-source-link").click()

    await expect(page.get_by_test_id("sync-state")).to_have_text("idle")
    await expect(page.get_by_test_id("sync-pass-records").first).to_have_text("12")
    await expect(page.get_by_test_id("sync-pass-status").first).to_have_text("completed")

    # 7 of the 12 contacts disappear: the pass Sync now starts is held for a decision.
    data_env.crm.remove(list(data_env.crm.contacts)[:7])
    await page.get_by_test_id("sync-now").click()
    held = page.get_by_test_id("sync-held")
    await expect(held).to_contain_text("7 of the 12 stored records (58%, over the 50% threshold)")
    await expect(page.get_by_test_id("sync-state")).to_have_text("held")
    await expect(page.get_by_test_id("sync-now")).to_be_disabled()

    await page.get_by_test_id("sync-discard").click()
    await expect(held).to_have_count(0)
    await expect(page.get_by_test_id("sync-pass-status").first).to_have_text("discarded")
    view = await data_env.instance(instance_id)
    assert (view["syncState"], view["lastPass"]["status"]) == ("idle", "discarded"), view
    live = [r for r in await data_env.synced(instance_id) if r["deletedAt"] is None]
    assert len(live) == 12

    # The next pass is held again; this time Confirm deletes the 7.
    await page.get_by_test_id("sync-now").click()
    await expect(held).to_contain_text("7 of the 12")
    await page.get_by_test_id("sync-confirm").click()
    await page.get_by_test_id("sync-confirm-confirm").click()
    await expect(held).to_have_count(0)
    await expect(page.get_by_test_id("sync-pass-status").first).to_have_text("completed")
    await expect(page.get_by_test_id("sync-pass-deleted").first).to_have_text("7")
    await expect(page.get_by_test_id("sync-pass-status")).to_have_text(
        ["completed", "discarded", "completed"]
    )
    view = await data_env.instance(instance_id)
    assert (view["syncState"], view["lastPass"]["deleted"]) == ("idle", 7), view
    live = [r for r in await data_env.synced(instance_id) if r["deletedAt"] is None]
    assert len(live) == 5


async def test_console_data_records_browser_pages_through_the_app(
    page: Page, stack: Stack, data_env: DataEnv
) -> None:
    await data_env.define()
    instance_id = await data_env.connect()
    ids = list(data_env.crm.contacts)  # 12 contacts, pages of 5

    await signed_in(page, stack, data_env.ws)
    await page.goto(f"{stack.gateway_url}/console/#/data-source/{instance_id}")
    rows = page.get_by_test_id("records-row")
    await expect(page.get_by_test_id("records-page")).to_have_text("Page 1 · 5 record(s)")
    assert [await r.get_attribute("data-record-id") for r in await rows.all()] == ids[:5]
    await expect(page.get_by_test_id("records-prev")).to_be_disabled()
    await page.get_by_test_id("records-next").click()
    await expect(page.get_by_test_id("records-page")).to_have_text("Page 2 · 5 record(s)")
    assert [await r.get_attribute("data-record-id") for r in await rows.all()] == ids[5:10]
    await page.get_by_test_id("records-next").click()
    await expect(page.get_by_test_id("records-page")).to_have_text("Page 3 · 2 record(s)")
    assert [await r.get_attribute("data-record-id") for r in await rows.all()] == ids[10:]
    await expect(page.get_by_test_id("records-next")).to_be_disabled()
    await page.get_by_test_id("records-prev").click()
    await expect(page.get_by_test_id("records-page")).to_have_text("Page 2 · 5 record(s)")

    chosen = page.locator(f'[data-testid="records-row"][data-record-id="{ids[6]}"]')
    await chosen.get_by_test_id("records-open").click()
    json = page.get_by_test_id("records-json")
    await expect(json).to_contain_text(data_env.crm.contacts[ids[6]]["email"])
    await expect(json).to_contain_text(f'"id": "{ids[6]}"')

    # Nothing synced yet: the synced tab says what to do; after a pass it lists the copy.
    await page.get_by_test_id("ds-tab-synced").click()
    await expect(page.get_by_test_id("synced-empty")).to_contain_text("Sync now")
    await data_env.sync(instance_id)
    await page.get_by_test_id("ds-tab-fields").click()
    await expect(page.get_by_test_id("field-row")).to_have_count(3)
    await page.get_by_test_id("ds-tab-synced").click()
    await expect(page.get_by_test_id("synced-row")).to_have_count(12)


async def test_console_data_mapping_editor_saves_warns_and_names_breakage(
    page: Page, stack: Stack, data_env: DataEnv
) -> None:
    await data_env.define()
    await signed_in(page, stack, data_env.ws)
    await page.get_by_test_id("nav-data").click()
    await page.get_by_test_id("data-tab-mappings").click()
    await expect(page.get_by_test_id("field-mappings-empty")).to_contain_text("/field-mappings")

    # The field mapping is created with the form behind "New field mapping".
    body = mapping_body()
    await page.get_by_test_id("new-field-mapping").click()
    await page.get_by_test_id("fm-key").fill(body["key"])
    await page.get_by_test_id("fm-name").fill(body["name"])
    await page.get_by_test_id("fm-data-source").select_option("crm/contacts")
    await page.get_by_test_id("fm-app-schema").fill(json.dumps(body["appSchema"]))
    await page.get_by_test_id("fm-import").fill(json.dumps(body["importValue"]))
    await page.get_by_test_id("fm-create").click()
    await expect(page.get_by_test_id("field-mapping-row")).to_have_count(1)
    status, created = await data_env.request("GET", "/field-mappings/contact-fields")
    assert status == 200, created
    assert (created["level"], created["integrationKey"], created["autoDeploy"]) == (
        "app",
        "crm",
        True,
    ), created
    assert created["appSchema"] == APP_SCHEMA, created

    source_id = await data_env.connect("acme")
    fm = await mapping_instance(data_env)
    await page.reload()
    await page.get_by_test_id("field-mapping-instance-link").click()

    rows = page.get_by_test_id("fm-field-row")
    await expect(rows).to_have_count(4)
    for name in ("email", "score", "name", "nickname"):
        select = page.locator(f'select[data-testid="fm-select"][data-field="{name}"]')
        await expect(select).to_have_count(1)
        labels = await select.locator("option").all_inner_texts()
        assert any(label.startswith("tier (string)") for label in labels), labels
    email = page.locator('select[data-testid="fm-select"][data-field="email"]')
    await expect(email).to_have_value("email")
    problems = page.get_by_test_id("fm-problem")
    await expect(problems).to_have_text(
        ["App field score is required, but no external field feeds it: choose one."]
    )

    # score (integer) ← tier (string): warned, and the required field is fed now.
    score = page.locator('[data-testid="fm-field-row"][data-field="score"]')
    await score.get_by_test_id("fm-select").select_option("tier")
    await expect(score.get_by_test_id("fm-warning")).to_contain_text(
        "score is an integer but tier is a string"
    )
    await expect(problems).to_have_count(0)
    await page.get_by_test_id("fm-save").click()
    await expect(page.get_by_test_id("fm-saved")).to_have_text("Saved")
    status, saved = await data_env.request("GET", f"/field-mapping-instances/{fm['id']}")
    assert status == 200, saved
    assert saved["fields"]["score"]["source"] == "tier", saved
    assert saved["customization"]["importValue"] == {"score": {"$expr": "tier"}}, saved

    # The app drops its tier field: the mapping that reads it is named as broken.
    data_env.crm.fields = [f for f in data_env.crm.fields if f["key"] != "tier"]
    status, body = await data_env.request(
        "POST", f"/data-source-instances/{source_id}/refresh-schema"
    )
    assert status == 200, body
    await page.reload()
    await expect(page.get_by_test_id("fm-state")).to_have_text("broken")
    await expect(problems).to_have_text(
        [
            "App field score is mapped to external field tier, which the connection's app no"
            " longer has: choose another field for score."
        ]
    )
    await expect(score.get_by_test_id("fm-select")).to_have_value("tier")
    await expect(score.locator("option", has_text="gone from the app")).to_have_count(1)


async def test_console_data_other_workspace_is_out_of_reach(
    page: Page, stack: Stack, data_env: DataEnv, make_workspace: WorkspaceFactory
) -> None:
    await data_env.define()
    status, body = await data_env.request("POST", "/field-mappings", mapping_body())
    assert status == 201, body
    instance_id = await data_env.connect("secret-customer")
    fm = await mapping_instance(data_env)

    other = await make_workspace()
    await signed_in(page, stack, other)
    await page.get_by_test_id("nav-data").click()
    await expect(page.get_by_test_id("data-sources-empty")).to_contain_text(
        "No data-source instances yet."
    )
    await page.goto(f"{stack.gateway_url}/console/#/data-source/{instance_id}")
    await expect(page.get_by_test_id("data-source-error")).to_contain_text("not found")
    await expect(page.get_by_test_id("data-source-meta")).to_have_count(0)
    await expect(page.get_by_test_id("records-row")).to_have_count(0)
    await page.goto(f"{stack.gateway_url}/console/#/field-mapping/{fm['id']}")
    await expect(page.get_by_test_id("field-mapping-error")).to_contain_text("not found")
    await expect(page.get_by_test_id("fm-field-row")).to_have_count(0)
    assert "secret-customer" not in await page.content()


async def test_console_data_pages_on_a_phone(phone: Page, stack: Stack, data_env: DataEnv) -> None:
    """The data-source page (with a held mass delete), the data list and the mapping editor fit
    a 390 px phone; the data-source page's screenshot is saved beside the test's own."""
    await data_env.define()
    status, body = await data_env.request("POST", "/field-mappings", mapping_body())
    assert status == 201, body
    instance_id = await data_env.connect()
    fm = await mapping_instance(data_env)
    await held_pass(data_env, instance_id)

    await signed_in(phone, stack, data_env.ws)
    await phone.goto(f"{stack.gateway_url}/console/#/data-source/{instance_id}")
    await expect(phone.get_by_test_id("sync-held")).to_contain_text("7 of the 12")
    await expect(phone.get_by_test_id("sync-confirm")).to_be_visible()
    await expect(phone.get_by_test_id("records-row")).to_have_count(5)
    wide = await phone.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
        ".slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)"
    )
    assert await sideways(phone) <= 0, f"the data-source page scrolls sideways: {wide}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await phone.screenshot(
        path=str(ARTIFACTS / "test_console_data_source_page-phone.png"), full_page=True
    )

    await phone.goto(f"{stack.gateway_url}/console/#/data")
    await expect(phone.get_by_test_id("data-source-sync")).to_have_text("held")
    assert await sideways(phone) <= 0, "the data list scrolls sideways"

    await phone.goto(f"{stack.gateway_url}/console/#/field-mapping/{fm['id']}")
    await expect(phone.get_by_test_id("fm-field-row")).to_have_count(4)
    await expect(phone.get_by_test_id("fm-problem")).to_have_count(1)
    assert await sideways(phone) <= 0, "the mapping editor scrolls sideways"
