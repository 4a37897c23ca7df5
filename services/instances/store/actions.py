"""Action definitions (with every revision) and action instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from libs.common.contracts import actions as c
from libs.common.db import Conn
from libs.common.errors import Conflict
from libs.common.rows import many, maybe, one
from services.instances.store._base import Row


class ActionRecord(Row):
    """An action row: its scope and its newest revision's definition."""

    workspace_id: UUID
    key: str
    level: c.Level
    integration_key: str | None
    customer_id: str | None
    definition: c.ActionDefinition
    revision: int
    created_at: datetime
    updated_at: datetime


class ActionInstanceRecord(Row):
    """An action instance row."""

    id: UUID
    workspace_id: UUID
    action_key: str
    connection_id: UUID
    customer_id: str
    integration_key: str
    base_revision: int
    customization: dict[str, Any]
    enabled: bool
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


def definition_json(definition: c.ActionDefinition) -> object:
    """Return a definition as stored: camelCase JSON without the parts left out."""
    return definition.model_dump(mode="json", exclude_none=True)


_ACTION_COLUMNS = (
    "workspace_id, key, level, integration_key, customer_id, definition, revision,"
    " created_at, updated_at"
)
INSERT_ACTION_SQL = f"""
WITH action AS (
    INSERT INTO actions (workspace_id, key, level, integration_key, customer_id, definition,
        auto_deploy)
    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_ACTION_COLUMNS}
), revision AS (
    INSERT INTO action_revisions (workspace_id, action_key, revision, definition)
    SELECT workspace_id, key, revision, definition FROM action
)
SELECT * FROM action
"""
# Optimistic locking: only the revision the editor read is replaced.
UPDATE_ACTION_SQL = f"""
WITH action AS (
    UPDATE actions SET definition = $4, auto_deploy = $5, revision = revision + 1,
        updated_at = now()
    WHERE workspace_id = $1 AND key = $2 AND revision = $3 RETURNING {_ACTION_COLUMNS}
), revision AS (
    INSERT INTO action_revisions (workspace_id, action_key, revision, definition)
    SELECT workspace_id, key, revision, definition FROM action
)
SELECT * FROM action
"""
SELECT_ACTION_SQL = f"SELECT {_ACTION_COLUMNS} FROM actions WHERE workspace_id = $1 AND key = $2"
LIST_ACTIONS_SQL = f"""
SELECT {_ACTION_COLUMNS} FROM actions
WHERE workspace_id = $1 AND ($2::text IS NULL OR level = $2)
  AND ($3::text IS NULL OR integration_key = $3) AND ($4::text IS NULL OR customer_id = $4)
  AND ($5::text IS NULL OR key > $5)
ORDER BY key LIMIT $6
"""
DELETE_ACTION_SQL = """
WITH gone AS (DELETE FROM actions WHERE workspace_id = $1 AND key = $2 RETURNING key),
revisions AS (
    DELETE FROM action_revisions WHERE workspace_id = $1 AND action_key IN (SELECT key FROM gone)
),
instances AS (
    DELETE FROM action_instances WHERE workspace_id = $1 AND action_key IN (SELECT key FROM gone)
    RETURNING id
)
SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT count(*) FROM instances) AS instances
"""
SELECT_REVISION_SQL = """
SELECT revision, definition, created_at FROM action_revisions
WHERE workspace_id = $1 AND action_key = $2 AND revision = $3
"""
SELECT_REVISIONS_SQL = """
SELECT revision, definition, created_at FROM action_revisions
WHERE workspace_id = $1 AND action_key = $2 ORDER BY revision DESC
"""
# The keys of the autoDeploy actions whose level fits a connection of this app and customer.
AUTO_DEPLOY_KEYS_SQL = """
SELECT key FROM actions
WHERE workspace_id = $1 AND auto_deploy
  AND (level = 'universal'
       OR (level = 'app' AND integration_key = $2)
       OR (level = 'customer' AND customer_id = $3
           AND (integration_key IS NULL OR integration_key = $2)))
ORDER BY key
"""

