"""deploy/postgres/roles.sql: a service's role uses its own schema and cannot read another's."""

from __future__ import annotations

import secrets
from pathlib import Path

import asyncpg
import pytest

from libs.common.db import migrate
from tests.conftest import ROOT, Infra

SERVICES_DIR = ROOT / "services"


async def test_service_role_is_confined_to_its_schema(infra: Infra) -> None:
    name = f"tether_roles_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(infra.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = infra.database_url.rsplit("/", 1)[0] + f"/{name}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute((ROOT / "deploy" / "postgres" / "roles.sql").read_text())
    finally:
        await admin.close()

    def as_role(service: str) -> str:
        return url.replace("postgres@", f"tether_{service}@", 1)

    # Each service migrates its own schema with its own role (the schema already exists).
    for service in ("identity", "connections"):
        await migrate(as_role(service), service, Path(SERVICES_DIR / service / "migrations"))
    conn = await asyncpg.connect(as_role("identity"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM workspaces") == 0  # its own: fine
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM connections.connections")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE connections.sneaky (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.sneaky (id int)")
    finally:
        await conn.close()
