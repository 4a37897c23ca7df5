"""Answer ``tether.notifications.deliveries.*``: the delivery log, redelivery and replay."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from libs.common import jobs
from libs.common.contracts import notifications as c
from libs.common.db import Conn
from libs.common.errors import Conflict, NotFound
from libs.common.paging import decode_time_cursor, keyset_page
from services.notifications import delivery
from services.notifications.settings import NotificationsOptions
from services.notifications.store import deliveries as store
from services.notifications.store import endpoints
from services.notifications.store.deliveries import DeliveryRecord


def _missing(delivery_id: str) -> NotFound:
    return NotFound(f"no webhook delivery {delivery_id}", code="delivery_not_found")


def _no_endpoint(endpoint_id: UUID) -> NotFound:
    return NotFound(f"no webhook endpoint {endpoint_id}", code="endpoint_not_found")


def summary(record: DeliveryRecord) -> c.WebhookDelivery:
    """Return a delivery's reply (without its body and attempts)."""
    return c.WebhookDelivery.model_validate(record, from_attributes=True)


async def detail(conn: Conn, workspace_id: UUID, delivery_id: str) -> c.WebhookDeliveryDetail:
    """Return a delivery with its body and every attempt; NotFound if there is none."""
    record = await store.get_delivery(conn, workspace_id, delivery_id)
    if record is None:
        raise _missing(delivery_id)
    attempts = await store.attempts(conn, workspace_id, delivery_id)
    return c.WebhookDeliveryDetail.model_validate(
        {
            **summary(record).model_dump(),
            "payload": json.loads(record.body),
            "attempts": [a.model_dump() for a in attempts],
        }
    )


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    return decode_time_cursor(cursor) if cursor else None


class Deliveries:
    """Handlers of the delivery-log operations (admins of the workspace only)."""

    def __init__(self, pool: asyncpg.Pool[Any], options: NotificationsOptions) -> None:
        self._pool = pool
        self._options = options

    async def list(self, req: c.DeliveryListRequest) -> c.WebhookDeliveryPage:
        """Return a page of an endpoint's deliveries, newest first."""
        workspace_id = req.ctx.admin_workspace()
        after = _after(req.cursor)
        async with self._pool.acquire() as conn:
            if await endpoints.get_endpoint(conn, workspace_id, req.endpoint_id) is None:
                raise _no_endpoint(req.endpoint_id)
            rows = await store.list_deliveries(conn, workspace_id, req, after)
        page, cursor = keyset_page(rows, req.limit, lambda r: (r.created_at.isoformat(), r.id))
        return c.WebhookDeliveryPage(items=[summary(r) for r in page], cursor=cursor)

    async def get(self, req: c.DeliveryGetRequest) -> c.WebhookDeliveryDetail:
        """Return a delivery with every attempt."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            return await detail(conn, workspace_id, req.id)

    async def redeliver(self, req: c.DeliveryRedeliverRequest) -> c.WebhookDelivery:
        """Send a finished delivery again: same webhook-id, a fresh retry schedule."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            record = await store.lock_delivery(conn, workspace_id, req.id)
            if record is None:
                raise _missing(req.id)
            if record.status == "pending":
                raise Conflict("the delivery is still pending", code="delivery_pending")
            await self._sendable(conn, workspace_id, record.endpoint_id)
            requeued = await self._requeue(conn, workspace_id, record.endpoint_id, record.id)
        return summary(requeued)

    async def replay(self, req: c.ReplayRequest) -> c.ReplayAccepted:
        """Send again an endpoint's finished deliveries created in [from, to).

        Pending ones are left alone (they are being sent); at most ``TETHER_REPLAY_MAX``
        per call, oldest first, so a second call continues where a capped one stopped.
        """
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            await self._sendable(conn, workspace_id, req.endpoint_id)
            ids = await store.replayable(
                conn,
                workspace_id,
                req.endpoint_id,
                req.from_,
                req.to,
                req.status,
                self._options.replay_max,
            )
            for delivery_id in ids:
                await self._requeue(conn, workspace_id, req.endpoint_id, delivery_id)
        return c.ReplayAccepted(endpoint_id=req.endpoint_id, count=len(ids))

    async def _sendable(self, conn: Conn, workspace_id: UUID, endpoint_id: UUID) -> None:
        endpoint = await endpoints.get_endpoint(conn, workspace_id, endpoint_id)
        if endpoint is None:
            raise _no_endpoint(endpoint_id)
        if not endpoint.enabled:
            raise Conflict("the endpoint is disabled: enable it first", code="endpoint_disabled")

    async def _requeue(
        self, conn: Conn, workspace_id: UUID, endpoint_id: UUID, delivery_id: str
    ) -> DeliveryRecord:
        job_id = uuid4()
        record = await store.requeue(conn, workspace_id, delivery_id, job_id)
        if record is None:
            raise _missing(delivery_id)
        await jobs.enqueue(
            conn, delivery.job_spec(workspace_id, endpoint_id, delivery_id, job_id, self._options)
        )
        return record