_INSTANCE_COLUMNS = """
id, workspace_id, action_key, connection_id, customer_id, integration_key, base_revision,
customization, enabled, archived_at, created_at, updated_at
"""
# Idempotent: an existing instance is kept as it is (an archived one comes back).
ENSURE_INSTANCE_SQL = f"""
INSERT INTO action_instances (id, workspace_id, action_key, connection_id, customer_id,
    integration_key, base_revision)
SELECT $1, $2, key, $4, $5, $6, revision FROM actions WHERE workspace_id = $2 AND key = $3
ON CONFLICT (workspace_id, connection_id, action_key) DO UPDATE
    SET archived_at = NULL, updated_at = now()
    WHERE action_instances.archived_at IS NOT NULL
RETURNING {_INSTANCE_COLUMNS}
"""
SELECT_INSTANCE_SQL = (
    f"SELECT {_INSTANCE_COLUMNS} FROM action_instances WHERE workspace_id = $1 AND id = $2"
)
SELECT_CONNECTION_INSTANCE_SQL = f"""
SELECT {_INSTANCE_COLUMNS} FROM action_instances
WHERE workspace_id = $1 AND connection_id = $2 AND action_key = $3
"""
LIST_INSTANCES_SQL = f"""
SELECT {_INSTANCE_COLUMNS} FROM action_instances
WHERE workspace_id = $1 AND ($2::uuid IS NULL OR connection_id = $2)
  AND ($3::text IS NULL OR action_key = $3) AND ($4::text IS NULL OR customer_id = $4)
  AND ($5::uuid IS NULL OR id > $5)
ORDER BY id LIMIT $6
"""
UPDATE_INSTANCE_SQL = f"""
UPDATE action_instances SET customization = $3, enabled = $4, base_revision = $5,
    updated_at = now()
WHERE workspace_id = $1 AND id = $2 RETURNING {_INSTANCE_COLUMNS}
"""
# What running an action on a connection needs, in one round trip: the action and the
# connection's instance of it (if any).
SELECT_ACTION_FOR_CONNECTION_SQL = f"""
SELECT row_to_json(a) AS action, row_to_json(i) AS instance
FROM (SELECT {_ACTION_COLUMNS} FROM actions WHERE workspace_id = $1 AND key = $2) a
LEFT JOIN (
    SELECT {_INSTANCE_COLUMNS} FROM action_instances
    WHERE workspace_id = $1 AND action_key = $2 AND connection_id = $3
) i ON true
"""
ARCHIVE_INSTANCES_SQL = """
UPDATE action_instances SET archived_at = now(), updated_at = now()
WHERE workspace_id = $1 AND connection_id = $2 AND archived_at IS NULL
"""


async def insert_action(
    conn: Conn,
    workspace_id: UUID,
    req: c.ActionCreateRequest,
    definition: c.ActionDefinition,
) -> ActionRecord:
    """Insert an action and its first revision; a taken key is a Conflict."""
    try:
        row = await conn.fetchrow(
            INSERT_ACTION_SQL,
            workspace_id,
            req.key,
            req.level,
            req.integration_key,
            req.customer_id,
            definition_json(definition),
            definition.auto_deploy,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"action {req.key} exists", code="element_exists") from exc
    return one(ActionRecord, row)


async def update_action(
    conn: Conn, record: ActionRecord, revision: int, definition: c.ActionDefinition
) -> ActionRecord | None:
    """Write the next revision if ``revision`` is still the current one (else None)."""
    row = await conn.fetchrow(
        UPDATE_ACTION_SQL,
        record.workspace_id,
        record.key,
        revision,
        definition_json(definition),
        definition.auto_deploy,
    )
    return maybe(ActionRecord, row)


async def select_action(conn: Conn, workspace_id: UUID, key: str) -> ActionRecord | None:
    """Return one action at its newest revision."""
    return maybe(ActionRecord, await conn.fetchrow(SELECT_ACTION_SQL, workspace_id, key))


async def list_actions(
    conn: Conn, workspace_id: UUID, req: c.ActionListRequest, after: str | None, limit: int
) -> list[ActionRecord]:
    """Return actions by key, after ``after``."""
    rows = await conn.fetch(
        LIST_ACTIONS_SQL,
        workspace_id,
        req.level,
        req.integration_key,
        req.customer_id,
        after,
        limit,
    )
    return many(ActionRecord, rows)


