"""Data-source instances: a data source's field schema and state on one connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from libs.common.contracts import instances as c
from libs.common.db import Conn
from libs.common.rows import many, maybe, one
from services.instances.store._base import Row


class DataSourceInstanceWrite(Row):
    """What a deployment step writes of an instance (``None`` schema or state: keep the old)."""

    id: UUID
    workspace_id: UUID
    connection_id: UUID
    customer_id: str
    data_source_key: str
    status: c.DataSourceInstanceStatus
    fields_schema: dict[str, Any] | None
    state: Any
    last_error: str | None
    revision: int


class DataSourceInstanceRecord(DataSourceInstanceWrite):
    """A data-source instance row."""

    updated_at: datetime


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
    conn: Conn, values: DataSourceInstanceWrite
) -> DataSourceInstanceRecord:
    """Create or update a connection's instance of a data source."""
    row = await conn.fetchrow(
        UPSERT_DSI_SQL,
        values.id,
        values.workspace_id,
        values.connection_id,
        values.customer_id,
        values.data_source_key,
        values.status,
        values.fields_schema,
        values.state,
        values.last_error,
        values.revision,
    )
    return one(DataSourceInstanceRecord, row)


async def list_data_source_instances(
    conn: Conn, workspace_id: UUID, connection_id: UUID | None, customer_id: str | None
) -> list[DataSourceInstanceRecord]:
    """Return data-source instances (of one connection or customer when given)."""
    rows = await conn.fetch(LIST_DSI_SQL, workspace_id, connection_id, customer_id)
    return many(DataSourceInstanceRecord, rows)


async def select_data_source_instance(
    conn: Conn, workspace_id: UUID, instance_id: UUID
) -> DataSourceInstanceRecord | None:
    """Return one data-source instance."""
    row = await conn.fetchrow(SELECT_DSI_SQL, workspace_id, instance_id)
    return maybe(DataSourceInstanceRecord, row)


async def archive_data_source_instances(
    conn: Conn, workspace_id: UUID, connection_id: UUID
) -> None:
    """Archive every data-source instance of a connection."""
    await conn.execute(ARCHIVE_DSI_SQL, workspace_id, connection_id)
