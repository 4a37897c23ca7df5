"""Flows' SQL: flows, their revisions, flow instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from libs.common.contracts import flows as c
from libs.common.db import Conn
from libs.common.errors import Conflict
from libs.common.rows import many, maybe, one


class FlowRecord(BaseModel):
    """A flow row; read as a :class:`c.Flow` reply through its attributes."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    workspace_id: UUID
    key: str
    level: c.Level
    integration_key: str | None
    customer_id: str | None
    definition: c.FlowDefinition
    revision: int
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime

    # What the reply shows of the definition, flat beside the row's own columns.
    @property
    def name(self) -> str:
        """Return the flow's name."""
        return self.definition.name

    @property
    def trigger(self) -> c.Trigger:
        """Return what starts the flow."""
        return self.definition.trigger

    @property
    def nodes(self) -> dict[str, c.Node]:
        """Return the flow's nodes."""
        return self.definition.nodes

    @property
    def parameters(self) -> dict[str, Any] | None:
        """Return the JSON Schema of the flow's customer-set values."""
        return self.definition.parameters

    @property
    def auto_deploy(self) -> bool:
        """Tell whether the flow is deployed to every fitting connection."""
        return self.definition.auto_deploy

    @property
    def archived(self) -> bool:
        """Tell whether the flow is archived."""
        return self.archived_at is not None


_FLOW_COLUMNS = """
id, workspace_id, key, level, integration_key, customer_id, definition, revision, archived_at,
created_at, updated_at
"""
INSERT_FLOW_SQL = f"""
INSERT INTO flows (id, workspace_id, key, level, integration_key, customer_id, definition, auto_deploy)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_FLOW_COLUMNS}
"""
INSERT_REVISION_SQL = """
INSERT INTO flow_revisions (flow_id, workspace_id, revision, definition) VALUES ($1, $2, $3, $4)
"""
SELECT_FLOW_SQL = f"SELECT {_FLOW_COLUMNS} FROM flows WHERE workspace_id = $1 AND id = $2"
# The revision check is the optimistic lock: of two writers holding revision n, one wins.
UPDATE_FLOW_SQL = f"""
UPDATE flows SET definition = $4, auto_deploy = $5, revision = revision + 1, updated_at = now()
WHERE workspace_id = $1 AND id = $2 AND revision = $3 AND archived_at IS NULL
RETURNING {_FLOW_COLUMNS}
"""
LIST_FLOWS_SQL = f"""
SELECT {_FLOW_COLUMNS} FROM flows
WHERE workspace_id = $1
  AND ($2::text IS NULL OR level = $2)
  AND ($3::text IS NULL OR integration_key = $3)
  AND ($4::text IS NULL OR customer_id = $4)
  AND ($5 OR archived_at IS NULL)
  AND ($6::uuid IS NULL OR id > $6)
ORDER BY id LIMIT $7
"""
SELECT_REVISIONS_SQL = """
SELECT revision, definition, created_at FROM flow_revisions
WHERE workspace_id = $1 AND flow_id = $2 ORDER BY revision DESC
"""
SELECT_REVISION_SQL = """
SELECT revision, definition, created_at FROM flow_revisions
WHERE workspace_id = $1 AND flow_id = $2 AND revision = $3
"""
COUNT_INSTANCES_SQL = "SELECT count(*) FROM flow_instances WHERE workspace_id = $1 AND flow_id = $2"
ARCHIVE_FLOW_SQL = f"""
UPDATE flows SET archived_at = now(), updated_at = now() WHERE workspace_id = $1 AND id = $2
RETURNING {_FLOW_COLUMNS}
"""
DELETE_FLOW_SQL = """
WITH gone AS (DELETE FROM flow_revisions WHERE workspace_id = $1 AND flow_id = $2)
DELETE FROM flows WHERE workspace_id = $1 AND id = $2
"""


