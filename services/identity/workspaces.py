"""Answer workspace operations: create (operators), read."""

from __future__ import annotations

import secrets
from typing import Any
from uuid import uuid4

import asyncpg

from libs.common.contracts import identity as c
from libs.common.crypto import Keyring
from libs.common.errors import NotFound
from libs.common.outbox import emit
from services.identity import store
from services.identity.directory import secret_aad


def new_workspace_key() -> str:
    """Return a fresh public workspace key (goes in tokens' ``iss``)."""
    return f"ws_{secrets.token_urlsafe(12)}"


def new_secret() -> str:
    """Return a fresh HS256 signing secret (256 bits)."""
    return secrets.token_urlsafe(32)


class Workspaces:
    """Workspace handlers."""

    def __init__(self, pool: asyncpg.Pool[Any], keyring: Keyring) -> None:
        self._pool = pool
        self._keyring = keyring

    async def create(self, req: c.WorkspaceCreateRequest) -> c.WorkspaceCreated:
        """Create a workspace with a new key and secret (operators only)."""
        req.ctx.require_system()
        workspace_id = uuid4()
        secret = new_secret()
        sealed = self._keyring.encrypt(secret.encode(), secret_aad(workspace_id))
        async with self._pool.acquire() as conn, conn.transaction():
            record = await store.insert_workspace(
                conn, workspace_id, new_workspace_key(), req.name, sealed
            )
            await emit(conn, c.WORKSPACE_CREATED, c.WorkspaceEvent(workspace_id=record.id))
        return c.WorkspaceCreated(id=record.id, key=record.key, name=record.name, secret=secret)

    async def get(self, req: c.WorkspaceGetRequest) -> c.Workspace:
        """Return the caller's workspace (admins)."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            record = await store.select_workspace(conn, workspace_id)
        if record is None:
            raise NotFound("workspace not found")
        return record.public()

    async def find(self, req: c.WorkspaceFindRequest) -> c.Workspace:
        """Return a workspace by key (operators only)."""
        req.ctx.require_system()
        async with self._pool.acquire() as conn:
            record = await store.select_workspace_by_key(conn, req.key)
        if record is None:
            raise NotFound(f"no workspace has the key {req.key}")
        return record.public()
