"""Instances' SQL: definitions, known connections, deployments and steps, instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from libs.common.contracts import instances as c
from libs.common.db import Conn
from libs.common.errors import Conflict


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- definitions ------------------------------------------------------------------------


class AppEventTypeRecord(_Row):
    """An app-event type row."""

    workspace_id: UUID
    key: str
    integration_key: str
    name: str
    spec: dict[str, Any]
    static_secret_sealed: str | None
    revision: int
    created_at: datetime
    updated_at: datetime

    @property
    def subscribe(self) -> c.SubscribeSpec:
        """Return how to subscribe."""
        return c.SubscribeSpec.model_validate(self.spec["subscribe"])

    def part(self, name: str, model: type[Any]) -> Any:
        """Return an optional part of the spec as its model (None when absent)."""
        value = self.spec.get(name)
        return model.model_validate(value) if value is not None else None

    def public(self) -> c.AppEventType:
        """Return the definition as the API shows it."""
        return c.AppEventType(
            key=self.key,
            integration_key=self.integration_key,
            name=self.name,
            subscribe=self.subscribe,
            unsubscribe=self.part("unsubscribe", c.UnsubscribeSpec),
            lookup=self.part("lookup", c.LookupSpec),
            signature=self.part("signature", c.SignatureSpec),
            static_secret_set=self.static_secret_sealed is not None,
            events_path=self.spec.get("eventsPath", "@"),
            delivery_id_header=self.spec.get("deliveryIdHeader"),
            revision=self.revision,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


class DataSourceRecord(_Row):
    """A data source row."""

    workspace_id: UUID
    key: str
    integration_key: str
    name: str
    spec: dict[str, Any]
    revision: int
    created_at: datetime
    updated_at: datetime

    def public(self) -> c.DataSource:
        """Return the definition as the API shows it."""
        fields, state = self.spec.get("fields"), self.spec.get("initialState")
        return c.DataSource(
            key=self.key,
            integration_key=self.integration_key,
            name=self.name,
            fields=c.FieldsSpec.model_validate(fields) if fields else None,
            initial_state=c.InitialStateSpec.model_validate(state) if state else None,
            revision=self.revision,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


_ELEMENT_TABLES = {"app_event_types": AppEventTypeRecord, "data_sources": DataSourceRecord}
_AET_COLUMNS = "workspace_id, key, integration_key, name, spec, static_secret_sealed, revision, created_at, updated_at"
_DS_COLUMNS = "workspace_id, key, integration_key, name, spec, revision, created_at, updated_at"

INSERT_APP_EVENT_TYPE_SQL = f"""
INSERT INTO app_event_types (workspace_id, key, integration_key, name, spec, static_secret_sealed)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_AET_COLUMNS}
"""
UPDATE_APP_EVENT_TYPE_SQL = f"""
UPDATE app_event_types SET name = $3, spec = $4, static_secret_sealed = $5,
    revision = revision + 1, updated_at = now()