async def delete_action(conn: Conn, workspace_id: UUID, key: str) -> tuple[bool, int]:
    """Delete an action, its revisions and instances; return (deleted, instances deleted)."""
    row = await conn.fetchrow(DELETE_ACTION_SQL, workspace_id, key)
    assert row is not None
    return bool(row["deleted"]), int(row["instances"])


async def select_revision(
    conn: Conn, workspace_id: UUID, key: str, revision: int
) -> c.ActionRevision | None:
    """Return one revision of an action."""
    row = await conn.fetchrow(SELECT_REVISION_SQL, workspace_id, key, revision)
    return maybe(c.ActionRevision, row)


async def select_revisions(conn: Conn, workspace_id: UUID, key: str) -> list[c.ActionRevision]:
    """Return every revision of an action, newest first."""
    return many(c.ActionRevision, await conn.fetch(SELECT_REVISIONS_SQL, workspace_id, key))


async def auto_deploy_keys(
    conn: Conn, workspace_id: UUID, integration_key: str, customer_id: str
) -> list[str]:
    """Return the autoDeploy actions a connection of this app and customer should have."""
    rows = await conn.fetch(AUTO_DEPLOY_KEYS_SQL, workspace_id, integration_key, customer_id)
    return [str(r["key"]) for r in rows]


async def ensure_instance(
    conn: Conn,
    instance_id: UUID,
    workspace_id: UUID,
    action_key: str,
    *,
    connection_id: UUID,
    customer_id: str,
    integration_key: str,
) -> ActionInstanceRecord | None:
    """Create (or bring back) a connection's instance; None when it existed or the action did not."""
    row = await conn.fetchrow(
        ENSURE_INSTANCE_SQL,
        instance_id,
        workspace_id,
        action_key,
        connection_id,
        customer_id,
        integration_key,
    )
    return maybe(ActionInstanceRecord, row)


async def select_instance(
    conn: Conn, workspace_id: UUID, instance_id: UUID
) -> ActionInstanceRecord | None:
    """Return one action instance."""
    row = await conn.fetchrow(SELECT_INSTANCE_SQL, workspace_id, instance_id)
    return maybe(ActionInstanceRecord, row)


async def select_connection_instance(
    conn: Conn, workspace_id: UUID, connection_id: UUID, action_key: str
) -> ActionInstanceRecord | None:
    """Return a connection's instance of an action."""
    row = await conn.fetchrow(
        SELECT_CONNECTION_INSTANCE_SQL, workspace_id, connection_id, action_key
    )
    return maybe(ActionInstanceRecord, row)


async def list_instances(
    conn: Conn,
    workspace_id: UUID,
    *,
    connection_id: UUID | None,
    action_key: str | None,
    customer_id: str | None,
    after: UUID | None,
    limit: int,
) -> list[ActionInstanceRecord]:
    """Return action instances by id, after ``after``."""
    rows = await conn.fetch(
        LIST_INSTANCES_SQL, workspace_id, connection_id, action_key, customer_id, after, limit
    )
    return many(ActionInstanceRecord, rows)


async def update_instance(
    conn: Conn,
    record: ActionInstanceRecord,
    customization: dict[str, Any],
    enabled: bool,
    base_revision: int,
) -> ActionInstanceRecord:
    """Write an instance's customisation, switch and base revision."""
    row = await conn.fetchrow(
        UPDATE_INSTANCE_SQL,
        record.workspace_id,
        record.id,
        customization,
        enabled,
        base_revision,
    )
    return one(ActionInstanceRecord, row)


async def select_action_for_connection(
    conn: Conn, workspace_id: UUID, key: str, connection_id: UUID
) -> tuple[ActionRecord | None, ActionInstanceRecord | None]:
    """Return an action and the connection's instance of it (each None when absent)."""
    row = await conn.fetchrow(SELECT_ACTION_FOR_CONNECTION_SQL, workspace_id, key, connection_id)
    if row is None:
        return None, None
    return ActionRecord.model_validate(row["action"]), maybe(ActionInstanceRecord, row["instance"])


async def archive_instances(conn: Conn, workspace_id: UUID, connection_id: UUID) -> None:
    """Archive every action instance of a connection (it is gone)."""
    await conn.execute(ARCHIVE_INSTANCES_SQL, workspace_id, connection_id)
