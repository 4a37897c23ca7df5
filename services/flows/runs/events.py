"""Announce a run's state changes: ``flow_run.queued/started/completed/failed/stopped``.

Each event is written to the outbox in the transaction that changes the state, so it is
published exactly when that change commits (see ``libs/common/outbox.py``).
"""

from __future__ import annotations

from libs.common.contracts import flows as c
from libs.common.contracts.base import EventType
from libs.common.db import Conn
from libs.common.outbox import emit
from services.flows.runs.store import RunRow

EVENT_OF_STATE: dict[c.RunState, EventType[c.FlowRunEvent]] = {
    "queued": c.FLOW_RUN_QUEUED,
    "running": c.FLOW_RUN_STARTED,
    "completed": c.FLOW_RUN_COMPLETED,
    "failed": c.FLOW_RUN_FAILED,
    "stopped": c.FLOW_RUN_STOPPED,
}


async def announce(conn: Conn, row: RunRow) -> None:
    """Emit the event of the state ``row`` is in now (a failed run's last error says why)."""
    await emit(
        conn,
        EVENT_OF_STATE[row.state],
        c.FlowRunEvent(
            workspace_id=row.workspace_id,
            flow_run_id=row.id,
            flow_instance_id=row.flow_instance_id,
            flow_id=row.flow_id,
            connection_id=row.connection_id,
            customer_id=row.customer_id,
            state=row.state,
            trigger_type=row.trigger.type,
            error=row.errors[-1] if row.state == "failed" and row.errors else None,
        ),
    )