WHERE workspace_id = $1 AND key = $2 RETURNING {_AET_COLUMNS}
"""
SELECT_APP_EVENT_TYPE_SQL = (
    f"SELECT {_AET_COLUMNS} FROM app_event_types WHERE workspace_id = $1 AND key = $2"
)
LIST_APP_EVENT_TYPES_SQL = f"""
SELECT {_AET_COLUMNS} FROM app_event_types
WHERE workspace_id = $1 AND ($2::text IS NULL OR integration_key = $2) ORDER BY key
"""
INSERT_DATA_SOURCE_SQL = f"""
INSERT INTO data_sources (workspace_id, key, integration_key, name, spec)
VALUES ($1, $2, $3, $4, $5) RETURNING {_DS_COLUMNS}
"""
UPDATE_DATA_SOURCE_SQL = f"""
UPDATE data_sources SET name = $3, spec = $4, revision = revision + 1, updated_at = now()
WHERE workspace_id = $1 AND key = $2 RETURNING {_DS_COLUMNS}
"""
SELECT_DATA_SOURCE_SQL = (
    f"SELECT {_DS_COLUMNS} FROM data_sources WHERE workspace_id = $1 AND key = $2"
)
LIST_DATA_SOURCES_SQL = f"""
SELECT {_DS_COLUMNS} FROM data_sources
WHERE workspace_id = $1 AND ($2::text IS NULL OR integration_key = $2) ORDER BY key
"""
DELETE_ELEMENT_SQL = "DELETE FROM {table} WHERE workspace_id = $1 AND key = $2"


async def insert_app_event_type(
    conn: Conn, workspace_id: UUID, key: str, integration_key: str, name: str,
    spec: dict[str, Any], secret: str | None,
) -> AppEventTypeRecord:  # fmt: skip
    """Insert an app-event type; a taken key is a Conflict."""
    try:
        row = await conn.fetchrow(
            INSERT_APP_EVENT_TYPE_SQL, workspace_id, key, integration_key, name, spec, secret
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"app-event type {key} exists", code="element_exists") from exc
    assert row is not None
    return AppEventTypeRecord.model_validate(dict(row))


async def update_app_event_type(
    conn: Conn, record: AppEventTypeRecord, name: str, spec: dict[str, Any], secret: str | None
) -> AppEventTypeRecord:
    """Write an app-event type back with the next revision."""
    row = await conn.fetchrow(
        UPDATE_APP_EVENT_TYPE_SQL, record.workspace_id, record.key, name, spec, secret
    )
    assert row is not None
    return AppEventTypeRecord.model_validate(dict(row))


async def select_app_event_type(
    conn: Conn, workspace_id: UUID, key: str, *, for_update: bool = False
) -> AppEventTypeRecord | None:
    """Return one app-event type (row-locked when ``for_update``)."""
    sql = SELECT_APP_EVENT_TYPE_SQL + " FOR UPDATE" if for_update else SELECT_APP_EVENT_TYPE_SQL
    row = await conn.fetchrow(sql, workspace_id, key)
    return AppEventTypeRecord.model_validate(dict(row)) if row else None


async def list_app_event_types(
    conn: Conn, workspace_id: UUID, integration_key: str | None = None
) -> list[AppEventTypeRecord]:
    """Return the workspace's app-event types (of one integration when given)."""
    rows = await conn.fetch(LIST_APP_EVENT_TYPES_SQL, workspace_id, integration_key)
    return [AppEventTypeRecord.model_validate(dict(r)) for r in rows]


async def insert_data_source(
    conn: Conn, workspace_id: UUID, key: str, integration_key: str, name: str, spec: dict[str, Any]
) -> DataSourceRecord:
    """Insert a data source; a taken key is a Conflict."""
    try:
        row = await conn.fetchrow(
            INSERT_DATA_SOURCE_SQL, workspace_id, key, integration_key, name, spec
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"data source {key} exists", code="element_exists") from exc
    assert row is not None
    return DataSourceRecord.model_validate(dict(row))


async def update_data_source(
    conn: Conn, record: DataSourceRecord, name: str, spec: dict[str, Any]
) -> DataSourceRecord:
    """Write a data source back with the next revision."""
    row = await conn.fetchrow(UPDATE_DATA_SOURCE_SQL, record.workspace_id, record.key, name, spec)
    assert row is not None
    return DataSourceRecord.model_validate(dict(row))


async def select_data_source(conn: Conn, workspace_id: UUID, key: str) -> DataSourceRecord | None:
    """Return one data source."""
    row = await conn.fetchrow(SELECT_DATA_SOURCE_SQL, workspace_id, key)
    return DataSourceRecord.model_validate(dict(row)) if row else None


async def list_data_sources(
    conn: Conn, workspace_id: UUID, integration_key: str | None = None
) -> list[DataSourceRecord]:
    """Return the workspace's data sources (of one integration when given)."""
    rows = await conn.fetch(LIST_DATA_SOURCES_SQL, workspace_id, integration_key)
    return [DataSourceRecord.model_validate(dict(r)) for r in rows]


