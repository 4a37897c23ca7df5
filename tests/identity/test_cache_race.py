"""A lookup that began before a change never stores what it read after the change's drop."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest

from libs.common.cache import TtlCache
from libs.common.contracts import identity
from libs.common.contracts.base import Context
from libs.common.crypto import Keyring
from libs.common.db import Conn
from services.identity import store
from services.identity.directory import WorkspaceDirectory
from services.identity.store import WorkspaceRecord
from tests.conftest import Stack, WorkspaceHandle


def test_cache_put_since_a_drop_keeps_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(10, 60)
    before = cache.generation
    cache.drop("a")  # a change to "a" was dropped while "a" was being loaded
    cache.put("a", 1, since=before)
    assert cache.get("a") is None
    cache.put("a", 2, since=cache.generation)
    assert cache.get("a") == 2


async def test_directory_lookup_racing_a_rotation_keeps_no_old_secret(
    workspace: WorkspaceHandle, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read the old keys, rotate and drop, then finish the read: the next lookup sees the new secret."""
    pool = await stack.pool("identity")
    directory = WorkspaceDirectory(pool, Keyring.from_setting(stack.infra.master_keys), ttl=60)
    read, rotated = asyncio.Event(), asyncio.Event()
    real_select = store.select_workspace_by_key

    async def slow_select(conn: Conn, key: str) -> WorkspaceRecord | None:
        record = await real_select(conn, key)
        if not read.is_set():
            read.set()
            await rotated.wait()  # the rotation commits and is dropped while this read is held
        return record

    monkeypatch.setattr(store, "select_workspace_by_key", slow_select)
    try:
        lookup = asyncio.create_task(directory.get(workspace.key))
        await read.wait()
        ctx = Context(workspace_id=UUID(workspace.id), principal="admin")
        new = await stack.bus.call(identity.SECRET_ROTATE, identity.SecretRotateRequest(ctx=ctx))
        directory.forget(UUID(workspace.id))  # what hearing workspace.updated does
        rotated.set()
        await lookup
        keys = await directory.get(workspace.key)
    finally:
        await pool.close()
    assert keys is not None
    assert keys.secrets[0] == new.secret
