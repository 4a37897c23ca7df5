"""The triggers' tunables (``TETHER_*``), beside the flows service's own options."""

from __future__ import annotations

from pydantic import Field

from libs.common.config import ServiceOptions


class TriggerOptions(ServiceOptions):
    """How often the scheduler looks for due ticks and for changed schedules."""

    schedule_poll_interval: float = Field(
        default=1.0, gt=0, description="Seconds between looks for due schedule ticks"
    )
    schedule_reconcile_interval: float = Field(
        default=10.0,
        gt=0,
        description="Seconds until a new, changed, disabled or archived schedule is noticed",
    )
    schedule_batch: int = Field(default=100, ge=1, description="Due ticks started per transaction")
