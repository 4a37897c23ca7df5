"""Keep each replica's hot credentials in memory, sealed, and drop them when they change.

A credentials read that finds its connection here answers without a database round trip
and without a lock. What is kept, per ``(workspace_id, connection_id)``, is the connection
row as read (its credentials still *sealed*: every read decrypts them again, so no
plaintext ever sits in memory between reads) and its integration's auth type.

An entry is trusted only while it could not have changed unseen:

* **by time**: it lives at most the ``credentials_cache_ttl`` setting, and never past
  its own ``refresh_due_at`` (or ``expires_at``), so a token due for renewal always goes
  back to the database, where renewal stays single-flight and row-locked
  (:mod:`services.connections.refresh`);
* **by this replica's renewals**: :class:`CachingRefresher` drops the entry of every
  connection it renews, or fails to renew, here;
* **by the connection's events**: every replica drops an entry when it hears any
  ``tether.evt.connections.connection.*`` event about it (created, reconnected,
  disconnected, archived, error, and ``refreshed`` after a renewal before the due time,
  wherever it ran), on a plain core-NATS subscription (at most once: a missed one only means the
  TTL ends the entry). The gateway drops the credentials replies it keeps on the same
  events (``services/gateway/kept_replies.py``).

What this does not see at once: an integration's auth type changed under existing
connections (the reply's ``type``): that lasts until the TTL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from nats.aio.subscription import Subscription

from libs.common.bus import Bus
from libs.common.cache import TtlCache
from libs.common.contracts import connections as c
from libs.common.db import Conn
from libs.common.runtime import subscribe_events
from services.connections.outbound import Outbound
from services.connections.refresh import Refresher, is_expired
from services.connections.store.connections import ConnectionRecord

Key = tuple[UUID, UUID]

#: The states whose credentials are readable; any other is answered from the database.
READABLE = frozenset({"connected", "error"})


@dataclass(frozen=True)
class CachedCredentials:
    """A connection row as read (credentials sealed) and its integration's auth type."""

    record: ConnectionRecord
    auth_type: str

    def trusted_until(self) -> datetime | None:
        """Return when the entry must go back to the database (None: only the TTL bounds it)."""
        record = self.record
        moments = [m for m in (record.refresh_due_at, record.expires_at) if m is not None]
        return min(moments) if moments else None

    def servable(self, now: datetime) -> bool:
        """Tell whether the entry may answer a read at ``now`` without the database.

        Only a readable, unexpired connection whose renewal is not due yet: anything else
        (due, cooling down, disconnected, archived) is decided by the database path.
        """
        until = self.trusted_until()
        return (
            self.record.state in READABLE
            and (until is None or until > now)
            and not is_expired(self.record, now)
        )


class CredentialCache:
    """Sealed credentials per replica, keyed by workspace and connection."""

    def __init__(self, size: int, ttl: float) -> None:
        self._entries: TtlCache[Key, CachedCredentials] = TtlCache(size, ttl)

    @property
    def generation(self) -> int:
        """Return the drop counter; read it before loading and pass it to :meth:`keep`."""
        return self._entries.generation

    def lookup(
        self, workspace_id: UUID, connection_id: UUID, now: datetime
    ) -> CachedCredentials | None:
        """Return the entry for this workspace's connection if it may answer at ``now``."""
        hit = self._entries.get((workspace_id, connection_id))
        return hit if hit is not None and hit.servable(now) else None

    def keep(self, entry: CachedCredentials, now: datetime, *, since: int) -> None:
        """Remember ``entry`` until it is due, unless its connection was dropped since ``since``."""
        if not entry.servable(now):
            return
        until = entry.trusted_until()
        life = None if until is None else (until - now).total_seconds()
        key = (entry.record.workspace_id, entry.record.id)
        self._entries.put(key, entry, life, since=since)

    def forget(self, workspace_id: UUID, connection_id: UUID) -> None:
        """Drop a connection's entry (it changed here or in another replica)."""
        self._entries.drop((workspace_id, connection_id))

    def __contains__(self, key: Key) -> bool:
        return self._entries.get(key) is not None


class CachingRefresher(Refresher):
    """A :class:`Refresher` that drops this replica's cached credentials of what it renews.

    Renewal itself is unchanged (single-flight here, row lock and version check across
    replicas). The drop happens after each renewal attempt, success or failure: after
    the commit for :meth:`renew`; for :meth:`renew_locked` (the background worker's path)
    before the caller commits, which is enough because the row it renews was due, and a
    due row is never kept (see :meth:`CachedCredentials.servable`).
    """

    def __init__(self, out: Outbound, cache: CredentialCache) -> None:
        super().__init__(out)
        self.cache = cache

    async def renew(
        self, workspace_id: UUID, connection_id: UUID, seen_version: int
    ) -> ConnectionRecord:
        """Renew now (see :meth:`Refresher.renew`), then drop the cached entry."""
        try:
            return await super().renew(workspace_id, connection_id, seen_version)
        finally:
            self.cache.forget(workspace_id, connection_id)

    async def renew_locked(self, conn: Conn, record: ConnectionRecord) -> ConnectionRecord:
        """Renew a locked row (see :meth:`Refresher.renew_locked`), then drop the cached entry."""
        try:
            return await super().renew_locked(conn, record)
        finally:
            self.cache.forget(record.workspace_id, record.id)


@asynccontextmanager
async def forget_on_events(bus: Bus, cache: CredentialCache) -> AsyncIterator[None]:
    """Drop a connection's entry whenever any replica says the connection changed.

    Subscribes (non-durably, in this replica only) to every connection event type for as
    long as the caller's context lives.
    """

    def forget(event: c.ConnectionEvent) -> None:
        cache.forget(event.workspace_id, event.connection_id)

    subs: list[Subscription] = [await subscribe_events(bus, kind, forget) for kind in c.EVENTS]
    try:
        yield
    finally:
        for sub in subs:
            await sub.unsubscribe()
