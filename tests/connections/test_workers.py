"""Background workers outlive a failing database: they log, wait a poll and go on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from structlog.testing import capture_logs

from tests.conftest import Stack, eventually
from tests.connections.conftest import Fake

WAITING_CLAIMS_SQL = """
SELECT pid, query LIKE '%check_due_at <= now()%' AS is_check FROM pg_stat_activity
WHERE application_name = 'tether-connections' AND wait_event_type = 'Lock'
  AND (query LIKE '%check_due_at <= now()%' OR query LIKE '%refresh_due_at <= now()%')
  AND pid <> pg_backend_pid()
"""


async def test_workers_survive_killed_database_connections(fake: Fake, stack: Stack) -> None:
    """Both workers lose their connection mid-claim, log it, and then check and renew as due."""
    renewed_id = await fake.connect("renewed-after-failure")
    fake.provider.access_token_ttl = None  # no expiry: the check worker watches this token
    checked_id = await fake.connect("checked-after-failure")
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        with capture_logs() as logs:
            async with conn.transaction():
                # Claims take row locks (FOR UPDATE): this lock makes them wait in PostgreSQL,
                # where the workers' backends can be terminated mid-query.
                await conn.execute("LOCK TABLE connections.connections IN EXCLUSIVE MODE")
                waiting: list[asyncpg.Record] = []

                async def both_claims_waiting() -> bool:
                    await conn.execute("SELECT pg_stat_clear_snapshot()")  # fresh, in this tx
                    waiting[:] = await conn.fetch(WAITING_CLAIMS_SQL)
                    kinds = {r["is_check"] for r in waiting}
                    return kinds == {True, False}

                await eventually(both_claims_waiting)
                killed = await conn.fetch(
                    "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid",
                    [r["pid"] for r in waiting],
                )
                assert all(r[0] for r in killed)
                await conn.execute(
                    "UPDATE connections.connections SET check_due_at = now() WHERE id = $1",
                    checked_id,
                )
                await conn.execute(
                    "UPDATE connections.connections SET refresh_due_at = now() WHERE id = $1",
                    renewed_id,
                )
                tested, renewed = len(fake.provider.api_requests), fake.provider.refresh_calls

            async def checked_and_renewed() -> bool:  # and the next check an hour away
                due = await conn.fetchval(
                    "SELECT check_due_at FROM connections.connections WHERE id = $1",
                    checked_id,
                )
                return (
                    len(fake.provider.api_requests) > tested
                    and fake.provider.refresh_calls > renewed
                    and due > datetime.now(UTC) + timedelta(minutes=30)
                )

            await eventually(checked_and_renewed)
    finally:
        await conn.close()
    events = [e["event"] for e in logs]
    assert "check_worker_failed" in events, events
    assert "refresh_worker_failed" in events, events
    assert "background_task_crashed" not in events, [e for e in logs if e["log_level"] == "error"]
    assert [r["path"] for r in fake.provider.api_requests[tested:]] == ["/api/me"]
