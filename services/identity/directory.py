"""Keep verified workspaces' keys in memory, dropped on ``workspace.updated``."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import asyncpg

from libs.common.cache import TtlCache
from libs.common.crypto import Keyring, associated_data
from services.identity import store
from services.identity.store import WorkspaceRecord
from services.identity.verification import WorkspaceKeys, load_public_keys

SECRET_PURPOSE = "workspace-secret"


def secret_aad(workspace_id: UUID) -> bytes:
    """Return the associated data that binds a workspace's secret to its row."""
    return associated_data(workspace_id, workspace_id, SECRET_PURPOSE)


def unseal_keys(record: WorkspaceRecord, keyring: Keyring, now: float) -> WorkspaceKeys:
    """Open a workspace's secrets (the previous one only inside its grace period)."""
    aad = secret_aad(record.id)
    secrets = [keyring.decrypt(record.secret_sealed, aad).decode()]
    if (
        record.previous_secret_sealed
        and record.previous_secret_expires_at
        and record.previous_secret_expires_at.timestamp() > now
    ):
        secrets.append(keyring.decrypt(record.previous_secret_sealed, aad).decode())
    return WorkspaceKeys(
        workspace_id=record.id,
        workspace_key=record.key,
        settings=record.settings,
        secrets=tuple(secrets),
        public_keys=load_public_keys(record.public_keys),
        previous_secret_expires_at=record.previous_secret_expires_at if len(secrets) > 1 else None,
    )


class WorkspaceDirectory:
    """A bounded, short-lived cache of workspace keys by workspace key (token ``iss``).

    Entries live at most ``ttl`` seconds (and never past a previous secret's grace end);
    :meth:`forget` drops a workspace at once when any replica changes it.
    """

    def __init__(
        self, pool: asyncpg.Pool[Any], keyring: Keyring, *, ttl: float = 30.0, size: int = 10_000
    ):
        self._pool = pool
        self._keyring = keyring
        self._entries: TtlCache[str, WorkspaceKeys] = TtlCache(size, ttl)

    async def get(self, key: str) -> WorkspaceKeys | None:
        """Return the workspace's keys, loading them when not cached."""
        keys = self._entries.get(key)
        if keys is not None:
            return keys
        generation = self._entries.generation  # a rotation dropped meanwhile: do not keep these
        async with self._pool.acquire() as conn:
            record = await store.select_workspace_by_key(conn, key)
        if record is None:
            return None
        now = time.time()
        keys = unseal_keys(record, self._keyring, now)
        grace_end = keys.previous_secret_expires_at
        ttl = None if grace_end is None else grace_end.timestamp() - now
        self._entries.put(key, keys, ttl, since=generation)
        return keys

    def forget(self, workspace_id: UUID) -> None:
        """Drop every cached entry of ``workspace_id``."""
        self._entries.drop_where(lambda keys: keys.workspace_id == workspace_id)
