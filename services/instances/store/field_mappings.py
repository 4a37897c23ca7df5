"""Field-mapping definitions (with every revision) and field-mapping instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from libs.common.contracts import field_mappings as c
from libs.common.contracts.actions import Level
from libs.common.db import Conn
from libs.common.errors import Conflict
from libs.common.rows import many, maybe, one
from services.instances.store._base import Row


class FieldMappingRecord(Row):
    """A field-mapping row: its scope and its newest revision's definition."""

    workspace_id: UUID
    key: str
    level: Level
    integration_key: str | None
    customer_id: str | None
    data_source_key: str
    definition: c.FieldMappingDefinition
    revision: int
    created_at: datetime
    updated_at: datetime


class FieldMappingInstanceRecord(Row):
    """A field-mapping instance row."""

    id: UUID
    workspace_id: UUID
    field_mapping_key: str
    data_source_key: str
    connection_id: UUID
    customer_id: str
    integration_key: str
    base_revision: int
    customization: dict[str, Any]
    fields_schema: dict[str, Any] | None
    problems: list[c.FieldMappingProblem]
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


def definition_json(definition: c.FieldMappingDefinition) -> object:
    """Return a definition as stored: camelCase JSON."""
    return definition.model_dump(mode="json")


def problems_json(problems: list[c.FieldMappingProblem]) -> object:
    """Return problems as stored: camelCase JSON."""
    return [p.model_dump(mode="json") for p in problems]


_MAPPING_COLUMNS = (
    "workspace_id, key, level, integration_key, customer_id, data_source_key, definition,"
    " revision, created_at, updated_at"
)
INSERT_MAPPING_SQL = f"""
WITH mapping AS (
    INSERT INTO field_mappings (workspace_id, key, level, integration_key, customer_id,
        data_source_key, definition, auto_deploy)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_MAPPING_COLUMNS}
), revision AS (
    INSERT INTO field_mapping_revisions (workspace_id, field_mapping_key, revision, definition)
    SELECT workspace_id, key, revision, definition FROM mapping
)
SELECT * FROM mapping
"""
# Optimistic locking: only the revision the editor read is replaced.
UPDATE_MAPPING_SQL = f"""
WITH mapping AS (
    UPDATE field_mappings SET definition = $4, auto_deploy = $5, revision = revision + 1,
        updated_at = now()
    WHERE workspace_id = $1 AND key = $2 AND revision = $3 RETURNING {_MAPPING_COLUMNS}
), revision AS (
    INSERT INTO field_mapping_revisions (workspace_id, field_mapping_key, revision, definition)
    SELECT workspace_id, key, revision, definition FROM mapping
)
SELECT * FROM mapping
"""
SELECT_MAPPING_SQL = (
    f"SELECT {_MAPPING_COLUMNS} FROM field_mappings WHERE workspace_id = $1 AND key = $2"
)
LIST_MAPPINGS_SQL = f"""
SELECT {_MAPPING_COLUMNS} FROM field_mappings
WHERE workspace_id = $1 AND ($2::text IS NULL OR level = $2)
  AND ($3::text IS NULL OR integration_key = $3) AND ($4::text IS NULL OR customer_id = $4)
  AND ($5::text IS NULL OR data_source_key = $5) AND ($6::text IS NULL OR key > $6)
ORDER BY key LIMIT $7
"""
DELETE_MAPPING_SQL = """
WITH gone AS (DELETE FROM field_mappings WHERE workspace_id = $1 AND key = $2 RETURNING key),
revisions AS (
    DELETE FROM field_mapping_revisions
    WHERE workspace_id = $1 AND field_mapping_key IN (SELECT key FROM gone)
),
instances AS (
    DELETE FROM field_mapping_instances
    WHERE workspace_id = $1 AND field_mapping_key IN (SELECT key FROM gone)
    RETURNING id
)
SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT count(*) FROM instances) AS instances
"""
SELECT_REVISION_SQL = """
SELECT revision, definition, created_at FROM field_mapping_revisions
WHERE workspace_id = $1 AND field_mapping_key = $2 AND revision = $3
"""
SELECT_REVISIONS_SQL = """
SELECT revision, definition, created_at FROM field_mapping_revisions
WHERE workspace_id = $1 AND field_mapping_key = $2 ORDER BY revision DESC
"""
# The autoDeploy mappings whose level fits a connection of this app and customer, and whose
# data source is one of this app's.
AUTO_DEPLOY_KEYS_SQL = """
SELECT m.key FROM field_mappings m
JOIN data_sources d ON d.workspace_id = m.workspace_id AND d.key = m.data_source_key
WHERE m.workspace_id = $1 AND m.auto_deploy AND d.integration_key = $2
  AND (m.level = 'universal'
       OR (m.level = 'app' AND m.integration_key = $2)
       OR (m.level = 'customer' AND m.customer_id = $3
           AND (m.integration_key IS NULL OR m.integration_key = $2)))
ORDER BY m.key
"""

