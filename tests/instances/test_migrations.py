"""Upgrading a database: steps still to run become jobs of queue ``deployments``."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
from uuid import UUID, uuid4

import asyncpg

from libs.common.db import create_pool, migrate
from services.instances.app import MIGRATIONS
from tests.conftest import Infra

STEP_SQL = """
INSERT INTO deployment_steps (id, deployment_id, ord, element_key, status, attempts,
    lease_owner, lease_until, workspace_id, kind)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'subscribe')
"""


class OldStep(NamedTuple):
    """A step row as the schema before the jobs held it."""

    id: UUID
    deployment_id: UUID
    ord: int
    element_key: str
    status: str
    attempts: int
    lease_owner: str | None = None
    lease_until: datetime | None = None


async def test_unfinished_steps_of_active_deployments_become_jobs(
    infra: Infra, tmp_path: Path
) -> None:
    schema = f"instances_upgrade_{uuid4().hex[:8]}"
    for name in ("0001_elements_deployments.sql", "0002_known_connections_state_at.sql"):
        shutil.copy(MIGRATIONS / name, tmp_path / name)
    await migrate(infra.database_url, schema, tmp_path)  # the schema before the jobs
    workspace_id, connection_id = uuid4(), uuid4()
    active, cancelled = uuid4(), uuid4()
    pending, running, done, stale = uuid4(), uuid4(), uuid4(), uuid4()
    pool = await create_pool(infra.database_url, schema, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            for deployment_id, status in ((active, "running"), (cancelled, "cancelled")):
                await conn.execute(
                    "INSERT INTO deployments (id, workspace_id, connection_id, customer_id,"
                    " integration_key, reason, status, steps_total)"
                    " VALUES ($1, $2, $3, 'c', 'crm', 'requested', $4, 3)",
                    deployment_id,
                    workspace_id,
                    connection_id,
                    status,
                )
            far = datetime(2999, 1, 1, tzinfo=UTC)  # a live lease of an old worker
            for step in (
                OldStep(pending, active, 0, "a", "pending", 1),
                OldStep(running, active, 1, "b", "running", 2, "old-worker", far),
                OldStep(done, active, 2, "c", "succeeded", 1),
                OldStep(stale, cancelled, 0, "a", "pending", 0),
            ):
                await conn.execute(STEP_SQL, *step, workspace_id)
        shutil.copy(MIGRATIONS / "0003_deployment_jobs.sql", tmp_path / "0003_deployment_jobs.sql")
        assert await migrate(infra.database_url, schema, tmp_path) == ["0003_deployment_jobs.sql"]
        async with pool.acquire() as conn:
            jobs = await conn.fetch(
                "SELECT id, queue, kind, status, attempts, partition_key, dedupe_key,"
                " not_before > now() + interval '1 year' AS waits FROM jobs ORDER BY seq"
            )
            columns = await conn.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = $1 AND table_name = 'deployment_steps'",
                schema,
            )
    finally:
        await pool.close()
        admin = await asyncpg.connect(infra.database_url)
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()
    assert [(j["id"], j["attempts"], j["waits"]) for j in jobs] == [
        (pending, 1, False),
        (running, 2, True),  # the old worker's lease is honoured
    ]
    assert {(j["queue"], j["kind"], j["status"]) for j in jobs} == {
        ("deployments", "step", "pending")
    }
    assert [j["partition_key"] for j in jobs] == [f"{connection_id}:a", f"{connection_id}:b"]
    assert [j["dedupe_key"] for j in jobs] == [f"step:{pending}", f"step:{running}"]
    assert "lease_owner" not in {c["column_name"] for c in columns}
