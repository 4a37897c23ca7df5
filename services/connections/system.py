"""Answer ``tether.connections.system.status``: connections in error, the soonest expiry.

Two checks of the caller's workspace, from one query:

* ``connections_in_error``: connections whose renewal kept failing (state ``error``);
* ``token_expiry``: the soonest expiry among the tokens Tether renews (connected, with a
  renewal scheduled). A token already past its expiry there means renewals are behind:
  that is the problem; the soonest expiry itself is reported as ``at``.
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
from libs.common.system_status import StatusReporter, plural

CONNECTIONS_CHECK_SQL = f"""
SELECT count(*) FILTER (WHERE state = 'error') AS in_error,
       (array_agg(id::text ORDER BY updated_at DESC)
           FILTER (WHERE state = 'error'))[1:{SAMPLE_SIZE}] AS error_sample,
       min(expires_at) FILTER (WHERE renews) AS soonest,
       count(*) FILTER (WHERE renews AND expires_at < now()) AS expired,
       (array_agg(id::text ORDER BY expires_at)
           FILTER (WHERE renews AND expires_at < now()))[1:{SAMPLE_SIZE}] AS expired_sample
FROM (
    SELECT id, state, updated_at, expires_at,
           state = 'connected' AND refresh_due_at IS NOT NULL AND expires_at IS NOT NULL AS renews
    FROM connections WHERE workspace_id = $1 AND state IN ('connected', 'error')
) c
"""


async def checks(conn: Conn, workspace_id: UUID) -> list[StatusCheck]:
    """Return the workspace's connection checks: in error, and the soonest token expiry."""
    row = await conn.fetchrow(CONNECTIONS_CHECK_SQL, workspace_id)
    assert row is not None  # an aggregate always returns a row
    in_error, expired, soonest = row["in_error"], row["expired"], row["soonest"]
    if expired:
        expiry = f"{plural(expired, 'connection')} with an expired token: renewals are behind"
    elif soonest is not None:
        expiry = f"the soonest token expiry is {soonest.isoformat(timespec='seconds')}"
    else:
        expiry = "no connection holds a token that Tether renews"
    return [
        StatusCheck(
            key="connections_in_error",
            ok=not in_error,
            count=in_error,
            summary=f"{plural(in_error, 'connection')} in error",
            sample=row["error_sample"] or [],
        ),
        StatusCheck(
            key="token_expiry",
            ok=not expired,
            count=expired,
            summary=expiry,
            at=soonest,
            sample=row["expired_sample"] or [],
        ),
    ]


class System:
    """The connections service's ``system.status``."""

    def __init__(self, reporter: StatusReporter) -> None:
        self._reporter = reporter

    async def status(self, req: SystemStatusRequest) -> ServiceStatus:
        """Report connections' status for the caller's workspace (admins only)."""
        return await self._reporter.report(req.ctx, checks)
