"""Webhook endpoints through the gateway: CRUD, the secret shown once, bad input, isolation."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from libs.common.errors import InvalidInput
from libs.common.ssrf import check_url
from services.notifications.settings import NotificationsOptions
from tests.conftest import WorkspaceFactory, bearer
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.notifications.conftest import Api


async def test_endpoints_crud_shows_the_secret_once(api: Api, receiver: WebhookReceiver) -> None:
    created, _ = await api.endpoint(receiver, "a", ["connection.*", "flow_run.failed"])
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["connection.*", "flow_run.failed"]
    assert created["enabled"] is True
    got = await api.call("GET", f"/webhook-endpoints/{created['id']}")
    assert "secret" not in got
    assert got["url"] == created["url"]
    listed = await api.call("GET", "/webhook-endpoints")
    assert [e["id"] for e in listed["items"]] == [created["id"]]
    assert all("secret" not in e for e in listed["items"])
    patched = await api.call(
        "PATCH",
        f"/webhook-endpoints/{created['id']}",
        {"events": ["*"], "description": "backend", "enabled": False},
    )
    assert (patched["events"], patched["description"], patched["enabled"]) == (
        ["*"],
        "backend",
        False,
    )
    deleted = await api.call("DELETE", f"/webhook-endpoints/{created['id']}")
    assert deleted == {"id": created["id"], "deleted": True}
    await api.call("GET", f"/webhook-endpoints/{created['id']}", status=404)


async def test_endpoints_secret_is_sealed_at_rest(api: Api, receiver: WebhookReceiver) -> None:
    created, _ = await api.endpoint(receiver, "a")
    pool = await api.ws.stack.pool("notifications")
    try:
        sealed = await pool.fetchval(
            "SELECT secret_sealed FROM endpoints WHERE workspace_id = $1 AND id = $2",
            uuid.UUID(api.ws.id),
            uuid.UUID(created["id"]),
        )
    finally:
        await pool.close()
    assert sealed.startswith("v1.")
    assert created["secret"] not in sealed
    assert created["secret"].removeprefix("whsec_") not in sealed


async def test_endpoints_rotate_secret_returns_a_new_one(
    api: Api, receiver: WebhookReceiver
) -> None:
    created, _ = await api.endpoint(receiver, "a")
    rotated = await api.call("POST", f"/webhook-endpoints/{created['id']}/rotate-secret")
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    assert rotated["previousSecretExpiresAt"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["*"]}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data", "events": ["*"]}, "url"),
        ({"url": "http://metadata.google.internal/x", "events": ["*"]}, "url"),
        ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
        ({"url": "https://example.com/x", "events": []}, "events"),
        ({"url": "https://example.com/x", "events": ["no.such"]}, "events.0"),
        ({"url": "https://example.com/x", "events": ["Connection.*"]}, "events.0"),
        (
            {"url": "https://example.com/x", "events": ["*"], "description": "x" * 501},
            "description",
        ),
    ],
)
async def test_endpoints_bad_input_is_422_naming_the_field(
    api: Api, body: dict[str, object], field: str
) -> None:
    answer = await api.call("POST", "/webhook-endpoints", body, status=422)
    fields = [d.get("field") for d in answer["error"].get("details") or []]
    assert field in fields or field in answer["error"]["message"], answer


async def test_endpoints_patch_refuses_null_and_bad_url(
    api: Api, receiver: WebhookReceiver
) -> None:
    created, _ = await api.endpoint(receiver, "a")
    path = f"/webhook-endpoints/{created['id']}"
    answer = await api.call("PATCH", path, {"url": None}, status=422)
    assert "url" in str(answer)
    answer = await api.call("PATCH", path, {"url": "http://[fd00:ec2::254]/"}, status=422)
    assert "url" in str(answer)


def test_endpoints_url_policy_without_the_operator_setting() -> None:
    """By default only https to public addresses; private and loopback are refused."""
    policy = NotificationsOptions(allow_private_urls=False).url_policy()
    check_url("https://example.com/hooks", policy)
    for url in (
        "http://example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://10.1.2.3/hooks",
        "https://localhost/hooks",
        "https://169.254.169.254/",
    ):
        with pytest.raises(InvalidInput) as caught:
            check_url(url, policy)
        assert caught.value.details[0]["field"] == "url"


async def test_endpoints_event_types_list_schemas(api: Api) -> None:
    listed = await api.call("GET", "/webhook-event-types")
    by_type = {t["type"]: t for t in listed["items"]}
    for name in (
        "connection.created",
        "connection.error",
        "deployment.failed",
        "flow_run.failed",
        "action_run.failed",
        "data_record.created",
        "customer.archived",
        "endpoint.disabled",
    ):
        assert name in by_type, name
    assert by_type["data_record.updated"]["inWildcard"] is False
    assert by_type["connection.created"]["inWildcard"] is True
    assert by_type["action_run.failed"]["available"] is True
    assert by_type["connection.error"]["available"] is True  # emitted since round 2
    assert "connectionId" in by_type["connection.created"]["payloadSchema"]["properties"]
    assert "flowRunId" in by_type["flow_run.failed"]["payloadSchema"]["properties"]


def _routes(endpoint_id: str, delivery_id: str) -> list[tuple[str, str, object]]:
    return [
        ("GET", "/webhook-endpoints", None),
        ("POST", "/webhook-endpoints", {"url": "https://example.com/h", "events": ["*"]}),
        ("GET", f"/webhook-endpoints/{endpoint_id}", None),
        ("PATCH", f"/webhook-endpoints/{endpoint_id}", {"enabled": False}),
        ("DELETE", f"/webhook-endpoints/{endpoint_id}", None),
        ("POST", f"/webhook-endpoints/{endpoint_id}/rotate-secret", None),
        ("POST", f"/webhook-endpoints/{endpoint_id}/test", None),
        ("GET", f"/webhook-endpoints/{endpoint_id}/deliveries", None),
        (
            "POST",
            f"/webhook-endpoints/{endpoint_id}/replay",
            {"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
        ),
        ("GET", f"/webhook-deliveries/{delivery_id}", None),
        ("POST", f"/webhook-deliveries/{delivery_id}/redeliver", None),
        ("GET", "/webhook-event-types", None),
    ]


async def test_endpoints_isolation_other_workspace_404_customer_403(
    api: Api,
    receiver: WebhookReceiver,
    make_workspace: WorkspaceFactory,
    http: aiohttp.ClientSession,
) -> None:
    created, hook = await api.endpoint(receiver, "a")
    test = await api.call("POST", f"/webhook-endpoints/{created['id']}/test")
    other = await make_workspace()
    other_admin = bearer(await other.admin_token())
    customer = bearer(await api.ws.customer_token("cust-1"))
    for method, path, body in _routes(created["id"], test["id"]):
        async with http.request(method, api.ws.url(path), json=body, headers=customer) as resp:
            assert resp.status == 403, (method, path, await resp.text())
        if "{" in path or path in ("/webhook-endpoints", "/webhook-event-types"):
            continue
        async with http.request(method, other.url(path), json=body, headers=other_admin) as resp:
            if path.startswith(("/webhook-endpoints/", "/webhook-deliveries/")):
                assert resp.status == 404, (method, path, await resp.text())
    # the other workspace lists nothing of ours, and ours is untouched
    async with http.get(other.url("/webhook-endpoints"), headers=other_admin) as resp:
        assert (await resp.json())["items"] == []
    got = await api.call("GET", f"/webhook-endpoints/{created['id']}")
    assert got["enabled"] is True
    assert hook.received[0].body["type"] == "test"


async def test_endpoints_unknown_ids_are_404_and_bad_ids_422(api: Api) -> None:
    missing = uuid.uuid4()
    await api.call("GET", f"/webhook-endpoints/{missing}", status=404)
    await api.call("GET", f"/webhook-endpoints/{missing}/deliveries", status=404)
    await api.call("GET", f"/webhook-deliveries/msg_{missing.hex}", status=404)
    answer = await api.call("GET", "/webhook-deliveries/nope", status=422)
    assert "id" in str(answer)
    answer = await api.call("GET", "/webhook-endpoints/nope", status=422)
    assert "id" in str(answer)
    answer = await api.call(
        "POST",
        f"/webhook-endpoints/{missing}/replay",
        {"from": "2030-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"},
        status=422,
    )
    assert "to" in str(answer)
    answer = await api.call(
        "GET", f"/webhook-endpoints/{missing}/deliveries?status=weird", status=422
    )
    assert "status" in str(answer)
