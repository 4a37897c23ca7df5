"""Answer ``tether.notifications.endpoints.*``: register, read, change and test endpoints.

A signing secret leaves this module twice at most: in the reply that created it and in
the reply of the rotation that replaced it. It is stored sealed to its row, never logged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from libs.common.contracts import notifications as c
from libs.common.crypto import Keyring
from libs.common.errors import Internal, NotFound
from libs.common.paging import keyset_page, uuid_after
from libs.common.ssrf import check_url
from services.notifications import catalog, delivery, signing
from services.notifications.deliveries import detail
from services.notifications.sender import Sender
from services.notifications.settings import NotificationsOptions
from services.notifications.store import deliveries
from services.notifications.store import endpoints as store
from services.notifications.store.endpoints import EndpointRecord


def _reply(record: EndpointRecord) -> c.WebhookEndpoint:
    return c.WebhookEndpoint.model_validate(record, from_attributes=True)


def _with_secret(record: EndpointRecord, secret: str) -> c.WebhookEndpointWithSecret:
    return c.WebhookEndpointWithSecret.model_validate(
        {**_reply(record).model_dump(), "secret": secret}
    )


def _missing(endpoint_id: UUID) -> NotFound:
    return NotFound(f"no webhook endpoint {endpoint_id}", code="endpoint_not_found")


class Endpoints:
    """Handlers of the endpoint operations (admins of the workspace only)."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        keyring: Keyring,
        sender: Sender,
        options: NotificationsOptions,
    ) -> None:
        self._pool = pool
        self._keyring = keyring
        self._sender = sender
        self._options = options

    async def list(self, req: c.EndpointListRequest) -> c.WebhookEndpointPage:
        """Return a page of the workspace's endpoints, by id."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            rows = await store.list_endpoints(
                conn, workspace_id, uuid_after(req.cursor), req.limit + 1
            )
        page, cursor = keyset_page(rows, req.limit, lambda r: (r.id,))
        return c.WebhookEndpointPage(items=[_reply(r) for r in page], cursor=cursor)

    async def create(self, req: c.EndpointCreateRequest) -> c.WebhookEndpointWithSecret:
        """Register an endpoint; the reply holds its secret, the only time it is shown."""
        workspace_id = req.ctx.admin_workspace()
        check_url(req.url, self._options.url_policy())
        events = catalog.check_patterns(req.events)
        endpoint_id, secret = uuid4(), signing.new_secret()
        async with self._pool.acquire() as conn:
            record = await store.insert_endpoint(
                conn,
                endpoint_id,
                workspace_id,
                url=req.url,
                events=events,
                enabled=req.enabled,
                description=req.description,
                secret_sealed=signing.seal(self._keyring, workspace_id, endpoint_id, secret),
            )
        return _with_secret(record, secret)

    async def get(self, req: c.EndpointGetRequest) -> c.WebhookEndpoint:
        """Return one endpoint (never its secret)."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            record = await store.get_endpoint(conn, workspace_id, req.id)
        if record is None:
            raise _missing(req.id)
        return _reply(record)

    async def patch(self, req: c.EndpointPatchRequest) -> c.WebhookEndpoint:
        """Change the fields given; enabling an endpoint Tether disabled clears the reason."""
        workspace_id = req.ctx.admin_workspace()
        if req.url is not None:
            check_url(req.url, self._options.url_policy())
        events = catalog.check_patterns(req.events) if req.events is not None else None
        async with self._pool.acquire() as conn:
            record = await store.patch_endpoint(
                conn,
                workspace_id,
                req.id,
                url=req.url,
                events=events,
                enabled=req.enabled,
                set_description="description" in req.model_fields_set,
                description=req.description,
            )
        if record is None:
            raise _missing(req.id)
        return _reply(record)

    async def delete(self, req: c.EndpointDeleteRequest) -> c.EndpointDeleted:
        """Delete an endpoint: nothing more is sent to it; its delivery log stays."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            if not await store.delete_endpoint(conn, workspace_id, req.id):
                raise _missing(req.id)
        return c.EndpointDeleted(id=req.id, deleted=True)

    async def rotate_secret(self, req: c.EndpointRotateRequest) -> c.WebhookEndpointWithSecret:
        """Issue a new secret; the one it replaces signs beside it for the overlap."""
        workspace_id = req.ctx.admin_workspace()
        secret = signing.new_secret()
        async with self._pool.acquire() as conn, conn.transaction():
            current = await store.lock_endpoint(conn, workspace_id, req.id)
            if current is None:
                raise _missing(req.id)
            previous = signing.unseal(self._keyring, workspace_id, req.id, current.secret_sealed)
            record = await store.rotate_secret(
                conn,
                workspace_id,
                req.id,
                secret_sealed=signing.seal(self._keyring, workspace_id, req.id, secret),
                previous_sealed=signing.seal(
                    self._keyring, workspace_id, req.id, previous, previous=True
                ),
                overlap=self._options.secret_overlap,
            )
        if record is None:
            raise _missing(req.id)
        return _with_secret(record, secret)

    async def test(self, req: c.EndpointTestRequest) -> c.WebhookDeliveryDetail:
        """Send a ``test`` event now (recorded first, like any delivery); answer with it.

        A test's answer never disables the endpoint nor counts toward its failure streak.
        """
        workspace_id = req.ctx.admin_workspace()
        now = datetime.now(UTC)
        msg_id = delivery.new_delivery_id()
        async with self._pool.acquire() as conn:
            endpoint = await store.get_endpoint(conn, workspace_id, req.id)
            if endpoint is None:
                raise _missing(req.id)
            record = await delivery.record_delivery(
                conn,
                workspace_id,
                endpoint.id,
                delivery=msg_id,
                event_id=None,
                event_type=catalog.TEST_TYPE,
                payload=delivery.body(catalog.TEST_TYPE, now, {"endpointId": str(endpoint.id)}),
                options=None,
            )
        if record is None:  # a fresh id conflicts with nothing
            raise Internal("the test delivery was not recorded")
        sent = await self._sender.send(
            endpoint.url, msg_id, record.body, delivery.live_secrets(self._keyring, endpoint, now)
        )
        async with self._pool.acquire() as conn, conn.transaction():
            await deliveries.record_attempt(conn, workspace_id, msg_id, sent.attempt)
            await deliveries.set_outcome(
                conn,
                workspace_id,
                msg_id,
                None,
                status="succeeded" if sent.ok else "failed",
                next_attempt_at=None,
                error=sent.attempt.error,
            )
            return await detail(conn, workspace_id, msg_id)
