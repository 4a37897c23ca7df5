"""Answer credentials operations: read a connection's current credentials (admins).

A read whose connection is in this replica's :class:`CredentialCache` and not due for
renewal makes no database round trip and takes no lock: it decrypts the cached sealed
credentials and answers. Any other read takes the database path, which renews due
credentials single-flight (:mod:`services.connections.refresh`), and remembers what it
read. Either way the caller is scoped exactly as before: admins (or system) of the
workspace that owns the connection, since the cache is keyed by that workspace.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from libs.common.bus import Kept
from libs.common.contracts import connections as c
from services.connections.connections import integration_of
from services.connections.credential_cache import CachedCredentials, CredentialCache
from services.connections.refresh import Refresher
from services.connections.vault import unseal


class Credentials:
    """Credentials handlers."""

    def __init__(
        self, pool: asyncpg.Pool[Any], refresher: Refresher, cache: CredentialCache
    ) -> None:
        self._pool = pool
        self._refresher = refresher
        self._cache = cache

    async def get(self, req: c.CredentialsGetRequest) -> c.Credentials | Kept[c.Credentials]:
        """Return current credentials (admins), renewed first when about to expire."""
        workspace_id = req.ctx.admin_workspace()
        now = datetime.now(UTC)
        hit = self._cache.lookup(workspace_id, req.id, now)
        if hit is not None:
            return _reply(hit, unseal(self._refresher.keyring, hit.record), now)
        since = self._cache.generation  # a drop during this read: do not keep what it read
        record, values = await self._refresher.current(workspace_id, req.id)
        async with self._pool.acquire() as conn:
            integration = await integration_of(conn, workspace_id, record.integration_key)
        entry = CachedCredentials(record, integration.auth.type)
        now = datetime.now(UTC)
        self._cache.keep(entry, now, since=since)
        return _reply(entry, values, now)


KEEP_UNDATED = 3600.0
"""Seconds a caller may keep credentials that never expire (an API key): until a change."""


def _reply(
    entry: CachedCredentials, values: dict[str, Any], now: datetime
) -> c.Credentials | Kept[c.Credentials]:
    """Build the reply; the gateway may keep it while it could not have changed unseen.

    That is while this replica could answer it from its cache: until the renewal is due
    (then the next read renews, single-flight). Events drop it earlier everywhere.
    """
    reply = c.Credentials(
        connection_id=entry.record.id,
        type=entry.auth_type,
        values={k: v for k, v in values.items() if v is not None},
        expires_at=entry.record.expires_at,
    )
    if not entry.servable(now):
        return reply
    until = entry.trusted_until()
    return Kept(reply, KEEP_UNDATED if until is None else (until - now).total_seconds())
