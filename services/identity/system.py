"""Answer ``tether.identity.system.status``: the figures every service reports.

Identity keeps nothing of a workspace's that can fail on its own (workspaces, keys and
customers change only when asked), so it adds no checks of its own.
"""

from __future__ import annotations

from uuid import UUID

from libs.common.contracts.system import ServiceStatus, StatusCheck, SystemStatusRequest
from libs.common.db import Conn
from libs.common.system_status import StatusReporter


async def checks(_: Conn, __: UUID) -> list[StatusCheck]:
    """Return identity's checks of a workspace: none."""
    return []


class System:
    """The identity service's ``system.status``."""

    def __init__(self, reporter: StatusReporter) -> None:
        self._reporter = reporter

    async def status(self, req: SystemStatusRequest) -> ServiceStatus:
        """Report identity's status for the caller's workspace (admins only)."""
        return await self._reporter.report(req.ctx, checks)