async def delete_element(conn: Conn, table: str, workspace_id: UUID, key: str) -> bool:
    """Delete a definition; True when it existed."""
    assert table in _ELEMENT_TABLES
    return bool(
        await conn.execute(DELETE_ELEMENT_SQL.format(table=table), workspace_id, key) == "DELETE 1"
    )


# --- known connections ------------------------------------------------------------------


class KnownConnection(_Row):
    """What this service knows of a connection (from its events, or a read when missing)."""

    workspace_id: UUID
    id: UUID
    customer_id: str
    integration_key: str
    state: str
    state_at: datetime
    """When ``state`` was true at connections (an event's occurredAt, a read's updatedAt)."""


_KNOWN_COLUMNS = "workspace_id, id, customer_id, integration_key, state, state_at"
# An event and a read can arrive in either order: only a newer state replaces the one held
# (both times come from the connections service: its clock when it emitted, its database's
# when it wrote the row; a state change emits inside the transaction that writes it).
UPSERT_CONNECTION_SQL = f"""
INSERT INTO known_connections (workspace_id, id, customer_id, integration_key, state, state_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (workspace_id, id) DO UPDATE
    SET state = EXCLUDED.state, state_at = EXCLUDED.state_at, updated_at = now()
    WHERE known_connections.state_at < EXCLUDED.state_at
RETURNING {_KNOWN_COLUMNS}
"""
SELECT_KNOWN_CONNECTION_SQL = f"""
SELECT {_KNOWN_COLUMNS} FROM known_connections WHERE workspace_id = $1 AND id = $2
"""
LIST_CONNECTED_SQL = f"""
SELECT {_KNOWN_COLUMNS} FROM known_connections
WHERE workspace_id = $1 AND integration_key = $2 AND state = 'connected' ORDER BY id
"""


async def upsert_connection(conn: Conn, known: KnownConnection) -> KnownConnection:
    """Remember a connection's state unless a newer one is known; return what is known now."""
    row = await conn.fetchrow(
        UPSERT_CONNECTION_SQL,
        known.workspace_id,
        known.id,
        known.customer_id,
        known.integration_key,
        known.state,
        known.state_at,
    )
    if row is None:  # the row holds a newer state: keep it
        row = await conn.fetchrow(SELECT_KNOWN_CONNECTION_SQL, known.workspace_id, known.id)
    assert row is not None
    return KnownConnection.model_validate(dict(row))


async def select_known_connection(
    conn: Conn, workspace_id: UUID, connection_id: UUID
) -> KnownConnection | None:
    """Return a connection this service knows."""
    row = await conn.fetchrow(SELECT_KNOWN_CONNECTION_SQL, workspace_id, connection_id)
    return KnownConnection.model_validate(dict(row)) if row else None


async def list_connected(
    conn: Conn, workspace_id: UUID, integration_key: str
) -> list[KnownConnection]:
    """Return an integration's connected connections."""
    rows = await conn.fetch(LIST_CONNECTED_SQL, workspace_id, integration_key)
    return [KnownConnection.model_validate(dict(r)) for r in rows]


# --- deployments ------------------------------------------------------------------------


class DeploymentRecord(_Row):
    """A deployment row."""

    id: UUID
    workspace_id: UUID
    connection_id: UUID
    customer_id: str
    integration_key: str
    reason: str
    status: c.DeploymentStatus
    steps_total: int
    steps_done: int
    superseded_by: UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class StepRecord(_Row):
    """A deployment step row."""

    id: UUID
    deployment_id: UUID
    workspace_id: UUID
    ord: int
    kind: str
    element_key: str
    status: c.StepStatus
    attempts: int
    error: str | None
    updated_at: datetime

    def public(self) -> c.DeploymentStep:
        """Return the step as the API shows it."""
        return c.DeploymentStep(
            id=self.id, kind=self.kind, element_key=self.element_key,
            status=self.status, attempts=self.attempts, error=self.error, updated_at=self.updated_at,
        )  # fmt: skip