_INSTANCE_COLUMNS = """
id, workspace_id, field_mapping_key, data_source_key, connection_id, customer_id,
integration_key, base_revision, customization, fields_schema, problems, archived_at,
created_at, updated_at
"""
# Idempotent: an existing instance keeps its customisation and base revision; it is brought
# back if archived and takes the schema (and problems) it is given.
ENSURE_INSTANCE_SQL = f"""
INSERT INTO field_mapping_instances (id, workspace_id, field_mapping_key, data_source_key,
    connection_id, customer_id, integration_key, base_revision, fields_schema)
SELECT $1, $2, key, data_source_key, $4, $5, $6, revision, $7
FROM field_mappings WHERE workspace_id = $2 AND key = $3
ON CONFLICT (workspace_id, connection_id, field_mapping_key) DO UPDATE
    SET archived_at = NULL, fields_schema = EXCLUDED.fields_schema, updated_at = now()
RETURNING {_INSTANCE_COLUMNS}
"""
SELECT_INSTANCE_SQL = f"""
SELECT {_INSTANCE_COLUMNS} FROM field_mapping_instances WHERE workspace_id = $1 AND id = $2
"""
SELECT_CONNECTION_INSTANCE_SQL = f"""
SELECT {_INSTANCE_COLUMNS} FROM field_mapping_instances
WHERE workspace_id = $1 AND connection_id = $2 AND field_mapping_key = $3
"""
SOURCE_INSTANCES_SQL = f"""
SELECT {_INSTANCE_COLUMNS} FROM field_mapping_instances
WHERE workspace_id = $1 AND connection_id = $2 AND data_source_key = $3 AND archived_at IS NULL
ORDER BY id FOR UPDATE
"""
LIST_INSTANCES_SQL = f"""
SELECT {_INSTANCE_COLUMNS} FROM field_mapping_instances
WHERE workspace_id = $1 AND ($2::uuid IS NULL OR connection_id = $2)
  AND ($3::text IS NULL OR field_mapping_key = $3) AND ($4::text IS NULL OR customer_id = $4)
  AND ($5::uuid IS NULL OR id > $5)
ORDER BY id LIMIT $6
"""
UPDATE_INSTANCE_SQL = f"""
UPDATE field_mapping_instances SET customization = $3, base_revision = $4, problems = $5,
    updated_at = now()
WHERE workspace_id = $1 AND id = $2 RETURNING {_INSTANCE_COLUMNS}
"""
FOLLOW_SCHEMA_SQL = """
UPDATE field_mapping_instances SET fields_schema = $3, problems = $4, updated_at = now()
WHERE workspace_id = $1 AND id = $2
"""
ARCHIVE_INSTANCES_SQL = """
UPDATE field_mapping_instances SET archived_at = now(), updated_at = now()
WHERE workspace_id = $1 AND connection_id = $2 AND archived_at IS NULL
"""
# Building an instance and following a schema change both hold this lock (per connection and
# data source) for their transaction, so neither misses the other's write.
LOCK_SOURCE_SQL = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
SELECT_SOURCE_SCHEMA_SQL = """
SELECT status, fields_schema FROM data_source_instances
WHERE workspace_id = $1 AND connection_id = $2 AND data_source_key = $3
"""


