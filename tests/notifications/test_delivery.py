"""Deliveries end to end: events in JetStream → signed requests a svix verifier accepts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.conftest import eventually
from tests.fakes.webhook_receiver import Behaviour, WebhookReceiver
from tests.notifications.conftest import Api, delivery_status, received

SCHEDULE = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # the test stack's TETHER_DELIVERY_SCHEDULE


async def _sql(api: Api, query: str, *args: object) -> None:
    pool = await api.ws.stack.pool("notifications")
    try:
        await pool.execute(query, *args)
    finally:
        await pool.close()


async def test_delivery_is_signed_and_verified_by_svix(api: Api, receiver: WebhookReceiver) -> None:
    created, hook = await api.endpoint(receiver, "a", ["customer.created"])
    customer = await api.customer()
    await received(hook, 1)
    [got] = hook.received
    assert got.verified == {created["secret"]: True}
    assert got.body["type"] == "customer.created"
    assert got.body["data"]["customerId"] == customer
    assert got.body["data"]["workspaceId"] == api.ws.id
    assert got.webhook_id.startswith("msg_")
    await delivery_status(api, created["id"], "succeeded")
    detail = await api.call("GET", f"/webhook-deliveries/{got.webhook_id}")
    assert detail["status"] == "succeeded"
    assert detail["payload"] == got.body
    [attempt] = detail["attempts"]
    assert attempt["statusCode"] == 200
    assert attempt["response"] == '{"ok": true}'
    assert attempt["error"] is None


async def test_delivery_patterns_choose_endpoints(api: Api, receiver: WebhookReceiver) -> None:
    _, everything = await api.endpoint(receiver, "all", ["*"])
    _, connections = await api.endpoint(receiver, "conn", ["connection.*"])
    _, records = await api.endpoint(receiver, "rec", ["data_record.*"])
    await api.customer()
    await received(everything, 1)
    await api.call("POST", "/webhook-endpoints/" + str(uuid.uuid4()) + "/test", status=404)
    assert connections.received == []
    assert records.received == []


async def test_delivery_retries_on_schedule_then_succeeds(
    api: Api, receiver: WebhookReceiver
) -> None:
    created, hook = await api.endpoint(receiver, "a")
    hook.behaviour = Behaviour(status=500)
    await api.customer()
    await received(hook, 3)
    hook.behaviour = Behaviour(status=200)
    await delivery_status(api, created["id"], "succeeded")
    ids = set(hook.ids())
    assert len(ids) == 1, "the webhook-id is stable across retries"
    times = [r.at for r in hook.received]
    for n in range(1, len(times)):
        assert times[n] - times[n - 1] >= SCHEDULE[n] * 0.9, (n, times)
    [delivery] = await api.deliveries(created["id"])
    detail = await api.call("GET", f"/webhook-deliveries/{delivery['id']}")
    codes = [a["statusCode"] for a in detail["attempts"]]
    assert codes[:2] == [500, 500]
    assert codes[-1] == 200
    assert detail["attempts"][0]["error"] == "the endpoint answered 500"


async def test_delivery_gives_up_after_the_schedule(api: Api, receiver: WebhookReceiver) -> None:
    created, hook = await api.endpoint(receiver, "a")
    hook.behaviour = Behaviour(drop=True)
    await api.customer()
    await delivery_status(api, created["id"], "failed")
    assert len(hook.received) == len(SCHEDULE)
    [delivery] = await api.deliveries(created["id"], "status=failed")
    assert delivery["attemptCount"] == len(SCHEDULE)
    assert delivery["lastStatusCode"] is None
    assert delivery["lastError"]


async def test_delivery_honours_429_retry_after(api: Api, receiver: WebhookReceiver) -> None:
    created, hook = await api.endpoint(receiver, "a")
    hook.behaviour = Behaviour(status=429, retry_after="1")
    await api.customer()
    await received(hook, 1)
    hook.behaviour = Behaviour(status=200)
    await delivery_status(api, created["id"], "succeeded")
    first, second = hook.received[:2]
    assert second.at - first.at >= 0.95  # the schedule alone would have waited 0.2 s


async def test_delivery_410_disables_the_endpoint_and_tells_the_others(
    api: Api, receiver: WebhookReceiver
) -> None:
    gone, hook = await api.endpoint(receiver, "gone", ["customer.*"])
    _, watcher = await api.endpoint(receiver, "watch", ["endpoint.disabled"])
    hook.behaviour = Behaviour(status=410)
    await api.customer()
    await received(watcher, 1)
    assert len(hook.received) == 1, "410 is never retried"
    notice = watcher.received[0].body
    assert notice["type"] == "endpoint.disabled"
    assert notice["data"]["endpointId"] == gone["id"]
    assert "410" in notice["data"]["reason"]
    got = await api.call("GET", f"/webhook-endpoints/{gone['id']}")
    assert got["enabled"] is False
    assert "410" in got["disabledReason"]
    await delivery_status(api, gone["id"], "failed")
    # enabling it again clears the reason
    again = await api.call("PATCH", f"/webhook-endpoints/{gone['id']}", {"enabled": True})
    assert again["disabledReason"] is None


async def test_delivery_failing_for_days_disables_the_endpoint(
    api: Api, receiver: WebhookReceiver
) -> None:
    failing, hook = await api.endpoint(receiver, "failing", ["customer.*"])
    _, watcher = await api.endpoint(receiver, "watch", ["*"])
    hook.behaviour = Behaviour(status=503)
    # The endpoint has failed every attempt since six days ago (set as a clock would).
    await _sql(
        api,
        "UPDATE endpoints SET failing_since = now() - interval '6 days' WHERE id = $1",
        uuid.UUID(failing["id"]),
    )
    await api.customer()

    async def disabled_notice() -> bool:
        return any(r.body["type"] == "endpoint.disabled" for r in watcher.received)

    await eventually(disabled_notice, timeout=15)
    got = await api.call("GET", f"/webhook-endpoints/{failing['id']}")
    assert got["enabled"] is False
    assert "every attempt failed" in got["disabledReason"]
    assert len(hook.received) == 1


async def test_delivery_success_ends_a_failure_streak(api: Api, receiver: WebhookReceiver) -> None:
    created, _ = await api.endpoint(receiver, "a")
    await _sql(
        api,
        "UPDATE endpoints SET failing_since = now() - interval '1 day' WHERE id = $1",
        uuid.UUID(created["id"]),
    )
    await api.customer()
    await delivery_status(api, created["id"], "succeeded")
    got = await api.call("GET", f"/webhook-endpoints/{created['id']}")
    assert got["enabled"] is True


async def test_delivery_rotation_signs_with_both_secrets_during_the_overlap(
    api: Api, receiver: WebhookReceiver
) -> None:
    created, hook = await api.endpoint(receiver, "a")
    old = created["secret"]
    rotated = await api.call("POST", f"/webhook-endpoints/{created['id']}/rotate-secret")
    new = rotated["secret"]
    hook.secrets.append(new)
    await api.customer()
    await received(hook, 1)
    assert hook.received[0].verified == {old: True, new: True}
    assert len(hook.received[0].headers["webhook-signature"].split(" ")) == 2
    # once the overlap ends only the new secret signs
    await _sql(
        api,
        "UPDATE endpoints SET previous_secret_expires_at = now() - interval '1 second'"
        " WHERE id = $1",
        uuid.UUID(created["id"]),
    )
    await api.customer()
    await received(hook, 2)
    assert hook.received[1].verified == {old: False, new: True}


async def test_delivery_redeliver_sends_the_same_webhook_id_again(
    api: Api, receiver: WebhookReceiver
) -> None:
    created, hook = await api.endpoint(receiver, "a")
    await api.customer()
    await delivery_status(api, created["id"], "succeeded")
    [delivery] = await api.deliveries(created["id"])
    again = await api.call("POST", f"/webhook-deliveries/{delivery['id']}/redeliver", status=202)
    assert again["id"] == delivery["id"]
    await received(hook, 2)
    assert hook.ids() == [delivery["id"], delivery["id"]]
    assert all(all(r.verified.values()) for r in hook.received)

    async def two_attempts() -> bool:
        detail = await api.call("GET", f"/webhook-deliveries/{delivery['id']}")
        return len(detail["attempts"]) == 2 and detail["status"] == "succeeded"

    await eventually(two_attempts)


async def test_delivery_replay_resends_a_time_range(api: Api, receiver: WebhookReceiver) -> None:
    created, hook = await api.endpoint(receiver, "a")
    hook.behaviour = Behaviour(status=503)  # an outage
    start = datetime.now(UTC) - timedelta(seconds=1)
    await api.customer()
    await api.customer()
    await delivery_status(api, created["id"], "failed", count=2)
    hook.behaviour = Behaviour(status=200)  # the backend is back
    end = datetime.now(UTC) + timedelta(seconds=1)
    replay = await api.call(
        "POST",
        f"/webhook-endpoints/{created['id']}/replay",
        {"from": start.isoformat(), "to": end.isoformat(), "status": "failed"},
        status=202,
    )
    assert replay["count"] == 2
    await delivery_status(api, created["id"], "succeeded", count=2)
    assert len({r.webhook_id for r in hook.accepted()}) == 2
    # a second replay of failed ones finds none left
    again = await api.call(
        "POST",
        f"/webhook-endpoints/{created['id']}/replay",
        {"from": start.isoformat(), "to": end.isoformat(), "status": "failed"},
        status=202,
    )
    assert again["count"] == 0


async def test_delivery_test_answers_synchronously_with_the_attempt(
    api: Api, receiver: WebhookReceiver
) -> None:
    created, hook = await api.endpoint(receiver, "a")
    hook.behaviour = Behaviour(status=500)
    answer = await api.call("POST", f"/webhook-endpoints/{created['id']}/test")
    assert answer["status"] == "failed"
    assert answer["eventType"] == "test"
    [attempt] = answer["attempts"]
    assert attempt["statusCode"] == 500
    assert attempt["durationMs"] >= 0
    assert hook.received[0].verified == {created["secret"]: True}
    got = await api.call("GET", f"/webhook-endpoints/{created['id']}")
    assert got["enabled"] is True  # a test never counts against the endpoint


async def test_delivery_log_filters_and_pages(api: Api, receiver: WebhookReceiver) -> None:
    created, hook = await api.endpoint(receiver, "a")
    for _ in range(3):
        await api.customer()
    await delivery_status(api, created["id"], "succeeded", count=3)
    await api.call("POST", f"/webhook-endpoints/{created['id']}/test")
    tests = await api.deliveries(created["id"], "type=test")
    assert [d["eventType"] for d in tests] == ["test"]
    first = await api.call("GET", f"/webhook-endpoints/{created['id']}/deliveries?limit=2")
    assert len(first["items"]) == 2
    assert first["cursor"]
    second = await api.call(
        "GET", f"/webhook-endpoints/{created['id']}/deliveries?limit=2&cursor={first['cursor']}"
    )
    ids = [d["id"] for d in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 4
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert await api.deliveries(created["id"], f"from={future}") == []
    assert len(hook.received) == 4


async def test_delivery_retention_deletes_old_finished_deliveries(
    api: Api, receiver: WebhookReceiver
) -> None:
    from services.notifications.retention import sweep_once

    created, _ = await api.endpoint(receiver, "a")
    await api.customer()
    await delivery_status(api, created["id"], "succeeded")
    await _sql(
        api,
        "UPDATE deliveries SET created_at = now() - interval '31 days' WHERE endpoint_id = $1",
        uuid.UUID(created["id"]),
    )
    pool = await api.ws.stack.pool("notifications")
    try:
        assert await sweep_once(pool, 30) >= 1
    finally:
        await pool.close()
    assert await api.deliveries(created["id"]) == []
