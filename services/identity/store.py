"""Identity's SQL: workspaces (with sealed secrets) and customers."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from libs.common.contracts.identity import PublicKey, WorkspaceSettings
from libs.common.db import Conn
from libs.common.errors import Conflict, NotFound
from libs.common.rows import many, maybe, one


class WorkspaceRecord(BaseModel):
    """A workspace row as identity holds it (sealed secrets included; never on the wire).

    Its reply, ``Workspace``, is validated from it by field name and has no secret field.
    """

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
SELECT_WORKSPACE_FOR_UPDATE_SQL = SELECT_WORKSPACE_SQL + " FOR UPDATE"


async def insert_workspace(
    conn: Conn, workspace_id: UUID, key: str, name: str, secret_sealed: str
) -> WorkspaceRecord:
    """Insert a workspace; a taken key is a Conflict."""
    try:
        row = await conn.fetchrow(INSERT_WORKSPACE_SQL, workspace_id, key, name, secret_sealed)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("a workspace with this key exists") from exc
    return one(WorkspaceRecord, row)


async def select_workspace_by_key(conn: Conn, key: str) -> WorkspaceRecord | None:
    """Return the workspace whose public key (token ``iss``) is ``key``."""
    return maybe(WorkspaceRecord, await conn.fetchrow(SELECT_WORKSPACE_BY_KEY_SQL, key))


async def get_workspace(
    conn: Conn, workspace_id: UUID, *, for_update: bool = False
) -> WorkspaceRecord:
    """Return the workspace with this id (locked when ``for_update``); raise NotFound if absent."""
    sql = SELECT_WORKSPACE_FOR_UPDATE_SQL if for_update else SELECT_WORKSPACE_SQL
    record = maybe(WorkspaceRecord, await conn.fetchrow(sql, workspace_id))
    if record is None:
        raise NotFound("workspace not found")
    return record


UPDATE_WORKSPACE_SQL = f"""
UPDATE workspaces SET
    name = coalesce($2, name),
    settings = coalesce($3, settings),
    public_keys = coalesce($4, public_keys),
    updated_at = now()
WHERE id = $1
RETURNING {_WORKSPACE_COLUMNS}
"""
ROTATE_SECRET_SQL = f"""
UPDATE workspaces SET
    previous_secret_sealed = secret_sealed,
    previous_secret_expires_at = now() + make_interval(secs => $3),
    secret_sealed = $2,
    updated_at = now()
WHERE id = $1
RETURNING {_WORKSPACE_COLUMNS}
"""


async def update_workspace(
    conn: Conn,
    workspace_id: UUID,
    *,
    name: str | None,
    settings: WorkspaceSettings | None,
    public_keys: list[PublicKey] | None,
) -> WorkspaceRecord:
    """Change what is given; leave the rest."""
    row = await conn.fetchrow(
        UPDATE_WORKSPACE_SQL,
        workspace_id,
        name,
        settings.model_dump(mode="json") if settings is not None else None,
        [pk.model_dump(mode="json") for pk in public_keys] if public_keys is not None else None,
    )
    return one(WorkspaceRecord, row)


async def rotate_secret(conn: Conn, workspace_id: UUID, sealed: str, grace: int) -> WorkspaceRecord:
    """Make ``sealed`` the secret; keep the old one for ``grace`` seconds."""
    row = await conn.fetchrow(ROTATE_SECRET_SQL, workspace_id, sealed, float(grace))
    return one(WorkspaceRecord, row)


# --- customers --------------------------------------------------------------------------

_CUSTOMER_COLUMNS = "id, name, fields, archived_at, created_at, updated_at"


class CustomerRecord(BaseModel):
    """A customer row."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str | None
    fields: dict[str, Any]
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def archived(self) -> bool:
        """Tell whether the customer is archived (the reply's ``archived``)."""
        return self.archived_at is not None


