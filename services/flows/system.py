"""Answer ``tether.flows.system.status``: runs that failed, runs that do not start.

Two checks of the caller's workspace:

* ``runs_failed``: runs that ended ``failed`` in the last 24 hours;
* ``runs_stuck``: runs still ``queued`` :data:`STUCK_AFTER` after they were created (no
  worker took them: workers down, or a connection's queue not moving).
"""

from __future__ import annotations

from uuid import UUID

from libs.common.contracts.system import (
    SAMPLE_SIZE,
    ServiceStatus,
    StatusCheck,
    SystemStatusRequest,
)
from libs.common.db import Conn
from libs.common.system_status import StatusReporter, count_check, plural

STUCK_AFTER = "15 minutes"
"""How long a run may stay queued before it counts as stuck (a PostgreSQL interval)."""

RUNS_FAILED_SQL = f"""
SELECT count(*) AS n, (array_agg(id::text ORDER BY ended_at DESC))[1:{SAMPLE_SIZE}] AS sample
FROM flow_runs
WHERE workspace_id = $1 AND state = 'failed' AND ended_at > now() - interval '24 hours'
"""
RUNS_STUCK_SQL = f"""
SELECT count(*) AS n, (array_agg(id::text ORDER BY created_at))[1:{SAMPLE_SIZE}] AS sample
FROM flow_runs
WHERE workspace_id = $1 AND state = 'queued' AND created_at < now() - interval '{STUCK_AFTER}'
"""


async def checks(conn: Conn, workspace_id: UUID) -> list[StatusCheck]:
    """Return the workspace's run checks: failed in the last 24 h, queued too long."""
    return [
        await count_check(
            conn,
            workspace_id,
            "runs_failed",
            RUNS_FAILED_SQL,
            lambda n: f"{plural(n, 'run')} failed in the last 24 h",
        ),
        await count_check(
            conn,
            workspace_id,
            "runs_stuck",
            RUNS_STUCK_SQL,
            lambda n: f"{plural(n, 'run')} queued for over {STUCK_AFTER}",
        ),
    ]


class System:
    """The flows service's ``system.status``."""

    def __init__(self, reporter: StatusReporter) -> None:
        self._reporter = reporter

    async def status(self, req: SystemStatusRequest) -> ServiceStatus:
        """Report flows' status for the caller's workspace (admins only)."""
        return await self._reporter.report(req.ctx, checks)