_DEPLOYMENT_COLUMNS = """
id, workspace_id, connection_id, customer_id, integration_key, reason, status, steps_total,
steps_done, superseded_by, created_at, started_at, finished_at
"""
_STEP_COLUMNS = (
    "id, deployment_id, workspace_id, ord, kind, element_key, status, attempts, error, updated_at"
)

SUPERSEDE_SQL = """
UPDATE deployments SET status = 'cancelled', superseded_by = $3, finished_at = now()
WHERE workspace_id = $1 AND connection_id = $2 AND status IN ('pending', 'running')
RETURNING id
"""
LOCK_UNFINISHED_STEPS_SQL = """
SELECT s.id FROM deployment_steps s JOIN deployments d ON d.id = s.deployment_id
WHERE d.workspace_id = $1 AND d.connection_id = $2 AND d.status IN ('pending', 'running')
ORDER BY s.id FOR UPDATE OF s
"""
CANCEL_STEPS_SQL = """
UPDATE deployment_steps SET status = 'cancelled', updated_at = now()
WHERE deployment_id = ANY($1::uuid[]) AND status = 'pending'
"""
INSERT_DEPLOYMENT_SQL = f"""
INSERT INTO deployments (id, workspace_id, connection_id, customer_id, integration_key, reason,
    status, steps_total, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $7 = 'succeeded' THEN now() END)
RETURNING {_DEPLOYMENT_COLUMNS}
"""
INSERT_STEPS_SQL = """
INSERT INTO deployment_steps (id, deployment_id, workspace_id, ord, kind, element_key)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::text[])
"""
SELECT_DEPLOYMENT_SQL = (
    f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE workspace_id = $1 AND id = $2"
)
SELECT_STEPS_SQL = f"SELECT {_STEP_COLUMNS} FROM deployment_steps WHERE workspace_id = $1 AND deployment_id = $2 ORDER BY ord"
LIST_DEPLOYMENTS_SQL = f"""
SELECT {_DEPLOYMENT_COLUMNS} FROM deployments
WHERE workspace_id = $1
  AND ($2::uuid IS NULL OR connection_id = $2)
  AND ($3::text IS NULL OR integration_key = $3)
  AND ($4::text IS NULL OR status = $4)
  AND ($5::text IS NULL OR customer_id = $5)
  AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7))
ORDER BY created_at DESC, id DESC
LIMIT $8
"""
# A step is ready when it is pending and due, or running on a lease that ran out (its
# worker died). Steps of one element on one connection never run at once: a newer
# deployment's step waits while an older one still holds a live lease.
CLAIM_STEP_SQL = """
WITH next AS (
    SELECT s.id FROM deployment_steps s JOIN deployments d ON d.id = s.deployment_id
    WHERE d.status IN ('pending', 'running')
      AND ((s.status = 'pending' AND s.next_attempt_at <= now())
           OR (s.status = 'running' AND s.lease_until < now()))
      AND NOT EXISTS (
          SELECT 1 FROM deployment_steps o JOIN deployments od ON od.id = o.deployment_id
          WHERE od.workspace_id = d.workspace_id AND od.connection_id = d.connection_id
            AND o.element_key = s.element_key AND o.id <> s.id
            AND o.status = 'running' AND o.lease_until >= now())
    ORDER BY s.next_attempt_at, s.ord
    LIMIT 1
    FOR UPDATE OF s SKIP LOCKED
)
UPDATE deployment_steps s SET status = 'running', lease_owner = $1,
    lease_until = now() + make_interval(secs => $2), attempts = s.attempts + 1, updated_at = now()
FROM next WHERE s.id = next.id
RETURNING s.id, s.deployment_id, s.workspace_id, s.ord, s.kind, s.element_key, s.status,
          s.attempts, s.error, s.updated_at
"""
MARK_RUNNING_SQL = """
UPDATE deployments SET status = 'running', started_at = coalesce(started_at, now())
WHERE id = $1 AND status = 'pending'
"""
FINISH_STEP_SQL = """
UPDATE deployment_steps SET status = $3, error = $4, next_attempt_at = coalesce($5, next_attempt_at),
    lease_owner = NULL, lease_until = NULL, updated_at = now()
WHERE id = $1 AND lease_owner = $2 AND status = 'running'
RETURNING deployment_id
"""
LOCK_DEPLOYMENT_SQL = f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1 FOR UPDATE"
COUNT_STEPS_SQL = """
SELECT count(*) FILTER (WHERE status IN ('succeeded', 'failed')) AS done,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) AS total
FROM deployment_steps WHERE deployment_id = $1
"""
SET_PROGRESS_SQL = f"""
UPDATE deployments SET steps_done = $2, status = $3,
    finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'partial') THEN now() ELSE finished_at END
WHERE id = $1 RETURNING {_DEPLOYMENT_COLUMNS}
"""


