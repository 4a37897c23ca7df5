"""``tether_client.verify_webhook`` on real deliveries, judged beside svix's verifier."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiohttp import web
from svix.webhooks import Webhook
from svix.webhooks import WebhookVerificationError as SvixVerificationError
from tether_client import AsyncTether, WebhookVerificationError, verify_webhook

from tests.conftest import WorkspaceHandle
from tests.fakes.server import LocalServer


@dataclass(frozen=True)
class Delivery:
    """One request exactly as received: headers and raw body."""

    headers: dict[str, str]
    body: bytes


class RawReceiver(LocalServer):
    """Keep every request to ``/hook`` as received; answer 200."""

    def __init__(self) -> None:
        super().__init__()
        self.deliveries: list[Delivery] = []

    def build(self) -> web.Application:
        """Return the application."""
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        self.deliveries.append(Delivery(dict(request.headers), await request.read()))
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[RawReceiver]:
    """A running receiver."""
    async with RawReceiver() as running:
        yield running


def svix_accepts(secret: str, delivery: Delivery) -> bool:
    """Tell whether svix's Standard Webhooks verifier accepts the delivery."""
    try:
        Webhook(secret).verify(delivery.body, delivery.headers)
    except SvixVerificationError:
        return False
    return True


def ours_accepts(secret: str, delivery: Delivery, now: float | None = None) -> bool:
    """Tell whether ``verify_webhook`` accepts the delivery."""
    try:
        verify_webhook(delivery.headers, delivery.body, secret, now=now)
    except WebhookVerificationError:
        return False
    return True


async def test_python_sdk_verify_webhook_on_real_deliveries(
    workspace: WorkspaceHandle, receiver: RawReceiver
) -> None:
    """A test delivery verifies; tampering, another secret or a stale time do not, as with svix."""
    async with AsyncTether.for_admin(
        workspace.stack.gateway_url, workspace.key, workspace.secret
    ) as t:
        endpoint = await t.webhook_endpoints.create(
            url=f"{receiver.url}/hook", events=["flow_run.failed"]
        )
        detail = await t.webhook_endpoints.test(endpoint.id)
    assert detail.status == "succeeded", detail
    [delivery] = [d for d in receiver.deliveries if json.loads(d.body)["type"] == "test"]

    event = verify_webhook(delivery.headers, delivery.body, endpoint.secret)
    assert event.type == "test"
    assert event.id == delivery.headers["webhook-id"] == detail.id
    assert svix_accepts(endpoint.secret, delivery)

    other_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    stamp = int(delivery.headers["webhook-timestamp"])
    tampered_body = Delivery(delivery.headers, delivery.body.replace(b'"test"', b'"tset"'))
    tampered_id = Delivery({**delivery.headers, "webhook-id": "msg_other"}, delivery.body)
    no_signature = Delivery(
        {k: v for k, v in delivery.headers.items() if k.lower() != "webhook-signature"},
        delivery.body,
    )
    for name, secret, bad in [
        ("tampered body", endpoint.secret, tampered_body),
        ("another id", endpoint.secret, tampered_id),
        ("wrong secret", other_secret, delivery),
        ("no signature", endpoint.secret, no_signature),
    ]:
        assert not ours_accepts(secret, bad), name
        assert not svix_accepts(secret, bad), name
    # five minutes either side, as svix allows
    assert ours_accepts(endpoint.secret, delivery, now=stamp + 299)
    assert not ours_accepts(endpoint.secret, delivery, now=stamp + 301)
    assert not ours_accepts(endpoint.secret, delivery, now=stamp - 301)
    with pytest.raises(WebhookVerificationError, match="timestamp"):
        verify_webhook(delivery.headers, delivery.body, endpoint.secret, now=time.time() + 600)


async def test_python_sdk_verify_webhook_accepts_either_secret_after_rotation(
    workspace: WorkspaceHandle, receiver: RawReceiver
) -> None:
    async with AsyncTether.for_admin(
        workspace.stack.gateway_url, workspace.key, workspace.secret
    ) as t:
        endpoint = await t.webhook_endpoints.create(
            url=f"{receiver.url}/hook", events=["flow_run.failed"]
        )
        rotated = await t.webhook_endpoints.rotate_secret(endpoint.id)
        await t.webhook_endpoints.test(endpoint.id)
    [delivery] = [d for d in receiver.deliveries if json.loads(d.body)["type"] == "test"]
    assert len(delivery.headers["webhook-signature"].split()) == 2
    for secret in (endpoint.secret, rotated.secret):
        assert verify_webhook(delivery.headers, delivery.body, secret).type == "test"
        assert svix_accepts(secret, delivery)


def test_python_sdk_verify_webhook_agrees_with_svix_signing() -> None:
    """What svix signs, ``verify_webhook`` accepts, whatever the header names' case."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    now = datetime.now(UTC)
    body = json.dumps(
        {"type": "connection.created", "timestamp": now.isoformat(), "data": {"a": 1}}
    )
    signature = Webhook(secret).sign("msg_1", now, body)
    headers = {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": f"v1,{base64.b64encode(b'rotated-out').decode()} {signature}",
    }
    event = verify_webhook(headers, body, secret)
    assert (event.id, event.type, event.data) == ("msg_1", "connection.created", {"a": 1})
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify_webhook({**headers, "Webhook-Signature": "v2,abc"}, body, secret)
