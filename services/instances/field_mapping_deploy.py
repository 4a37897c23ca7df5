"""Build field-mapping instances on connections, and keep them on their field schema.

* :func:`ensure` is the ``field_mapping`` deployment step (one per autoDeploy mapping whose
  level and data source fit the connection; idempotent): the connection's instance, built
  on its data-source instance's current ``fieldsSchema``.
* :func:`follow` runs in the transaction that writes a data-source instance's schema (a
  deployment's ``data_source`` step, or ``refresh-schema``): every instance built on it
  takes the new schema; a customised one whose mapped external field is gone is *broken*,
  with the field named (``problems``), until a customisation or a reset fixes it.

Both hold one transaction-scoped lock per (connection, data source), so a step that builds
an instance while the schema is being written either sees the new schema or is followed.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import asyncpg

from libs.common.db import Conn
from services.instances import field_mapping_customization as custom
from services.instances.lifecycle import StepFailure
from services.instances.store import field_mappings as store
from services.instances.store.connections import KnownConnection
from services.instances.store.data_source_instances import DataSourceInstanceRecord
from services.instances.store.field_mappings import FieldMappingRecord


def fits(mapping: FieldMappingRecord, known: KnownConnection) -> bool:
    """Tell whether a field mapping of this level may be used on this connection."""
    if mapping.level == "app":
        return mapping.integration_key == known.integration_key
    if mapping.level == "customer":
        return mapping.customer_id == known.customer_id and mapping.integration_key in (
            None,
            known.integration_key,
        )
    return True


async def ensure(pool: asyncpg.Pool[asyncpg.Record], known: KnownConnection, key: str) -> None:
    """Give a connection its instance of a field mapping (a deployment step; idempotent)."""
    async with pool.acquire() as conn, conn.transaction():
        mapping = await store.select_mapping(conn, known.workspace_id, key)
        if mapping is None:
            raise StepFailure(f"field mapping {key} no longer exists", transient=False)
        if not fits(mapping, known):
            raise StepFailure(f"field mapping {key} no longer fits the connection", transient=False)
        source = mapping.data_source_key
        await store.lock_source(conn, known.workspace_id, known.id, source)
        found = await store.select_source_schema(conn, known.workspace_id, known.id, source)
        if found is not None and found[0] == "failed" and found[1] is None:
            raise StepFailure(f"data source {source} has no field schema", transient=False)
        schema = found[1] if found is not None else None  # None: followed once it is fetched
        record = await store.ensure_instance(
            conn,
            uuid4(),
            known.workspace_id,
            key,
            connection_id=known.id,
            customer_id=known.customer_id,
            integration_key=known.integration_key,
            fields_schema=schema,
        )
        if record is not None:
            await store.follow_schema(
                conn, record, schema, custom.broken(record.customization, schema)
            )


async def follow(conn: Conn, source: DataSourceInstanceRecord) -> None:
    """Move the instances built on ``source`` to its schema (in the caller's transaction)."""
    await store.lock_source(conn, source.workspace_id, source.connection_id, source.data_source_key)
    schema: dict[str, Any] | None = source.fields_schema
    for record in await store.source_instances(
        conn, source.workspace_id, source.connection_id, source.data_source_key
    ):
        await store.follow_schema(conn, record, schema, custom.broken(record.customization, schema))