def _deployment(row: asyncpg.Record | None) -> DeploymentRecord | None:
    return DeploymentRecord.model_validate(dict(row)) if row else None


async def supersede(conn: Conn, workspace_id: UUID, connection_id: UUID, newer: UUID) -> list[UUID]:
    """Cancel the connection's unfinished deployments in favour of ``newer``.

    Workers lock a step, then its deployment (claim, finish); locking the deployments
    first here deadlocked with them, so their steps are locked first, in the same order.
    """
    await conn.execute(LOCK_UNFINISHED_STEPS_SQL, workspace_id, connection_id)
    ids = [r["id"] for r in await conn.fetch(SUPERSEDE_SQL, workspace_id, connection_id, newer)]
    if ids:
        await conn.execute(CANCEL_STEPS_SQL, ids)
    return ids


async def insert_deployment(
    conn: Conn, deployment_id: UUID, known: KnownConnection, reason: str, steps: list[tuple[str, str]],
    step_ids: list[UUID],
) -> DeploymentRecord:  # fmt: skip
    """Insert a deployment and its steps (an empty plan is done at once)."""
    status = "pending" if steps else "succeeded"
    record = _deployment(
        await conn.fetchrow(
            INSERT_DEPLOYMENT_SQL,
            deployment_id,
            known.workspace_id,
            known.id,
            known.customer_id,
            known.integration_key,
            reason,
            status,
            len(steps),
        )
    )
    assert record is not None
    if steps:
        await conn.execute(
            INSERT_STEPS_SQL, step_ids, [deployment_id] * len(steps), [known.workspace_id] * len(steps),
            list(range(len(steps))), [k for k, _ in steps], [e for _, e in steps],
        )  # fmt: skip
    return record


async def select_deployment(
    conn: Conn, workspace_id: UUID, deployment_id: UUID
) -> DeploymentRecord | None:
    """Return one deployment."""
    return _deployment(await conn.fetchrow(SELECT_DEPLOYMENT_SQL, workspace_id, deployment_id))


async def select_steps(conn: Conn, workspace_id: UUID, deployment_id: UUID) -> list[StepRecord]:
    """Return a deployment's steps in order."""
    rows = await conn.fetch(SELECT_STEPS_SQL, workspace_id, deployment_id)
    return [StepRecord.model_validate(dict(r)) for r in rows]


async def list_deployments(
    conn: Conn, workspace_id: UUID, *, connection_id: UUID | None, integration_key: str | None,
    status: str | None, customer_id: str | None, before: tuple[datetime, UUID] | None, limit: int,
) -> list[DeploymentRecord]:  # fmt: skip
    """Return deployments newest first, after the cursor."""
    at, last = before if before else (None, None)
    rows = await conn.fetch(
        LIST_DEPLOYMENTS_SQL,
        workspace_id,
        connection_id,
        integration_key,
        status,
        customer_id,
        at,
        last,
        limit,
    )
    return [r for r in map(_deployment, rows) if r is not None]


async def claim_step(conn: Conn, owner: str, lease: float) -> StepRecord | None:
    """Lease the next ready step (system work across workspaces)."""
    row = await conn.fetchrow(CLAIM_STEP_SQL, owner, lease)
    if row is None:
        return None
    await conn.execute(MARK_RUNNING_SQL, row["deployment_id"])
    return StepRecord.model_validate(dict(row))


