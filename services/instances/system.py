"""Answer ``tether.instances.system.status``: deployments, action runs and syncs that failed.

Three checks of the caller's workspace:

* ``deployments_in_error``: connections (not archived) whose latest deployment failed or
  only partly succeeded — what a redeploy would fix; an older failure a newer deployment
  superseded is not counted;
* ``action_runs_failed``: action runs that ended in error in the last 24 hours;
* ``sync_passes_failed``: sync passes that failed in the last 24 hours.
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

DEPLOYMENTS_IN_ERROR_SQL = f"""
SELECT count(*) AS n, (array_agg(id::text ORDER BY created_at DESC))[1:{SAMPLE_SIZE}] AS sample
FROM (
    SELECT DISTINCT ON (d.connection_id) d.id, d.status, d.created_at
    FROM deployments d
    LEFT JOIN known_connections k ON k.workspace_id = d.workspace_id AND k.id = d.connection_id
    WHERE d.workspace_id = $1 AND coalesce(k.state, '') <> 'archived'
    ORDER BY d.connection_id, d.created_at DESC
) latest
WHERE status IN ('failed', 'partial')
"""
ACTION_RUNS_FAILED_SQL = f"""
SELECT count(*) AS n, (array_agg(id::text ORDER BY started_at DESC))[1:{SAMPLE_SIZE}] AS sample
FROM action_runs
WHERE workspace_id = $1 AND started_at > now() - interval '24 hours' AND status = 'error'
"""
SYNC_PASSES_FAILED_SQL = f"""
SELECT count(*) AS n,
       (array_agg(instance_id::text ORDER BY started_at DESC))[1:{SAMPLE_SIZE}] AS sample
FROM sync_passes
WHERE workspace_id = $1 AND started_at > now() - interval '24 hours' AND status = 'failed'
"""


async def checks(conn: Conn, workspace_id: UUID) -> list[StatusCheck]:
    """Return the workspace's deployment, action-run and sync checks."""
    return [
        await count_check(
            conn,
            workspace_id,
            "deployments_in_error",
            DEPLOYMENTS_IN_ERROR_SQL,
            lambda n: f"{plural(n, 'deployment')} in error",
        ),
        await count_check(
            conn,
            workspace_id,
            "action_runs_failed",
            ACTION_RUNS_FAILED_SQL,
            lambda n: f"{plural(n, 'action run')} failed in the last 24 h",
        ),
        await count_check(
            conn,
            workspace_id,
            "sync_passes_failed",
            SYNC_PASSES_FAILED_SQL,
            lambda n: f"{plural(n, 'sync pass', 'sync passes')} failed in the last 24 h",
        ),
    ]


class System:
    """The instances service's ``system.status``."""

    def __init__(self, reporter: StatusReporter) -> None:
        self._reporter = reporter

    async def status(self, req: SystemStatusRequest) -> ServiceStatus:
        """Report instances' status for the caller's workspace (admins only)."""
        return await self._reporter.report(req.ctx, checks)
