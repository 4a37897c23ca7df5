"""The console's Notifications pages in a real browser: endpoints, the secret shown once, Send
test, the delivery log with attempts, Redeliver, Replay, Rotate — against a real receiver."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Page

from tests.conftest import Stack, WorkspaceFactory, bearer, eventually
from tests.console.conftest import ARTIFACTS, no_sideways_scroll, signed_in
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.notifications.conftest import Api, api, received, receiver

__all__ = ["api", "receiver"]  # fixtures shared with the notifications tests

pytestmark = pytest.mark.slow


async def _open(page: Page, api: Api, hash_path: str) -> None:
    await page.goto(f"{api.ws.stack.gateway_url}/console/#/{hash_path}")


async def _attempts(api: Api, delivery_id: str) -> int:
    detail = await api.call("GET", f"/webhook-deliveries/{delivery_id}")
    return len(detail["attempts"])


async def test_console_notifications_endpoint_secret_once_test_and_redeliver(
    page: Page, stack: Stack, api: Api, receiver: WebhookReceiver
) -> None:
    await signed_in(page, stack, api.ws)
    await _open(page, api, "notifications")
    empty = page.get_by_test_id("endpoints-empty")
    await empty.wait_for()
    assert "No endpoints yet." in await empty.inner_text()

    # New endpoint: URL, description, events as checkboxes; the secret is shown once.
    await page.get_by_test_id("new-endpoint").click()
    await page.get_by_test_id("endpoint-create").click()
    error = page.get_by_test_id("endpoint-error")
    await error.wait_for()
    assert await error.inner_text() == "Enter the URL Tether should send notifications to."
    await page.get_by_test_id("endpoint-url").fill(receiver.url_of("console"))
    await page.get_by_test_id("endpoint-create").click()
    assert await error.inner_text() == "Choose at least one event for the endpoint."
    await page.get_by_test_id("endpoint-description").fill("Backend")
    await page.get_by_test_id("event-customer.*").check()
    await page.get_by_test_id("event-flow_run.failed").check()
    await page.get_by_test_id("endpoint-create").click()
    secret_box = page.get_by_test_id("endpoint-secret")
    await secret_box.wait_for()
    secret = await secret_box.input_value()
    assert secret.startswith("whsec_")
    assert "shown this once" in await page.get_by_test_id("endpoint-secret-box").inner_text()
    [listed] = (await api.call("GET", "/webhook-endpoints"))["items"]
    assert sorted(listed["events"]) == ["customer.*", "flow_run.failed"]
    assert listed["description"] == "Backend"
    row = page.get_by_test_id("endpoint-row")
    await row.wait_for()
    assert receiver.url_of("console") in await row.inner_text()

    await page.reload()
    await page.get_by_test_id("endpoint-row").wait_for()
    assert await page.get_by_test_id("endpoint-secret").count() == 0
    assert secret not in await page.content()

    # Send test: it arrives at the receiver, signed with the secret the page showed.
    hook = receiver.hook("console")
    hook.secrets.append(secret)
    await page.get_by_test_id("endpoint-link").click()
    await page.get_by_test_id("endpoint-test").click()
    result = page.get_by_test_id("endpoint-test-result")
    await result.get_by_text("Delivered").wait_for()
    assert "answered 200" in await result.inner_text()
    await received(hook, 1)
    assert hook.received[0].body["type"] == "test"
    assert hook.received[0].verified == {secret: True}

    # The delivery log shows it; opened, its attempt.
    delivery = page.get_by_test_id("delivery").first
    await delivery.wait_for()
    assert await delivery.get_by_test_id("delivery-type").inner_text() == "test"
    assert await delivery.get_by_test_id("delivery-attempts").inner_text() == "1 attempt"
    await delivery.locator("summary").click()
    attempt = delivery.get_by_test_id("delivery-attempt")
    await attempt.first.wait_for()
    assert await attempt.count() == 1
    assert await attempt.get_by_test_id("attempt-status").inner_text() == "200"

    # Redeliver: the same webhook-id again, a second attempt in the log.
    await delivery.get_by_test_id("delivery-redeliver").click()
    await received(hook, 2)
    assert hook.ids() == [hook.received[0].webhook_id] * 2
    await (
        delivery.get_by_test_id("delivery-attempts")
        .filter(has_text="2 attempts")
        .wait_for(timeout=20_000)
    )
    await delivery.get_by_test_id("delivery-attempt").nth(1).wait_for()
    assert await _attempts(api, hook.received[0].webhook_id) == 2


async def test_console_endpoint_replay_a_range_and_rotate_the_secret(
    page: Page, stack: Stack, api: Api, receiver: WebhookReceiver
) -> None:
    created, hook = await api.endpoint(receiver, "replay", ["customer.*"])
    tested = await api.call("POST", f"/webhook-endpoints/{created['id']}/test")
    assert tested["status"] == "succeeded"
    await signed_in(page, stack, api.ws)
    await _open(page, api, f"endpoint/{created['id']}")
    await page.get_by_test_id("delivery").first.wait_for()

    # A range that ends before it starts is refused before any call, in a sentence.
    await page.get_by_test_id("replay-from").fill("2030-01-02T10:00")
    await page.get_by_test_id("replay-to").fill("2030-01-01T10:00")
    await page.get_by_test_id("replay-submit").click()
    error = page.get_by_test_id("replay-error")
    await error.wait_for()
    assert await error.inner_text() == "The range must end after it starts."

    # Replay the last hour: the test delivery is queued again and sent again.
    await page.get_by_test_id("replay-from").fill("2020-01-01T00:00")
    await page.get_by_test_id("replay-to").fill("2100-01-01T00:00")
    await page.get_by_test_id("replay-submit").click()
    done = page.get_by_test_id("replay-result")
    await done.filter(has_text="queued again").wait_for()
    assert await done.inner_text() == "1 delivery queued again."
    await received(hook, 2)

    async def sent_twice() -> bool:
        return await _attempts(api, tested["id"]) == 2

    await eventually(sent_twice, timeout=15)

    # Rotate: a new secret, shown once, that signs what is sent next.
    await page.get_by_test_id("rotate-endpoint-secret").click()
    await page.get_by_test_id("rotate-endpoint-secret-confirm").click()
    shown = page.get_by_test_id("rotated-secret")
    await shown.wait_for()
    secret = await shown.input_value()
    assert secret.startswith("whsec_")
    assert secret != created["secret"]
    assert "shown this once" in await page.get_by_test_id("rotated-secret-box").inner_text()
    hook.secrets.append(secret)
    await api.call("POST", f"/webhook-endpoints/{created['id']}/test")
    assert hook.received[-1].verified[secret] is True
    await page.reload()
    await page.get_by_test_id("endpoint-test").wait_for()
    assert await page.get_by_test_id("rotated-secret").count() == 0


async def test_console_endpoint_edit_disables_it(
    page: Page, stack: Stack, api: Api, receiver: WebhookReceiver
) -> None:
    created, _ = await api.endpoint(receiver, "edit", ["customer.*"])
    await signed_in(page, stack, api.ws)
    await _open(page, api, f"endpoint/{created['id']}")
    assert await page.get_by_test_id("event-customer.*").is_checked()
    await page.get_by_test_id("event-customer.*").uncheck()
    await page.get_by_test_id("endpoint-save").click()
    error = page.get_by_test_id("endpoint-edit-error")
    await error.wait_for()
    assert await error.inner_text() == "Choose at least one event for the endpoint."
    await page.get_by_test_id("event-*").check()
    await page.get_by_test_id("endpoint-edit-enabled").uncheck()
    await page.get_by_test_id("endpoint-save").click()
    await page.get_by_test_id("endpoint-saved").filter(has_text="Saved").wait_for()
    assert await page.get_by_test_id("endpoint-state").inner_text() == "disabled"
    got = await api.call("GET", f"/webhook-endpoints/{created['id']}")
    assert (got["events"], got["enabled"]) == (["*"], False)
    # A disabled endpoint replays nothing: the API's reason, once, as a sentence.
    await page.get_by_test_id("replay-submit").click()
    problem = page.get_by_test_id("replay-error")
    await problem.wait_for()
    assert await problem.inner_text() == "The endpoint is disabled: enable it first."


async def test_console_endpoint_delivery_log_loads_older_deliveries(
    page: Page, stack: Stack, api: Api, receiver: WebhookReceiver
) -> None:
    created, _ = await api.endpoint(receiver, "many", ["customer.*"])
    for _ in range(53):  # more than one page of the log (50)
        await api.call("POST", f"/webhook-endpoints/{created['id']}/test", {})
    await signed_in(page, stack, api.ws)
    await _open(page, api, f"endpoint/{created['id']}")
    rows = page.get_by_test_id("delivery")
    more = page.get_by_test_id("deliveries-more")
    await more.wait_for()
    assert await rows.count() == 50
    await more.click()
    await rows.nth(52).wait_for()
    await more.wait_for(state="hidden")  # nothing older left
    ids = await rows.evaluate_all("els => els.map(e => e.dataset.deliveryId)")
    assert len(set(ids)) == 53  # no delivery twice, none missing


async def test_console_endpoint_of_another_workspace_is_not_reachable(
    page: Page,
    stack: Stack,
    api: Api,
    receiver: WebhookReceiver,
    make_workspace: WorkspaceFactory,
    http: aiohttp.ClientSession,
) -> None:
    other = await make_workspace()
    theirs = Api(http, other, bearer(await other.admin_token()))
    created, _ = await theirs.endpoint(receiver, "theirs", ["*"], description="Their backend")
    await signed_in(page, stack, api.ws)
    await _open(page, api, f"endpoint/{created['id']}")
    alert = page.get_by_role("alert").filter(has_text="No webhook endpoint")
    await alert.wait_for()
    content = await page.content()
    assert receiver.url_of("theirs") not in content
    assert "Their backend" not in content
    assert await page.get_by_test_id("endpoint-test").count() == 0
    await _open(page, api, "notifications")
    await page.get_by_test_id("endpoints-empty").wait_for()


async def test_console_notifications_on_a_phone(
    phone: Page, stack: Stack, api: Api, receiver: WebhookReceiver
) -> None:
    await signed_in(phone, stack, api.ws)
    await _open(phone, api, "notifications")
    await phone.get_by_test_id("endpoints-empty").wait_for()
    await no_sideways_scroll(phone)
    await phone.get_by_test_id("new-endpoint").click()
    await phone.get_by_test_id("endpoint-url").fill(receiver.url_of("phone"))
    await phone.get_by_test_id("event-*").check()
    await no_sideways_scroll(phone)
    await phone.get_by_test_id("endpoint-create").click()
    await phone.get_by_test_id("endpoint-secret").wait_for()
    await no_sideways_scroll(phone)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await phone.screenshot(path=str(ARTIFACTS / "notifications-secret-phone.png"), full_page=True)
    await phone.get_by_test_id("endpoint-link").click()
    await phone.get_by_test_id("endpoint-test").click()
    await phone.get_by_test_id("endpoint-test-result").get_by_text("Delivered").wait_for()
    delivery = phone.get_by_test_id("delivery").first
    await delivery.locator("summary").click()
    await delivery.get_by_test_id("delivery-attempt").first.wait_for()
    await no_sideways_scroll(phone)
