"""Fixtures of the notifications tests: a webhook receiver, an admin API client, events."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from services.notifications.consumers import EVENTS
from tests.conftest import WorkspaceHandle, bearer, eventually
from tests.fakes.webhook_receiver import Hook, WebhookReceiver


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A running webhook receiver."""
    async with WebhookReceiver() as running:
        yield running


@dataclass
class Api:
    """An admin client of one workspace through the gateway."""

    http: aiohttp.ClientSession
    ws: WorkspaceHandle
    headers: dict[str, str]

    async def call(
        self, method: str, path: str, body: object = None, *, status: int | None = None
    ) -> Any:
        """Send a request; check the status (any 2xx when not given); return the JSON."""
        async with self.http.request(
            method, self.ws.url(path), json=body, headers=self.headers
        ) as resp:
            text = await resp.text()
            if status is None:
                assert resp.status < 300, text
            else:
                assert resp.status == status, text
            return await resp.json()

    async def endpoint(
        self, receiver: WebhookReceiver, name: str, events: list[str] | None = None, **extra: Any
    ) -> tuple[dict[str, Any], Hook]:
        """Register ``receiver``'s hook ``name``; teach it the secret; return both."""
        created = await self.call(
            "POST",
            "/webhook-endpoints",
            {"url": receiver.url_of(name), "events": events or ["customer.*"], **extra},
            status=201,
        )
        hook = receiver.hook(name)
        hook.secrets.append(created["secret"])
        return created, hook

    async def customer(self, customer_id: str | None = None) -> str:
        """Create a customer (``customer.created`` follows); return its id."""
        customer_id = customer_id or f"c-{secrets.token_hex(4)}"
        await self.call("POST", "/customers", {"id": customer_id}, status=201)
        return customer_id

    async def deliveries(self, endpoint_id: str, query: str = "") -> list[dict[str, Any]]:
        """Return the first page of an endpoint's delivery log."""
        page = await self.call("GET", f"/webhook-endpoints/{endpoint_id}/deliveries?{query}")
        items: list[dict[str, Any]] = page["items"]
        return items


async def settled(ws: WorkspaceHandle) -> None:
    """Wait until notifications handled every event the workspace's creation emitted.

    A new workspace comes with a test customer (``customer.created``); an endpoint
    registered before that event is consumed would receive it, and tests count requests.
    """
    identity, notifications = await ws.stack.pool("identity"), await ws.stack.pool("notifications")
    try:
        emitted = [
            r["id"]
            for r in await identity.fetch(
                "SELECT id FROM outbox WHERE workspace_id = $1 AND subject = ANY($2::text[])",
                uuid.UUID(ws.id),
                [e.subject for e in EVENTS],
            )
        ]

        async def handled() -> bool:
            count = await notifications.fetchval(
                "SELECT count(*) FROM processed_events WHERE event_id = ANY($1::uuid[])", emitted
            )
            return bool(count == len(emitted))

        await eventually(handled)
    finally:
        await identity.close()
        await notifications.close()


@pytest.fixture
async def api(workspace: WorkspaceHandle, http: aiohttp.ClientSession) -> Api:
    """An admin client of a fresh workspace whose creation's events are handled."""
    admin = bearer(await workspace.admin_token())
    await settled(workspace)
    return Api(http, workspace, admin)


async def received(hook: Hook, count: int, timeout: float = 15.0) -> None:
    """Wait until ``hook`` got ``count`` requests."""

    async def enough() -> bool:
        return len(hook.received) >= count

    await eventually(enough, timeout=timeout)


async def delivery_status(api: Api, endpoint_id: str, status: str, count: int = 1) -> None:
    """Wait until ``count`` of an endpoint's deliveries have ``status``."""

    async def there() -> bool:
        found = await api.deliveries(endpoint_id, f"status={status}")
        return len(found) >= count

    await eventually(there, timeout=20)