INSERT_CUSTOMER_IF_NEW_SQL = f"""
INSERT INTO customers (workspace_id, id, name, fields) VALUES ($1, $2, $3, $4)
ON CONFLICT (workspace_id, id) DO NOTHING
RETURNING {_CUSTOMER_COLUMNS}
"""
SELECT_CUSTOMER_SQL = (
    f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE workspace_id = $1 AND id = $2"
)
SELECT_CUSTOMER_FOR_UPDATE_SQL = SELECT_CUSTOMER_SQL + " FOR UPDATE"
UPDATE_CUSTOMER_IF_CHANGED_SQL = f"""
UPDATE customers SET name = $3, fields = $4, updated_at = now()
WHERE workspace_id = $1 AND id = $2
  AND (name IS DISTINCT FROM $3 OR fields IS DISTINCT FROM $4::jsonb)
RETURNING {_CUSTOMER_COLUMNS}
"""
SET_ARCHIVED_SQL = f"""
UPDATE customers SET archived_at = CASE WHEN $3 THEN now() ELSE NULL END, updated_at = now()
WHERE workspace_id = $1 AND id = $2 AND (archived_at IS NOT NULL) <> $3
RETURNING {_CUSTOMER_COLUMNS}
"""
LIST_CUSTOMERS_SQL = f"""
SELECT {_CUSTOMER_COLUMNS} FROM customers
WHERE workspace_id = $1
  AND ($2::text IS NULL OR id LIKE $2 || '%' OR lower(name) LIKE lower($2) || '%')
  AND ($3::text IS NULL OR id > $3)
  AND ($4 OR archived_at IS NULL)
ORDER BY id
LIMIT $5
"""


async def insert_customer_if_new(
    conn: Conn, workspace_id: UUID, customer_id: str, name: str | None, fields: dict[str, Any]
) -> CustomerRecord | None:
    """Insert a customer; return it, or None when the id already existed (no error)."""
    row = await conn.fetchrow(INSERT_CUSTOMER_IF_NEW_SQL, workspace_id, customer_id, name, fields)
    return maybe(CustomerRecord, row)


async def select_customer(
    conn: Conn, workspace_id: UUID, customer_id: str, *, for_update: bool = False
) -> CustomerRecord | None:
    """Return one customer of the workspace."""
    sql = SELECT_CUSTOMER_FOR_UPDATE_SQL if for_update else SELECT_CUSTOMER_SQL
    return maybe(CustomerRecord, await conn.fetchrow(sql, workspace_id, customer_id))


async def update_customer_if_changed(
    conn: Conn, workspace_id: UUID, customer_id: str, name: str | None, fields: dict[str, Any]
) -> CustomerRecord | None:
    """Write name and fields; return the row only when something changed."""
    row = await conn.fetchrow(
        UPDATE_CUSTOMER_IF_CHANGED_SQL, workspace_id, customer_id, name, fields
    )
    return maybe(CustomerRecord, row)


async def set_archived(
    conn: Conn, workspace_id: UUID, customer_id: str, archived: bool
) -> CustomerRecord | None:
    """Archive or restore; return the row only when its state changed."""
    row = await conn.fetchrow(SET_ARCHIVED_SQL, workspace_id, customer_id, archived)
    return maybe(CustomerRecord, row)


async def list_customers(
    conn: Conn,
    workspace_id: UUID,
    *,
    search: str | None,
    after: str | None,
    include_archived: bool,
    limit: int,
) -> list[CustomerRecord]:
    """Return up to ``limit`` customers ordered by id, after the cursor id."""
    pattern = (
        search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") if search else None
    )
    rows = await conn.fetch(
        LIST_CUSTOMERS_SQL, workspace_id, pattern, after, include_archived, limit
    )
    return many(CustomerRecord, rows)


# --- console codes ----------------------------------------------------------------------

INSERT_CONSOLE_CODE_SQL = """
INSERT INTO console_codes (code_hash, workspace_id, expires_at) VALUES ($1, $2, $3)
"""
# The code is the caller's only credential: its hash names the workspace.
USE_CONSOLE_CODE_SQL = """
UPDATE console_codes SET used_at = now()
WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
RETURNING workspace_id
"""


async def insert_console_code(
    conn: Conn, code_hash: bytes, workspace_id: UUID, expires_at: datetime
) -> None:
    """Store a one-time console code (hashed)."""
    await conn.execute(INSERT_CONSOLE_CODE_SQL, code_hash, workspace_id, expires_at)


async def use_console_code(conn: Conn, code_hash: bytes) -> UUID | None:
    """Spend a console code; return its workspace, or None when unknown, used or expired."""
    workspace_id: UUID | None = await conn.fetchval(USE_CONSOLE_CODE_SQL, code_hash)
    return workspace_id
