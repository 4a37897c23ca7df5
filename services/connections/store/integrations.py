"""Integrations: the apps a workspace connects to, with their sealed client secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from libs.common.contracts import connections as c
from libs.common.db import Conn
from libs.common.errors import Conflict
from libs.common.rows import many, maybe, one
from services.connections.store._base import Row


class IntegrationFields(Row):
    """An integration as a write gives it (the sealed client secret included; never on the wire)."""

    key: str
    name: str
    template: str | None = None
    auth: c.AuthSpec
    client_secret_sealed: str | None
    api: c.ApiSpec | None
    test: c.TestRequestSpec | None


class IntegrationRecord(IntegrationFields):
    """An integration row.

    Its reply, ``Integration``, is validated from it by field name: it has no field for the
    sealed secret, only :attr:`client_secret_set`.
    """

    workspace_id: UUID
    created_at: datetime
    updated_at: datetime

    @property
    def client_secret_set(self) -> bool:
        """Tell whether the integration holds a client secret (never which)."""
        return self.client_secret_sealed is not None


_INTEGRATION_COLUMNS = "workspace_id, key, name, template, auth, client_secret_sealed, api, test, created_at, updated_at"
INSERT_INTEGRATION_SQL = f"""
INSERT INTO integrations (workspace_id, key, name, template, auth, client_secret_sealed, api, test)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING {_INTEGRATION_COLUMNS}
"""
SELECT_INTEGRATION_SQL = (
    f"SELECT {_INTEGRATION_COLUMNS} FROM integrations WHERE workspace_id = $1 AND key = $2"
)
LIST_INTEGRATIONS_SQL = (
    f"SELECT {_INTEGRATION_COLUMNS} FROM integrations WHERE workspace_id = $1 ORDER BY key"
)
UPDATE_INTEGRATION_SQL = f"""
UPDATE integrations SET name = $3, auth = $4, client_secret_sealed = $5, api = $6, test = $7,
    updated_at = now()
WHERE workspace_id = $1 AND key = $2
RETURNING {_INTEGRATION_COLUMNS}
"""
DELETE_INTEGRATION_SQL = "DELETE FROM integrations WHERE workspace_id = $1 AND key = $2"
COUNT_LIVE_CONNECTIONS_SQL = """
SELECT count(*) FROM connections
WHERE workspace_id = $1 AND integration_key = $2 AND state <> 'archived'
"""


def _json(model: BaseModel | None) -> dict[str, Any] | None:
    return model.model_dump(mode="json") if model is not None else None


async def insert_integration(
    conn: Conn, workspace_id: UUID, integration: IntegrationFields
) -> IntegrationRecord:
    """Insert an integration; a taken key is a Conflict."""
    try:
        row = await conn.fetchrow(
            INSERT_INTEGRATION_SQL,
            workspace_id,
            integration.key,
            integration.name,
            integration.template,
            _json(integration.auth),
            integration.client_secret_sealed,
            _json(integration.api),
            _json(integration.test),
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"integration {integration.key} exists", code="integration_exists") from exc
    return one(IntegrationRecord, row)


async def select_integration(
    conn: Conn, workspace_id: UUID, key: str, *, for_update: bool = False
) -> IntegrationRecord | None:
    """Return one integration of the workspace (row-locked when ``for_update``)."""
    sql = SELECT_INTEGRATION_SQL + " FOR UPDATE" if for_update else SELECT_INTEGRATION_SQL
    return maybe(IntegrationRecord, await conn.fetchrow(sql, workspace_id, key))


async def list_integrations(conn: Conn, workspace_id: UUID) -> list[IntegrationRecord]:
    """Return the workspace's integrations by key."""
    return many(IntegrationRecord, await conn.fetch(LIST_INTEGRATIONS_SQL, workspace_id))


async def update_integration(conn: Conn, record: IntegrationRecord) -> IntegrationRecord:
    """Write an integration back whole."""
    row = await conn.fetchrow(
        UPDATE_INTEGRATION_SQL,
        record.workspace_id,
        record.key,
        record.name,
        _json(record.auth),
        record.client_secret_sealed,
        _json(record.api),
        _json(record.test),
    )
    return one(IntegrationRecord, row)


async def delete_integration(conn: Conn, workspace_id: UUID, key: str) -> bool:
    """Delete an integration unless live connections use it."""
    live = await conn.fetchval(COUNT_LIVE_CONNECTIONS_SQL, workspace_id, key)
    if live:
        raise Conflict(
            f"integration {key} has {live} live connection(s); archive them first",
            code="integration_in_use",
        )
    return bool(await conn.execute(DELETE_INTEGRATION_SQL, workspace_id, key) == "DELETE 1")
