"""Migrations apply once, even when many replicas start at the same time."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import asyncpg

from libs.common.db import COMMON_MIGRATIONS, create_pool, list_migrations, migrate
from tests.conftest import Infra

COMMON = [f"common/{p.name}" for p in sorted(COMMON_MIGRATIONS.glob("*.sql"))]
"""The migrations every schema gets first (outbox, processed events, dead letters, …)."""


def _write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(sql)


async def test_migrate_concurrent_starts_apply_once(infra: Infra, tmp_path: Path) -> None:
    schema = f"m_{secrets.token_hex(4)}"
    # A migration that fails if it runs twice (CREATE TABLE without IF NOT EXISTS).
    _write(tmp_path, "0001_things.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    _write(tmp_path, "0002_more.sql", "ALTER TABLE things ADD COLUMN name text;")
    results = await asyncio.gather(
        *(migrate(infra.database_url, schema, tmp_path) for _ in range(6))
    )
    applied = [name for r in results for name in r]
    assert sorted(applied) == ["0001_things.sql", "0002_more.sql", *COMMON]
    conn = await asyncpg.connect(infra.database_url)
    try:
        rows = await conn.fetch(f"SELECT name FROM {schema}.schema_migrations ORDER BY name")
        assert [r["name"] for r in rows] == ["0001_things.sql", "0002_more.sql", *COMMON]
    finally:
        await conn.close()
    # A later start finds nothing to do; a new file is applied alone.
    assert await migrate(infra.database_url, schema, tmp_path) == []
    _write(tmp_path, "0003_index.sql", "CREATE INDEX things_name ON things (name);")
    assert await migrate(infra.database_url, schema, tmp_path) == ["0003_index.sql"]


async def test_migrate_failed_file_leaves_nothing_half_applied(
    infra: Infra, tmp_path: Path
) -> None:
    schema = f"m_{secrets.token_hex(4)}"
    _write(tmp_path, "0001_bad.sql", "CREATE TABLE a (id int); SELECT no_such_function();")
    try:
        await migrate(infra.database_url, schema, tmp_path)
    except asyncpg.UndefinedFunctionError:
        pass
    else:
        raise AssertionError("the broken migration should fail")
    conn = await asyncpg.connect(infra.database_url)
    try:
        assert await conn.fetchval("SELECT to_regclass($1)", f"{schema}.a") is None
        names = await conn.fetch(f"SELECT name FROM {schema}.schema_migrations")
        assert sorted(r["name"] for r in names) == COMMON
    finally:
        await conn.close()


async def test_pool_sees_only_its_schema_first(infra: Infra, tmp_path: Path) -> None:
    a, b = f"m_{secrets.token_hex(4)}", f"m_{secrets.token_hex(4)}"
    _write(
        tmp_path, "0001_t.sql", "CREATE TABLE t (v text); INSERT INTO t VALUES (current_schema());"
    )
    await migrate(infra.database_url, a, tmp_path)
    await migrate(infra.database_url, b, tmp_path)
    pool = await create_pool(infra.database_url, a, min_size=1, max_size=1)
    try:
        assert await pool.fetchval("SELECT v FROM t") == a
        assert await pool.fetchval("SELECT '{\"x\": 1}'::jsonb") == {"x": 1}
    finally:
        await pool.close()


def test_list_migrations_orders_common_first(tmp_path: Path) -> None:
    _write(tmp_path, "0002_b.sql", "")
    _write(tmp_path, "0001_a.sql", "")
    _write(tmp_path, "notes.txt", "")
    names = [m.name for m in list_migrations(tmp_path)]
    assert COMMON[:2] == ["common/0001_outbox.sql", "common/0002_dead_letters.sql"]
    assert names == [*COMMON, "0001_a.sql", "0002_b.sql"]