async def finish_step(
    conn: Conn,
    step: StepRecord,
    owner: str,
    status: str,
    error: str | None,
    retry_at: datetime | None,
) -> bool:
    """Record a step's outcome if this worker still holds its lease."""
    row = await conn.fetchrow(FINISH_STEP_SQL, step.id, owner, status, error, retry_at)
    return row is not None


async def update_progress(conn: Conn, deployment_id: UUID) -> tuple[DeploymentRecord, bool]:
    """Recount a deployment's steps; return it and whether it just finished."""
    current = _deployment(await conn.fetchrow(LOCK_DEPLOYMENT_SQL, deployment_id))
    assert current is not None
    counts = await conn.fetchrow(COUNT_STEPS_SQL, deployment_id)
    assert counts is not None
    status = current.status
    finished = False
    if status in ("pending", "running") and counts["done"] == counts["total"]:
        finished = True
        if counts["failed"] == 0:
            status = "succeeded"
        elif counts["failed"] == counts["total"]:
            status = "failed"
        else:
            status = "partial"
    record = _deployment(
        await conn.fetchrow(SET_PROGRESS_SQL, deployment_id, counts["done"], status)
    )
    assert record is not None
    return record, finished


# --- instances --------------------------------------------------------------------------


class SubscriptionRecord(_Row):
    """A webhook subscription row."""

    id: UUID
    workspace_id: UUID
    connection_id: UUID
    customer_id: str
    integration_key: str
    app_event_type_key: str
    status: str
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


def _subscription(row: asyncpg.Record | None) -> SubscriptionRecord | None:
    return SubscriptionRecord.model_validate(dict(row)) if row else None


async def live_subscription(
    conn: Conn, workspace_id: UUID, connection_id: UUID, key: str
) -> SubscriptionRecord | None:
    """Return the connection's subscription to one app-event type (not unsubscribed)."""
    return _subscription(
        await conn.fetchrow(SELECT_LIVE_SUBSCRIPTION_SQL, workspace_id, connection_id, key)
    )


