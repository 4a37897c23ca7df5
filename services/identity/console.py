"""One-time console sign-in: operators make a code, a browser trades it once for a session."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from libs.common.contracts import identity as c
from libs.common.errors import NotFound, Unauthenticated
from services.identity import store, verification
from services.identity.directory import WorkspaceDirectory

SESSION_TTL = 8 * 3600


def _digest(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


class Console:
    """Console sign-in handlers."""

    def __init__(self, pool: asyncpg.Pool[Any], directory: WorkspaceDirectory) -> None:
        self._pool = pool
        self._directory = directory

    async def create_code(self, req: c.ConsoleCodeCreateRequest) -> c.ConsoleCode:
        """Make a code (operators only: `tether up` prints a link with it)."""
        req.ctx.require_system()
        keys = await self._directory.get(req.workspace_key)
        if keys is None:
            raise NotFound(f"no workspace has the key {req.workspace_key}")
        code = secrets.token_urlsafe(24)
        expires_at = datetime.now(UTC) + timedelta(seconds=req.ttl)
        async with self._pool.acquire() as conn:
            await store.insert_console_code(conn, _digest(code), keys.workspace_id, expires_at)
        return c.ConsoleCode(code=code, expires_at=expires_at)

    async def session(self, req: c.ConsoleSessionRequest) -> c.ConsoleSession:
        """Trade a code for an admin token, once."""
        async with self._pool.acquire() as conn:
            workspace_id = await store.use_console_code(conn, _digest(req.code))
            record = await store.get_workspace(conn, workspace_id) if workspace_id else None
        if record is None:
            raise Unauthenticated(
                "this console link has expired or was already used", code="console_code_invalid"
            )
        keys = await self._directory.get(record.key)
        assert keys is not None
        token, expires_at = verification.mint(
            record.key, keys.secrets[0], now=datetime.now(UTC), ttl=SESSION_TTL, admin=True
        )
        return c.ConsoleSession(token=token, expires_at=expires_at)
