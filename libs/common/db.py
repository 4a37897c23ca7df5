"""Open a service's asyncpg pool on its own schema and apply numbered migrations once."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from libs.common import tracing
from libs.common.errors import Unavailable

log = structlog.get_logger(__name__)

Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
"""A connection as store functions take it: bare, or acquired from a pool."""

COMMON_MIGRATIONS = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_SCHEMA = re.compile(r"^[a-z][a-z0-9_]*$")

CREATE_MIGRATIONS_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED_SQL = "SELECT name FROM {schema}.schema_migrations"
INSERT_APPLIED_SQL = "INSERT INTO {schema}.schema_migrations (name) VALUES ($1)"


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file; ``name`` is unique within a schema."""

    name: str
    path: Path


def list_migrations(service_dir: Path) -> list[Migration]:
    """Return the common migrations then the service's own, each in number order."""
    found: list[Migration] = []
    for prefix, folder in (("common", COMMON_MIGRATIONS), ("", service_dir)):
        files = sorted(p for p in folder.glob("*.sql") if _NAME.match(p.name))
        found.extend(Migration(f"{prefix}/{p.name}" if prefix else p.name, p) for p in files)
    return found


def _check_schema(schema: str) -> str:
    if not _SCHEMA.match(schema):
        raise ValueError(f"not a schema name: {schema!r}")
    return schema


async def migrate(dsn: str, schema: str, migrations_dir: Path) -> list[str]:
    """Apply the missing migrations of ``schema``; return the names applied now.

    A PostgreSQL advisory lock keyed by the schema makes concurrent starts of N replicas
    migrate once: the others wait, then find nothing left to do. Each file runs in its
    own transaction together with its ``schema_migrations`` row.
    """
    schema = _check_schema(schema)
    conn = await _connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"tether.migrate.{schema}")
        try:
            # In production the schema exists already, owned by the service's own role
            # (deploy/postgres/roles.sql), which may not create schemas: only create it here.
            if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
                await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.execute(CREATE_MIGRATIONS_TABLE_SQL.format(schema=schema))
            applied = {
                r["name"] for r in await conn.fetch(SELECT_APPLIED_SQL.format(schema=schema))
            }
            done: list[str] = []
            await conn.execute(f"SET search_path TO {schema}")
            for m in list_migrations(migrations_dir):
                if m.name in applied:
                    continue
                async with conn.transaction():
                    await conn.execute(m.path.read_text())
                    await conn.execute(INSERT_APPLIED_SQL.format(schema=schema), m.name)
                done.append(m.name)
                log.info("migration_applied", schema=schema, migration=m.name)
            return done
        finally:
            await conn.execute(
                "SELECT pg_advisory_unlock(hashtext($1))", f"tether.migrate.{schema}"
            )
    finally:
        await conn.close()


async def _connect(dsn: str) -> asyncpg.Connection[Any]:
    try:
        conn: asyncpg.Connection[Any] = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable("cannot reach PostgreSQL") from exc
    return conn


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    """Decode json/jsonb to Python values and encode Python values as JSON; trace SQL."""
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    if tracing.enabled():  # each statement a span of the request or job it serves
        conn.add_query_logger(tracing.query_logger)


async def _reset_connection(conn: asyncpg.Connection[Any]) -> None:
    """Return a connection to its pool without asyncpg's default reset round trip.

    The default runs ``RESET ALL``, ``UNLISTEN *``, ``CLOSE ALL`` and releases session
    advisory locks on every release: one more round trip per acquire, on every hot path.
    Tether's code leaves none of those behind (locks are transaction-scoped, listeners
    are removed by their owner, nothing runs ``SET``), so only a transaction left open
    (a block that failed mid-way) is undone here.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(
    dsn: str, schema: str, *, min_size: int = 2, max_size: int = 20
) -> asyncpg.Pool[Any]:
    """Open a pool whose connections see ``schema`` first (and nothing of other services)."""
    schema = _check_schema(schema)
    try:
        pool: asyncpg.Pool[Any] = await asyncpg.create_pool(
            dsn,
            min_size=min(min_size, max_size),
            max_size=max_size,
            init=_init_connection,
            reset=_reset_connection,
            server_settings={
                "search_path": schema,
                "application_name": f"tether-{schema}",
                # Our list queries take optional filters ($n IS NULL OR col = $n): a generic
                # plan cannot use the index for them, so always plan with the real values.
                "plan_cache_mode": "force_custom_plan",
            },
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable("cannot reach PostgreSQL") from exc
    return pool