async def insert_flow(
    conn: Conn,
    *,
    id: UUID,
    workspace_id: UUID,
    key: str,
    level: c.Level,
    integration_key: str | None,
    customer_id: str | None,
    definition: c.FlowDefinition,
) -> FlowRecord:
    """Insert a flow and its first revision; a taken key is a Conflict."""
    body = definition.model_dump(mode="json")
    try:
        row = await conn.fetchrow(
            INSERT_FLOW_SQL,
            id,
            workspace_id,
            key,
            level,
            integration_key,
            customer_id,
            body,
            definition.auto_deploy,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a flow with key {key} exists", code="flow_exists") from exc
    record = one(FlowRecord, row)
    await conn.execute(INSERT_REVISION_SQL, record.id, record.workspace_id, 1, body)
    return record


async def select_flow(conn: Conn, workspace_id: UUID, flow_id: UUID) -> FlowRecord | None:
    """Return one flow."""
    return maybe(FlowRecord, await conn.fetchrow(SELECT_FLOW_SQL, workspace_id, flow_id))


async def select_existing_flow(conn: Conn, workspace_id: UUID, flow_id: UUID) -> FlowRecord:
    """Return a flow that must exist (one an instance points to)."""
    return one(FlowRecord, await conn.fetchrow(SELECT_FLOW_SQL, workspace_id, flow_id))


async def update_flow(
    conn: Conn, workspace_id: UUID, flow_id: UUID, revision: int, definition: c.FlowDefinition
) -> FlowRecord | None:
    """Write the next revision if ``revision`` is still current; None when it is not."""
    body = definition.model_dump(mode="json")
    row = await conn.fetchrow(
        UPDATE_FLOW_SQL, workspace_id, flow_id, revision, body, definition.auto_deploy
    )
    record = maybe(FlowRecord, row)
    if record is not None:
        await conn.execute(INSERT_REVISION_SQL, record.id, workspace_id, record.revision, body)
    return record


async def list_flows(
    conn: Conn,
    workspace_id: UUID,
    *,
    level: c.Level | None,
    integration_key: str | None,
    customer_id: str | None,
    include_archived: bool,
    after: UUID | None,
    limit: int,
) -> list[FlowRecord]:
    """Return a page of flows by id."""
    rows = await conn.fetch(
        LIST_FLOWS_SQL,
        workspace_id,
        level,
        integration_key,
        customer_id,
        include_archived,
        after,
        limit,
    )
    return many(FlowRecord, rows)


async def select_revisions(conn: Conn, workspace_id: UUID, flow_id: UUID) -> list[c.FlowRevision]:
    """Return a flow's revisions, newest first."""
    return many(c.FlowRevision, await conn.fetch(SELECT_REVISIONS_SQL, workspace_id, flow_id))


async def select_revision(
    conn: Conn, workspace_id: UUID, flow_id: UUID, n: int
) -> c.FlowRevision | None:
    """Return revision ``n`` of a flow."""
    return maybe(c.FlowRevision, await conn.fetchrow(SELECT_REVISION_SQL, workspace_id, flow_id, n))


async def select_existing_revision(
    conn: Conn, workspace_id: UUID, flow_id: UUID, n: int
) -> c.FlowRevision:
    """Return revision ``n`` of a flow, which must exist (one an instance is based on)."""
    return one(c.FlowRevision, await conn.fetchrow(SELECT_REVISION_SQL, workspace_id, flow_id, n))


async def remove_flow(
    conn: Conn, workspace_id: UUID, flow_id: UUID
) -> tuple[bool, FlowRecord | None]:
    """Delete a flow without instances; archive one that has some. Return (deleted, archived row)."""
    if await conn.fetchval(COUNT_INSTANCES_SQL, workspace_id, flow_id):
        return False, maybe(
            FlowRecord, await conn.fetchrow(ARCHIVE_FLOW_SQL, workspace_id, flow_id)
        )
    await conn.execute(DELETE_FLOW_SQL, workspace_id, flow_id)
    return True, None


# --- flow instances ---------------------------------------------------------------------


class InstanceRecord(BaseModel):
    """A flow instance row."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    workspace_id: UUID
    flow_id: UUID
    connection_id: UUID
    customer_id: str
    integration_key: str
    base_revision: int
    customization: dict[str, Any]
    enabled: bool
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


_INSTANCE_COLUMNS = """
id, workspace_id, flow_id, connection_id, customer_id, integration_key, base_revision,
customization, enabled, archived_at, created_at, updated_at
"""
INSERT_INSTANCE_SQL = f"""
INSERT INTO flow_instances (id, workspace_id, flow_id, connection_id, customer_id, integration_key,
    base_revision)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (workspace_id, flow_id, connection_id) DO NOTHING
RETURNING {_INSTANCE_COLUMNS}
"""
SELECT_INSTANCE_SQL = (
    f"SELECT {_INSTANCE_COLUMNS} FROM flow_instances WHERE workspace_id = $1 AND id = $2"
)
UPDATE_INSTANCE_SQL = f"""
UPDATE flow_instances SET customization = $3, enabled = $4, base_revision = $5, updated_at = now()
WHERE workspace_id = $1 AND id = $2 RETURNING {_INSTANCE_COLUMNS}
"""
LIST_INSTANCES_SQL = f"""
SELECT {_INSTANCE_COLUMNS} FROM flow_instances
WHERE workspace_id = $1
  AND ($2::text IS NULL OR customer_id = $2)
  AND ($3::uuid IS NULL OR connection_id = $3)
  AND ($4::uuid IS NULL OR flow_id = $4)
  AND archived_at IS NULL
  AND ($5::uuid IS NULL OR id > $5)
ORDER BY id LIMIT $6
"""
AUTO_FLOWS_SQL = f"""
SELECT {_FLOW_COLUMNS} FROM flows
WHERE workspace_id = $1 AND auto_deploy AND archived_at IS NULL
  AND (level = 'universal'
       OR (level = 'app' AND integration_key = $2)
       OR (level = 'customer' AND customer_id = $3 AND (integration_key IS NULL OR integration_key = $2)))
"""
ARCHIVE_INSTANCES_SQL = f"""
UPDATE flow_instances SET archived_at = now(), updated_at = now()
WHERE workspace_id = $1 AND connection_id = $2 AND archived_at IS NULL
RETURNING {_INSTANCE_COLUMNS}
"""
COUNT_CONNECTION_INSTANCES_SQL = """
SELECT count(*) FROM flow_instances WHERE workspace_id = $1 AND connection_id = $2 AND archived_at IS NULL
"""
SELECT_FLOWS_SQL = (
    f"SELECT {_FLOW_COLUMNS} FROM flows WHERE workspace_id = $1 AND id = ANY($2::uuid[])"
)


async def insert_instance(
    conn: Conn,
    *,
    id: UUID,
    flow: FlowRecord,
    connection_id: UUID,
    customer_id: str,
    integration_key: str,
) -> InstanceRecord | None:
    """Create an instance of a flow's newest revision, unless the connection has one (None)."""
    row = await conn.fetchrow(
        INSERT_INSTANCE_SQL,
        id,
        flow.workspace_id,
        flow.id,
        connection_id,
        customer_id,
        integration_key,
        flow.revision,
    )
    return maybe(InstanceRecord, row)


async def select_instance(
    conn: Conn, workspace_id: UUID, instance_id: UUID
) -> InstanceRecord | None:
    """Return one flow instance."""
    return maybe(
        InstanceRecord, await conn.fetchrow(SELECT_INSTANCE_SQL, workspace_id, instance_id)
    )


async def update_instance(
    conn: Conn,
    record: InstanceRecord,
    customization: dict[str, Any],
    enabled: bool,
    base_revision: int,
) -> InstanceRecord:
    """Write an instance's customisation, switch and base revision."""
    row = await conn.fetchrow(
        UPDATE_INSTANCE_SQL, record.workspace_id, record.id, customization, enabled, base_revision
    )
    return one(InstanceRecord, row)


async def list_instances(
    conn: Conn,
    workspace_id: UUID,
    *,
    customer_id: str | None,
    connection_id: UUID | None,
    flow_id: UUID | None,
    after: UUID | None,
    limit: int,
) -> list[InstanceRecord]:
    """Return a page of live flow instances by id."""
    rows = await conn.fetch(
        LIST_INSTANCES_SQL, workspace_id, customer_id, connection_id, flow_id, after, limit
    )
    return many(InstanceRecord, rows)


async def auto_flows(
    conn: Conn, workspace_id: UUID, integration_key: str, customer_id: str
) -> list[FlowRecord]:
    """Return the autoDeploy flows a connection of this customer and integration should run."""
    return many(
        FlowRecord, await conn.fetch(AUTO_FLOWS_SQL, workspace_id, integration_key, customer_id)
    )


async def archive_instances(
    conn: Conn, workspace_id: UUID, connection_id: UUID
) -> list[InstanceRecord]:
    """Archive a connection's flow instances; return those archived now."""
    return many(
        InstanceRecord, await conn.fetch(ARCHIVE_INSTANCES_SQL, workspace_id, connection_id)
    )


async def count_connection_instances(conn: Conn, workspace_id: UUID, connection_id: UUID) -> int:
    """Count a connection's live flow instances."""
    return int(await conn.fetchval(COUNT_CONNECTION_INSTANCES_SQL, workspace_id, connection_id))


async def select_flows(conn: Conn, workspace_id: UUID, ids: list[UUID]) -> dict[UUID, FlowRecord]:
    """Return flows by id (one query for a page of instances)."""
    rows = await conn.fetch(SELECT_FLOWS_SQL, workspace_id, ids)
    return {r.id: r for r in many(FlowRecord, rows)}
