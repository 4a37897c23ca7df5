"""Webhook subscriptions at the apps, and the deliveries already accepted on them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from libs.common.contracts import instances as c
from libs.common.db import Conn
from libs.common.rows import many, maybe, one
from services.instances.store._base import Row
from services.instances.store.connections import KnownConnection


class SubscriptionRecord(Row):
    """A webhook subscription row."""

    id: UUID
    workspace_id: UUID
    connection_id: UUID
    customer_id: str
    integration_key: str
    app_event_type_key: str
    status: c.SubscriptionStatus
    external_id: str | None
    token_sealed: str
    secret_sealed: str | None
    revision: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime


_SUB_COLUMNS = """
id, workspace_id, connection_id, customer_id, integration_key, app_event_type_key, status,
external_id, token_sealed, secret_sealed, revision, last_error, created_at, updated_at
"""
SELECT_LIVE_SUBSCRIPTION_SQL = f"""
SELECT {_SUB_COLUMNS} FROM subscriptions
WHERE workspace_id = $1 AND connection_id = $2 AND app_event_type_key = $3 AND status <> 'unsubscribed'
"""
INSERT_SUBSCRIPTION_SQL = f"""
INSERT INTO subscriptions (id, workspace_id, connection_id, customer_id, integration_key,
    app_event_type_key, status, token_hash, token_sealed, secret_sealed, revision)
VALUES ($1, $2, $3, $4, $5, $6, 'subscribing', $7, $8, $9, $10)
RETURNING {_SUB_COLUMNS}
"""
SELECT_SUBSCRIPTION_SQL = (
    f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE workspace_id = $1 AND id = $2"
)
SET_SUBSCRIPTION_SQL = f"""
UPDATE subscriptions SET status = $3, external_id = coalesce($4, external_id), last_error = $5,
    revision = coalesce($6, revision), updated_at = now()
WHERE workspace_id = $1 AND id = $2 RETURNING {_SUB_COLUMNS}
"""
LIST_SUBSCRIPTIONS_SQL = f"""
SELECT {_SUB_COLUMNS} FROM subscriptions
WHERE workspace_id = $1 AND ($2::uuid IS NULL OR connection_id = $2)
  AND ($3::text IS NULL OR customer_id = $3)
ORDER BY created_at
"""
LIVE_SUBSCRIPTION_KEYS_SQL = """
SELECT app_event_type_key FROM subscriptions
WHERE workspace_id = $1 AND connection_id = $2 AND status <> 'unsubscribed'
"""
# Inbound webhooks: the URL's token is the only credential; its hash names the workspace.
SUBSCRIPTION_BY_TOKEN_SQL = f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE token_hash = $1"
RECORD_DELIVERY_SQL = """
INSERT INTO webhook_deliveries (subscription_id, delivery_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING RETURNING delivery_id
"""


async def live_subscription(
    conn: Conn, workspace_id: UUID, connection_id: UUID, key: str
) -> SubscriptionRecord | None:
    """Return the connection's subscription to one app-event type (not unsubscribed)."""
    row = await conn.fetchrow(SELECT_LIVE_SUBSCRIPTION_SQL, workspace_id, connection_id, key)
    return maybe(SubscriptionRecord, row)


async def select_subscription(
    conn: Conn, workspace_id: UUID, subscription_id: UUID
) -> SubscriptionRecord | None:
    """Return one subscription of the workspace, whatever its status."""
    row = await conn.fetchrow(SELECT_SUBSCRIPTION_SQL, workspace_id, subscription_id)
    return maybe(SubscriptionRecord, row)


async def insert_subscription(
    conn: Conn,
    subscription_id: UUID,
    known: KnownConnection,
    key: str,
    *,
    token_hash: bytes,
    token_sealed: str,
    secret_sealed: str | None,
    revision: int,
) -> SubscriptionRecord:
    """Store the intent to subscribe before calling the app."""
    row = await conn.fetchrow(
        INSERT_SUBSCRIPTION_SQL,
        subscription_id,
        known.workspace_id,
        known.id,
        known.customer_id,
        known.integration_key,
        key,
        token_hash,
        token_sealed,
        secret_sealed,
        revision,
    )
    return one(SubscriptionRecord, row)


async def set_subscription(
    conn: Conn,
    record: SubscriptionRecord,
    status: c.SubscriptionStatus,
    *,
    external_id: str | None = None,
    error: str | None = None,
    revision: int | None = None,
) -> SubscriptionRecord:
    """Move a subscription to ``status``."""
    row = await conn.fetchrow(
        SET_SUBSCRIPTION_SQL,
        record.workspace_id,
        record.id,
        status,
        external_id,
        error[:300] if error else None,
        revision,
    )
    return one(SubscriptionRecord, row)


async def list_subscriptions(
    conn: Conn, workspace_id: UUID, connection_id: UUID | None, customer_id: str | None
) -> list[SubscriptionRecord]:
    """Return subscriptions of the workspace (of one connection or customer when given)."""
    rows = await conn.fetch(LIST_SUBSCRIPTIONS_SQL, workspace_id, connection_id, customer_id)
    return many(SubscriptionRecord, rows)


async def live_subscription_keys(conn: Conn, workspace_id: UUID, connection_id: UUID) -> set[str]:
    """Return the app-event types a connection is subscribed to (or subscribing)."""
    rows = await conn.fetch(LIVE_SUBSCRIPTION_KEYS_SQL, workspace_id, connection_id)
    return {str(r["app_event_type_key"]) for r in rows}


async def subscription_by_token(conn: Conn, token_hash: bytes) -> SubscriptionRecord | None:
    """Return the subscription an inbound URL token belongs to."""
    return maybe(SubscriptionRecord, await conn.fetchrow(SUBSCRIPTION_BY_TOKEN_SQL, token_hash))


async def record_delivery(conn: Conn, subscription_id: UUID, delivery_id: str) -> bool:
    """Remember an app's delivery id; False when it was seen before."""
    return await conn.fetchval(RECORD_DELIVERY_SQL, subscription_id, delivery_id) is not None
