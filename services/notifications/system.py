"""Answer ``tether.notifications.system.status``: endpoints disabled or failing.

Three checks of the caller's workspace:

* ``endpoints_disabled``: endpoints Tether disabled (gone, or failing for too long);
  an endpoint an admin switched off is not a problem;
* ``endpoints_failing``: enabled endpoints whose deliveries keep failing;
* ``deliveries_failed``: deliveries that ran out of attempts in the last 24 hours.
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

ENDPOINTS_DISABLED_SQL = f"""
SELECT count(*) AS n, (array_agg(id::text ORDER BY updated_at DESC))[1:{SAMPLE_SIZE}] AS sample
FROM endpoints
WHERE workspace_id = $1 AND deleted_at IS NULL AND NOT enabled AND disabled_reason IS NOT NULL
"""
ENDPOINTS_FAILING_SQL = f"""
SELECT count(*) AS n, (array_agg(id::text ORDER BY failing_since))[1:{SAMPLE_SIZE}] AS sample
FROM endpoints
WHERE workspace_id = $1 AND deleted_at IS NULL AND enabled AND failing_since IS NOT NULL
"""
DELIVERIES_FAILED_SQL = f"""
SELECT count(*) AS n, (array_agg(id ORDER BY updated_at DESC))[1:{SAMPLE_SIZE}] AS sample
FROM deliveries
WHERE workspace_id = $1 AND status = 'failed' AND updated_at > now() - interval '24 hours'
"""


async def checks(conn: Conn, workspace_id: UUID) -> list[StatusCheck]:
    """Return the workspace's endpoint and delivery checks."""
    return [
        await count_check(
            conn,
            workspace_id,
            "endpoints_disabled",
            ENDPOINTS_DISABLED_SQL,
            lambda n: f"{plural(n, 'webhook endpoint')} disabled by Tether",
        ),
        await count_check(
            conn,
            workspace_id,
            "endpoints_failing",
            ENDPOINTS_FAILING_SQL,
            lambda n: f"{plural(n, 'webhook endpoint')} failing",
        ),
        await count_check(
            conn,
            workspace_id,
            "deliveries_failed",
            DELIVERIES_FAILED_SQL,
            lambda n: (
                f"{plural(n, 'webhook delivery', 'webhook deliveries')} failed in the last 24 h"
            ),
        ),
    ]


class System:
    """The notifications service's ``system.status``."""

    def __init__(self, reporter: StatusReporter) -> None:
        self._reporter = reporter

    async def status(self, req: SystemStatusRequest) -> ServiceStatus:
        """Report notifications' status for the caller's workspace (admins only)."""
        return await self._reporter.report(req.ctx, checks)
