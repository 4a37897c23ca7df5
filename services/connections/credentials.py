"""Answer credentials operations: read a connection's current credentials (admins)."""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.common.contracts import connections as c
from services.connections.connections import integration_of
from services.connections.refresh import Refresher


class Credentials:
    """Credentials handlers."""

    def __init__(self, pool: asyncpg.Pool[Any], refresher: Refresher) -> None:
        self._pool = pool
        self._refresher = refresher

    async def get(self, req: c.CredentialsGetRequest) -> c.Credentials:
        """Return current credentials (admins), renewed first when about to expire."""
        workspace_id = req.ctx.admin_workspace()
        record, values = await self._refresher.current(workspace_id, req.id)
        async with self._pool.acquire() as conn:
            integration = await integration_of(conn, workspace_id, record.integration_key)
        return c.Credentials(
            connection_id=record.id,
            type=integration.auth.type,
            values={k: v for k, v in values.items() if v is not None},
            expires_at=record.expires_at,
        )
