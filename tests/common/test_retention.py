"""The retention sweep keeps its module docstring's promises: batches, totals, survival."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import asyncpg
import pytest
from structlog.testing import capture_logs

from libs.common import retention
from libs.common.db import Conn, create_pool, migrate
from tests.conftest import Infra, eventually

Pool: TypeAlias = "asyncpg.Pool[Any]"

DELETE_OLD_SQL = """
DELETE FROM items WHERE id IN (
    SELECT id FROM items WHERE old ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
"""


@pytest.fixture
async def pool(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pool]:
    """A pool on a fresh schema with a table of 25 old and 5 new items."""
    name = f"retention_{secrets.token_hex(4)}"
    await migrate(infra.database_url, name, tmp_path_factory.mktemp("no_migrations"))
    pool = await create_pool(infra.database_url, name, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE items (id int PRIMARY KEY, old boolean NOT NULL)")
        await conn.execute("INSERT INTO items SELECT i, i <= 25 FROM generate_series(1, 30) i")
    yield pool
    await pool.close()


async def delete_old(conn: Conn, limit: int) -> int:
    status = await conn.execute(DELETE_OLD_SQL, limit)
    return int(status.split()[-1])


async def test_retention_sweep_once_runs_batches_until_one_is_short(pool: Pool) -> None:
    sizes: list[int] = []

    async def counted(conn: Conn, limit: int) -> int:
        sizes.append(await delete_old(conn, limit))
        return sizes[-1]

    assert await retention.sweep_once(pool, counted, 10) == 25
    assert sizes == [10, 10, 5]
    assert await pool.fetchval("SELECT count(*) FROM items") == 5


async def test_retention_sweep_every_survives_a_database_error(pool: Pool) -> None:
    """A failing batch is logged and tried again after the interval; the loop goes on."""
    calls = 0

    async def flaky(conn: Conn, limit: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            await conn.execute("SELECT * FROM no_such_table")
        return await delete_old(conn, limit)

    with capture_logs() as logs:
        task = asyncio.create_task(
            retention.sweep_every(
                pool, flaky, limit=100, interval=0.05, swept="items_swept", failed="items_failed"
            )
        )

        async def swept_logged() -> bool:
            return any(e["event"] == "items_swept" for e in logs)

        try:
            await eventually(swept_logged)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    failed = [e for e in logs if e["event"] == "items_failed"]
    swept = [e for e in logs if e["event"] == "items_swept"]
    assert len(failed) == 1
    assert "no_such_table" in failed[0]["error"]
    assert swept[0]["count"] == 25