async def insert_mapping(
    conn: Conn,
    workspace_id: UUID,
    req: c.FieldMappingCreateRequest,
    definition: c.FieldMappingDefinition,
) -> FieldMappingRecord:
    """Insert a field mapping and its first revision; a taken key is a Conflict."""
    try:
        row = await conn.fetchrow(
            INSERT_MAPPING_SQL,
            workspace_id,
            req.key,
            req.level,
            req.integration_key,
            req.customer_id,
            req.data_source_key,
            definition_json(definition),
            definition.auto_deploy,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"field mapping {req.key} exists", code="element_exists") from exc
    return one(FieldMappingRecord, row)


async def update_mapping(
    conn: Conn, record: FieldMappingRecord, revision: int, definition: c.FieldMappingDefinition
) -> FieldMappingRecord | None:
    """Write the next revision if ``revision`` is still the current one (else None)."""
    row = await conn.fetchrow(
        UPDATE_MAPPING_SQL,
        record.workspace_id,
        record.key,
        revision,
        definition_json(definition),
        definition.auto_deploy,
    )
    return maybe(FieldMappingRecord, row)


async def select_mapping(conn: Conn, workspace_id: UUID, key: str) -> FieldMappingRecord | None:
    """Return one field mapping at its newest revision."""
    return maybe(FieldMappingRecord, await conn.fetchrow(SELECT_MAPPING_SQL, workspace_id, key))


async def list_mappings(
    conn: Conn,
    workspace_id: UUID,
    req: c.FieldMappingListRequest,
    after: str | None,
    limit: int,
) -> list[FieldMappingRecord]:
    """Return field mappings by key, after ``after``."""
    rows = await conn.fetch(
        LIST_MAPPINGS_SQL,
        workspace_id,
        req.level,
        req.integration_key,
        req.customer_id,
        req.data_source_key,
        after,
        limit,
    )
    return many(FieldMappingRecord, rows)


async def delete_mapping(conn: Conn, workspace_id: UUID, key: str) -> tuple[bool, int]:
    """Delete a field mapping, its revisions and instances; return (deleted, instances)."""
    row = await conn.fetchrow(DELETE_MAPPING_SQL, workspace_id, key)
    assert row is not None
    return bool(row["deleted"]), int(row["instances"])


async def select_revision(
    conn: Conn, workspace_id: UUID, key: str, revision: int
) -> c.FieldMappingRevision | None:
    """Return one revision of a field mapping."""
    row = await conn.fetchrow(SELECT_REVISION_SQL, workspace_id, key, revision)
    return maybe(c.FieldMappingRevision, row)


async def select_revisions(
    conn: Conn, workspace_id: UUID, key: str
) -> list[c.FieldMappingRevision]:
    """Return every revision of a field mapping, newest first."""
    return many(c.FieldMappingRevision, await conn.fetch(SELECT_REVISIONS_SQL, workspace_id, key))


async def auto_deploy_keys(
    conn: Conn, workspace_id: UUID, integration_key: str, customer_id: str
) -> list[str]:
    """Return the autoDeploy field mappings a connection of this app and customer should have."""
    rows = await conn.fetch(AUTO_DEPLOY_KEYS_SQL, workspace_id, integration_key, customer_id)
    return [str(r["key"]) for r in rows]


async def lock_source(conn: Conn, workspace_id: UUID, connection_id: UUID, source: str) -> None:
    """Hold the (connection, data source) lock until the caller's transaction ends."""
    await conn.execute(LOCK_SOURCE_SQL, f"field-mappings:{workspace_id}:{connection_id}:{source}")


