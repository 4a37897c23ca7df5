"""Fixtures for the instances tests: a fake app with webhooks, definitions, a connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.conftest import AdminCalls, Stack, WorkspaceHandle, bearer, eventually
from tests.fakes.webhook_app import FakeWebhookApp

TERMINAL = {"succeeded", "failed", "partial", "cancelled"}


def app_event_type(**overrides: Any) -> dict[str, Any]:
    """Return the body of an app-event type for the fake app."""
    return {
        "key": "contact-created",
        "integrationKey": "crm",
        "name": "Contact created",
        "subscribe": {
            "method": "POST",
            "path": "/hooks",
            "body": {
                "url": "{webhookUrl}",
                "events": ["contact.created"],
                "secret": "{webhookSecret}",
                "connection": "{connectionId}",
            },
            "idPath": "data.id",
        },
        "unsubscribe": {"method": "DELETE", "path": "/hooks/{subscriptionId}"},
        "lookup": {"path": "/hooks", "itemsPath": "items"},
        "signature": {"header": "X-Hook-Signature", "secret": "subscription"},
        "eventsPath": "events",
        "deliveryIdHeader": "X-Delivery-Id",
        **overrides,
    }


DATA_SOURCE = {
    "key": "contacts",
    "integrationKey": "crm",
    "name": "Contacts",
    "fields": {
        "path": "/fields",
        "itemsPath": "fields[].{name: key, type: kind, label: title, required: mandatory}",
    },
    "initialState": {"path": "/records", "statePath": "cursor"},
}


@dataclass
class Crm(AdminCalls):
    """A workspace with the ``crm`` integration at the fake app, and its element definitions."""

    ws: WorkspaceHandle
    app: FakeWebhookApp
    http: aiohttp.ClientSession
    admin: dict[str, str]

    async def connect(self, customer_id: str) -> str:
        """Create a connection for ``customer_id`` (admin import of the app's API key)."""
        return await self.connection(customer_id, "crm", {"apiKey": self.app.api_key})

    async def deployments(self, connection_id: str) -> list[dict[str, Any]]:
        """Return a connection's deployments, newest first."""
        status, page = await self.request("GET", f"/deployments?connectionId={connection_id}")
        assert status == 200, page
        return list(page["items"])

    async def settled(
        self, connection_id: str, count: int = 1, timeout: float = 20
    ) -> dict[str, Any]:
        """Wait until the connection has ``count`` deployments and the newest finished; return it."""

        async def done() -> bool:
            items = await self.deployments(connection_id)
            return len(items) >= count and items[0]["status"] in TERMINAL

        await eventually(done, timeout=timeout)
        newest = (await self.deployments(connection_id))[0]
        status, full = await self.request("GET", f"/deployments/{newest['id']}")
        assert status == 200
        return dict(full)

    async def subscriptions(self, connection_id: str) -> list[dict[str, Any]]:
        """Return the connection's webhook subscriptions."""
        status, page = await self.request(
            "GET", f"/app-event-subscriptions?connectionId={connection_id}"
        )
        assert status == 200, page
        return list(page["items"])


@pytest.fixture
async def fake_app() -> AsyncIterator[FakeWebhookApp]:
    """A fake app with a webhook-subscription API."""
    async with FakeWebhookApp(api_key="crm-key-123") as app:
        yield app


@pytest.fixture
async def crm(
    stack: Stack, workspace: WorkspaceHandle, fake_app: FakeWebhookApp, http: aiohttp.ClientSession
) -> Crm:
    """The ``crm`` integration (API key) with one app-event type and one data source."""
    admin = bearer(await workspace.admin_token())
    env = Crm(workspace, fake_app, http, admin)
    for path, body in (
        ("/integrations", fake_app.integration()),
        ("/app-event-types", app_event_type()),
        ("/data-sources", DATA_SOURCE),
    ):
        status, created = await env.request("POST", path, body)
        assert status == 201, created
    return env


async def wait_for(condition: Any, timeout: float = 10) -> None:
    """Wait for a synchronous condition (a thin wrapper so tests read plainly)."""

    async def check() -> bool:
        return bool(condition())

    await eventually(check, timeout=timeout)
