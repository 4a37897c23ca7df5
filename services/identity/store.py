"""Identity's SQL: workspaces (with sealed secrets) and customers."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from libs.common.contracts.identity import PublicKey, Workspace, WorkspaceSettings
from libs.common.db import Conn
from libs.common.errors import Conflict


class WorkspaceRecord(BaseModel):
    """A workspace row as identity holds it (sealed secrets included; never on the wire)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    key: str
    name: str
    secret_sealed: str
    previous_secret_sealed: str | None
    previous_secret_expires_at: datetime | None
    public_keys: list[PublicKey]
    settings: WorkspaceSettings
    created_at: datetime
    updated_at: datetime

    def public(self) -> Workspace:
        """Return the workspace as its admins may see it."""
        return Workspace(
            id=self.id,
            key=self.key,
            name=self.name,
            settings=self.settings,
            public_keys=self.public_keys,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


_WORKSPACE_COLUMNS = """
id, key, name, secret_sealed, previous_secret_sealed, previous_secret_expires_at,
public_keys, settings, created_at, updated_at
"""

INSERT_WORKSPACE_SQL = f"""
INSERT INTO workspaces (id, key, name, secret_sealed)
VALUES ($1, $2, $3, $4)
RETURNING {_WORKSPACE_COLUMNS}
"""
SELECT_WORKSPACE_BY_KEY_SQL = f"SELECT {_WORKSPACE_COLUMNS} FROM workspaces WHERE key = $1"
SELECT_WORKSPACE_SQL = f"SELECT {_WORKSPACE_COLUMNS} FROM workspaces WHERE id = $1"


def _workspace(row: asyncpg.Record) -> WorkspaceRecord:
    return WorkspaceRecord.model_validate(dict(row))


async def insert_workspace(
    conn: Conn, workspace_id: UUID, key: str, name: str, secret_sealed: str
) -> WorkspaceRecord:
    """Insert a workspace; a taken key is a Conflict."""
    try:
        row = await conn.fetchrow(INSERT_WORKSPACE_SQL, workspace_id, key, name, secret_sealed)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("a workspace with this key exists") from exc
    assert row is not None
    return _workspace(row)


async def select_workspace_by_key(conn: Conn, key: str) -> WorkspaceRecord | None:
    """Return the workspace whose public key (token ``iss``) is ``key``."""
    row = await conn.fetchrow(SELECT_WORKSPACE_BY_KEY_SQL, key)
    return _workspace(row) if row else None


async def select_workspace(conn: Conn, workspace_id: UUID) -> WorkspaceRecord | None:
    """Return the workspace with this id."""
    row = await conn.fetchrow(SELECT_WORKSPACE_SQL, workspace_id)
    return _workspace(row) if row else None