async def select_source_schema(
    conn: Conn, workspace_id: UUID, connection_id: UUID, source: str
) -> tuple[str, dict[str, Any] | None] | None:
    """Return (status, fieldsSchema) of a connection's data-source instance, or None."""
    row = await conn.fetchrow(SELECT_SOURCE_SCHEMA_SQL, workspace_id, connection_id, source)
    if row is None:
        return None
    return str(row["status"]), row["fields_schema"]


async def ensure_instance(
    conn: Conn,
    instance_id: UUID,
    workspace_id: UUID,
    key: str,
    *,
    connection_id: UUID,
    customer_id: str,
    integration_key: str,
    fields_schema: dict[str, Any] | None,
) -> FieldMappingInstanceRecord | None:
    """Create (or bring back) a connection's instance on ``fields_schema``; None without mapping."""
    row = await conn.fetchrow(
        ENSURE_INSTANCE_SQL,
        instance_id,
        workspace_id,
        key,
        connection_id,
        customer_id,
        integration_key,
        fields_schema,
    )
    return maybe(FieldMappingInstanceRecord, row)


async def select_instance(
    conn: Conn, workspace_id: UUID, instance_id: UUID
) -> FieldMappingInstanceRecord | None:
    """Return one field-mapping instance."""
    row = await conn.fetchrow(SELECT_INSTANCE_SQL, workspace_id, instance_id)
    return maybe(FieldMappingInstanceRecord, row)


async def select_connection_instance(
    conn: Conn, workspace_id: UUID, connection_id: UUID, key: str
) -> FieldMappingInstanceRecord | None:
    """Return a connection's instance of a field mapping."""
    row = await conn.fetchrow(SELECT_CONNECTION_INSTANCE_SQL, workspace_id, connection_id, key)
    return maybe(FieldMappingInstanceRecord, row)


async def source_instances(
    conn: Conn, workspace_id: UUID, connection_id: UUID, source: str
) -> list[FieldMappingInstanceRecord]:
    """Return (and lock) the live instances built on a connection's data source."""
    rows = await conn.fetch(SOURCE_INSTANCES_SQL, workspace_id, connection_id, source)
    return many(FieldMappingInstanceRecord, rows)


async def list_instances(
    conn: Conn,
    workspace_id: UUID,
    *,
    connection_id: UUID | None,
    key: str | None,
    customer_id: str | None,
    after: UUID | None,
    limit: int,
) -> list[FieldMappingInstanceRecord]:
    """Return field-mapping instances by id, after ``after``."""
    rows = await conn.fetch(
        LIST_INSTANCES_SQL, workspace_id, connection_id, key, customer_id, after, limit
    )
    return many(FieldMappingInstanceRecord, rows)


async def update_instance(
    conn: Conn,
    record: FieldMappingInstanceRecord,
    customization: dict[str, Any],
    base_revision: int,
    problems: list[c.FieldMappingProblem],
) -> FieldMappingInstanceRecord:
    """Write an instance's customisation, base revision and problems."""
    row = await conn.fetchrow(
        UPDATE_INSTANCE_SQL,
        record.workspace_id,
        record.id,
        customization,
        base_revision,
        problems_json(problems),
    )
    return one(FieldMappingInstanceRecord, row)


async def follow_schema(
    conn: Conn,
    record: FieldMappingInstanceRecord,
    fields_schema: dict[str, Any] | None,
    problems: list[c.FieldMappingProblem],
) -> None:
    """Write the schema an instance is built on now, and what broke."""
    await conn.execute(
        FOLLOW_SCHEMA_SQL, record.workspace_id, record.id, fields_schema, problems_json(problems)
    )


async def archive_instances(conn: Conn, workspace_id: UUID, connection_id: UUID) -> None:
    """Archive every field-mapping instance of a connection (it is gone)."""
    await conn.execute(ARCHIVE_INSTANCES_SQL, workspace_id, connection_id)