async def insert_subscription(
    conn: Conn, subscription_id: UUID, known: KnownConnection, key: str, token_hash: bytes,
    token_sealed: str, secret_sealed: str | None, revision: int,
) -> SubscriptionRecord:  # fmt: skip
    """Store the intent to subscribe before calling the app."""
    record = _subscription(
        await conn.fetchrow(
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
    )
    assert record is not None
    return record


async def set_subscription(
    conn: Conn, record: SubscriptionRecord, status: str, *, external_id: str | None = None,
    error: str | None = None, revision: int | None = None,
) -> SubscriptionRecord:  # fmt: skip
    """Move a subscription to ``status``."""
    updated = _subscription(
        await conn.fetchrow(
            SET_SUBSCRIPTION_SQL,
            record.workspace_id,
            record.id,
            status,
            external_id,
            error[:300] if error else None,
            revision,
        )
    )
    assert updated is not None
    return updated


async def list_subscriptions(
    conn: Conn, workspace_id: UUID, connection_id: UUID | None, customer_id: str | None
) -> list[SubscriptionRecord]:
    """Return subscriptions of the workspace (of one connection or customer when given)."""
    rows = await conn.fetch(LIST_SUBSCRIPTIONS_SQL, workspace_id, connection_id, customer_id)
    return [r for r in map(_subscription, rows) if r is not None]


async def live_subscription_keys(conn: Conn, workspace_id: UUID, connection_id: UUID) -> set[str]:
    """Return the app-event types a connection is subscribed to (or subscribing)."""
    return {
        r["app_event_type_key"]
        for r in await conn.fetch(LIVE_SUBSCRIPTION_KEYS_SQL, workspace_id, connection_id)
    }


async def subscription_by_token(conn: Conn, token_hash: bytes) -> SubscriptionRecord | None:
    """Return the subscription an inbound URL token belongs to."""
    return _subscription(await conn.fetchrow(SUBSCRIPTION_BY_TOKEN_SQL, token_hash))


async def record_delivery(conn: Conn, subscription_id: UUID, delivery_id: str) -> bool:
    """Remember an app's delivery id; False when it was seen before."""
    return await conn.fetchval(RECORD_DELIVERY_SQL, subscription_id, delivery_id) is not None


class DataSourceInstanceRecord(_Row):
    """A data-source instance row."""

    id: UUID
    workspace_id: UUID
    connection_id: UUID
    customer_id: str
    data_source_key: str
    status: str
    fields_schema: dict[str, Any] | None
    state: Any
    last_error: str | None
    revision: int
    updated_at: datetime

    def public(self) -> c.DataSourceInstance:
        """Return the instance as the API shows it."""
        return c.DataSourceInstance(
            id=self.id, connection_id=self.connection_id, customer_id=self.customer_id,
            data_source_key=self.data_source_key, status=self.status,
            fields_schema=self.fields_schema, state=self.state, last_error=self.last_error,
            updated_at=self.updated_at,
        )  # fmt: skip


_DSI_COLUMNS = """
id, workspace_id, connection_id, customer_id, data_source_key, status, fields_schema, state,
last_error, revision, updated_at
"""
UPSERT_DSI_SQL = f"""
INSERT INTO data_source_instances (id, workspace_id, connection_id, customer_id, data_source_key,
    status, fields_schema, state, last_error, revision)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (workspace_id, connection_id, data_source_key) DO UPDATE SET
    status = EXCLUDED.status,
    fields_schema = coalesce(EXCLUDED.fields_schema, data_source_instances.fields_schema),
    state = CASE WHEN EXCLUDED.state IS NULL THEN data_source_instances.state ELSE EXCLUDED.state END,
    last_error = EXCLUDED.last_error, revision = EXCLUDED.revision, updated_at = now()
RETURNING {_DSI_COLUMNS}
"""
LIST_DSI_SQL = f"""
SELECT {_DSI_COLUMNS} FROM data_source_instances
WHERE workspace_id = $1 AND ($2::uuid IS NULL OR connection_id = $2)
  AND ($3::text IS NULL OR customer_id = $3)
ORDER BY connection_id, data_source_key
"""
SELECT_DSI_SQL = (
    f"SELECT {_DSI_COLUMNS} FROM data_source_instances WHERE workspace_id = $1 AND id = $2"
)
ARCHIVE_DSI_SQL = """
UPDATE data_source_instances SET status = 'archived', updated_at = now()
WHERE workspace_id = $1 AND connection_id = $2
"""


async def upsert_data_source_instance(
    conn: Conn, values: dict[str, Any]
) -> DataSourceInstanceRecord:
    """Create or update a connection's instance of a data source."""
    row = await conn.fetchrow(
        UPSERT_DSI_SQL, values["id"], values["workspace_id"], values["connection_id"], values["customer_id"],
        values["data_source_key"], values["status"], values["fields_schema"], values["state"],
        values["last_error"], values["revision"],
    )  # fmt: skip
    assert row is not None
    return DataSourceInstanceRecord.model_validate(dict(row))


async def list_data_source_instances(
    conn: Conn, workspace_id: UUID, connection_id: UUID | None, customer_id: str | None
) -> list[DataSourceInstanceRecord]:
    """Return data-source instances (of one connection or customer when given)."""
    rows = await conn.fetch(LIST_DSI_SQL, workspace_id, connection_id, customer_id)
    return [DataSourceInstanceRecord.model_validate(dict(r)) for r in rows]


async def select_data_source_instance(
    conn: Conn, workspace_id: UUID, instance_id: UUID
) -> DataSourceInstanceRecord | None:
    """Return one data-source instance."""
    row = await conn.fetchrow(SELECT_DSI_SQL, workspace_id, instance_id)
    return DataSourceInstanceRecord.model_validate(dict(row)) if row else None


async def archive_data_source_instances(
    conn: Conn, workspace_id: UUID, connection_id: UUID
) -> None:
    """Archive every data-source instance of a connection."""
    await conn.execute(ARCHIVE_DSI_SQL, workspace_id, connection_id)
