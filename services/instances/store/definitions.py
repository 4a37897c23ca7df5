"""Element definitions: app-event types and data sources, each with its spec as a model."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from libs.common.contracts import instances as c
from libs.common.contracts.base import Contract
from libs.common.db import Conn
from libs.common.errors import Conflict
from libs.common.rows import many, maybe, one
from services.instances.store._base import Row


class AppEventTypeSpec(Contract):
    """What the ``spec`` column of an app-event type holds (camelCase JSON)."""

    subscribe: c.SubscribeSpec
    unsubscribe: c.UnsubscribeSpec | None = None
    lookup: c.LookupSpec | None = None
    signature: c.SignatureSpec | None = None
    events_path: str = "@"
    delivery_id_header: str | None = None
    record_event: c.RecordEventSpec | None = None


class DataSourceSpec(Contract):
    """What the ``spec`` column of a data source holds (camelCase JSON)."""

    fields: c.FieldsSpec | None = None
    initial_state: c.InitialStateSpec | None = None
    collection: c.CollectionSpec | None = None
    sync: c.SyncSpec | None = None


def spec_json(spec: Contract) -> object:
    """Return a spec as stored: camelCase JSON without the parts left out."""
    return spec.model_dump(mode="json", exclude_none=True)


class AppEventTypeRecord(Row):
    """An app-event type row; its properties are what the API shows of the spec."""

    workspace_id: UUID
    key: str
    integration_key: str
    name: str
    spec: AppEventTypeSpec
    static_secret_sealed: str | None
    revision: int
    created_at: datetime
    updated_at: datetime

    @property
    def subscribe(self) -> c.SubscribeSpec:
        """Return how to subscribe."""
        return self.spec.subscribe

    @property
    def unsubscribe(self) -> c.UnsubscribeSpec | None:
        """Return how to unsubscribe (None: nothing to call)."""
        return self.spec.unsubscribe

    @property
    def lookup(self) -> c.LookupSpec | None:
        """Return how to find a subscription made before a crash."""
        return self.spec.lookup

    @property
    def signature(self) -> c.SignatureSpec | None:
        """Return how inbound events are signed."""
        return self.spec.signature

    @property
    def events_path(self) -> str:
        """Return the JMESPath to a delivery's events."""
        return self.spec.events_path

    @property
    def delivery_id_header(self) -> str | None:
        """Return the header naming a delivery (for deduplication)."""
        return self.spec.delivery_id_header

    @property
    def record_event(self) -> c.RecordEventSpec | None:
        """Return how an event becomes a record change (None: it does not)."""
        return self.spec.record_event

    @property
    def static_secret_set(self) -> bool:
        """Tell whether a static signing secret is stored."""
        return self.static_secret_sealed is not None


class DataSourceRecord(Row):
    """A data source row; its properties are what the API shows of the spec."""

    workspace_id: UUID
    key: str
    integration_key: str
    name: str
    spec: DataSourceSpec
    revision: int
    created_at: datetime
    updated_at: datetime

    @property
    def fields(self) -> c.FieldsSpec | None:
        """Return how to fetch the field list."""
        return self.spec.fields

    @property
    def initial_state(self) -> c.InitialStateSpec | None:
        """Return how to fetch the initial state."""
        return self.spec.initial_state

    @property
    def collection(self) -> c.CollectionSpec | None:
        """Return how to call the app for records (None: no record access)."""
        return self.spec.collection

    @property
    def sync(self) -> c.SyncSpec | None:
        """Return how often and how to sync the records (None: never)."""
        return self.spec.sync


ElementTable = Literal["app_event_types", "data_sources"]
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
DELETE_ELEMENT_SQL = {
    "app_event_types": "DELETE FROM app_event_types WHERE workspace_id = $1 AND key = $2",
    "data_sources": "DELETE FROM data_sources WHERE workspace_id = $1 AND key = $2",
}


async def insert_app_event_type(
    conn: Conn,
    workspace_id: UUID,
    integration_key: str,
    key: str,
    *,
    name: str,
    spec: AppEventTypeSpec,
    secret: str | None,
) -> AppEventTypeRecord:
    """Insert an app-event type; a taken key is a Conflict."""
    try:
        row = await conn.fetchrow(
            INSERT_APP_EVENT_TYPE_SQL,
            workspace_id,
            key,
            integration_key,
            name,
            spec_json(spec),
            secret,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"app-event type {key} exists", code="element_exists") from exc
    return one(AppEventTypeRecord, row)


async def update_app_event_type(
    conn: Conn,
    record: AppEventTypeRecord,
    *,
    name: str,
    spec: AppEventTypeSpec,
    secret: str | None,
) -> AppEventTypeRecord:
    """Write an app-event type back with the next revision."""
    row = await conn.fetchrow(
        UPDATE_APP_EVENT_TYPE_SQL, record.workspace_id, record.key, name, spec_json(spec), secret
    )
    return one(AppEventTypeRecord, row)


async def select_app_event_type(
    conn: Conn, workspace_id: UUID, key: str, *, for_update: bool = False
) -> AppEventTypeRecord | None:
    """Return one app-event type (row-locked when ``for_update``)."""
    sql = SELECT_APP_EVENT_TYPE_SQL + " FOR UPDATE" if for_update else SELECT_APP_EVENT_TYPE_SQL
    return maybe(AppEventTypeRecord, await conn.fetchrow(sql, workspace_id, key))


async def list_app_event_types(
    conn: Conn, workspace_id: UUID, integration_key: str | None = None
) -> list[AppEventTypeRecord]:
    """Return the workspace's app-event types (of one integration when given)."""
    rows = await conn.fetch(LIST_APP_EVENT_TYPES_SQL, workspace_id, integration_key)
    return many(AppEventTypeRecord, rows)


async def insert_data_source(
    conn: Conn,
    workspace_id: UUID,
    integration_key: str,
    key: str,
    *,
    name: str,
    spec: DataSourceSpec,
) -> DataSourceRecord:
    """Insert a data source; a taken key is a Conflict."""
    try:
        row = await conn.fetchrow(
            INSERT_DATA_SOURCE_SQL, workspace_id, key, integration_key, name, spec_json(spec)
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"data source {key} exists", code="element_exists") from exc
    return one(DataSourceRecord, row)


async def update_data_source(
    conn: Conn, record: DataSourceRecord, *, name: str, spec: DataSourceSpec
) -> DataSourceRecord:
    """Write a data source back with the next revision."""
    row = await conn.fetchrow(
        UPDATE_DATA_SOURCE_SQL, record.workspace_id, record.key, name, spec_json(spec)
    )
    return one(DataSourceRecord, row)


async def select_data_source(
    conn: Conn, workspace_id: UUID, key: str, *, for_update: bool = False
) -> DataSourceRecord | None:
    """Return one data source (row-locked when ``for_update``)."""
    sql = SELECT_DATA_SOURCE_SQL + " FOR UPDATE" if for_update else SELECT_DATA_SOURCE_SQL
    return maybe(DataSourceRecord, await conn.fetchrow(sql, workspace_id, key))


async def list_data_sources(
    conn: Conn, workspace_id: UUID, integration_key: str | None = None
) -> list[DataSourceRecord]:
    """Return the workspace's data sources (of one integration when given)."""
    return many(
        DataSourceRecord, await conn.fetch(LIST_DATA_SOURCES_SQL, workspace_id, integration_key)
    )


async def delete_element(conn: Conn, table: ElementTable, workspace_id: UUID, key: str) -> bool:
    """Delete a definition; True when it existed."""
    return await conn.execute(DELETE_ELEMENT_SQL[table], workspace_id, key) == "DELETE 1"
