"""Instances' own settings, beside the ones every service reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from libs.common.config import ServiceOptions
from libs.common.jobs import QueueOptions
from libs.common.runtime import SealedServiceSettings


class InstancesOptions(ServiceOptions):
    """Instances' tunables (``TETHER_*``)."""

    public_url: str = Field(default="http://127.0.0.1:8080", description="Where apps send webhooks")
    deploy_workers: int = Field(default=8, ge=0, description="Steps run at once per replica")
    step_lease: float = Field(default=60.0, gt=0, description="Seconds a worker holds a step")
    step_max_attempts: int = Field(default=5, ge=1)
    step_backoff_base: float = Field(default=1.0, gt=0, description="Seconds; doubles per attempt")
    step_backoff_cap: float = Field(default=60.0, gt=0)
    deploy_poll_interval: float = Field(default=0.5, gt=0)
    app_call_timeout: float = Field(
        default=30.0, gt=0, description="Seconds a call to an app may take"
    )
    # Action runs: how long one may wait, and what their log keeps for how long.
    action_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a run may wait for the app (then 504)"
    )
    action_output_limit: int = Field(
        default=1024 * 1024, ge=0, description="Bytes of a run's output kept in the run log"
    )
    action_run_retention_days: int = Field(
        default=30, ge=0, description="Days a run's input and output are kept"
    )
    webhook_dedupe_days: int = Field(
        default=30,
        ge=1,
        description="Days an inbound delivery id is remembered (longer than any app redelivers)",
    )
    action_run_retention_interval: float = Field(
        default=3600.0, gt=0, description="Seconds between action-run retention sweeps"
    )
    # Syncs: how passes are run (jobs of queue ``syncs``) and scheduled.
    sync_workers: int = Field(default=2, ge=0, description="Passes run at once per replica")
    sync_lease: float = Field(default=30.0, gt=0, description="Seconds a worker holds a pass")
    sync_max_attempts: int = Field(default=5, ge=1)
    sync_backoff_base: float = Field(default=1.0, gt=0)
    sync_backoff_cap: float = Field(default=60.0, gt=0)
    sync_poll_interval: float = Field(default=1.0, gt=0)
    sync_schedule_interval: float = Field(
        default=10.0, gt=0, description="Seconds between looks for due scheduled syncs"
    )
    sync_schedule_batch: int = Field(default=500, ge=1)
    # Inbound webhooks: accepted into TETHER_INBOUND, handled by a durable consumer.
    webhook_route_cache_ttl: float = Field(
        default=30.0,
        ge=0,
        description=(
            "Seconds a replica trusts a webhook URL's subscription and app-event type from "
            "memory; bounds how long a missed change notice can route to a stale one (0: off)"
        ),
    )
    webhook_route_cache_size: int = Field(
        default=10_000, ge=0, description="Webhook subscriptions a replica keeps in memory"
    )
    inbound_duplicate_window: float = Field(
        default=600.0,
        gt=0,
        description=(
            "Seconds JetStream recognises a repeated delivery id at once (answered "
            "duplicate); later repeats are dropped by the consumer (webhook_deliveries)"
        ),
    )
    inbound_max_age: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="Seconds an accepted delivery may wait in TETHER_INBOUND to be handled",
    )
    inbound_ack_wait: float = Field(
        default=30.0,
        gt=0,
        description="Seconds before a delivery a replica took but never settled goes to another",
    )

    def sync_queue(self) -> QueueOptions:
        """Return the ``syncs`` queue's options: one pass at a time per instance."""
        return QueueOptions(
            lease=self.sync_lease,
            partition_limit=1,
            backoff_base=self.sync_backoff_base,
            backoff_cap=self.sync_backoff_cap,
            poll_interval=self.sync_poll_interval,
        )


@dataclass(frozen=True)
class InstancesSettings(SealedServiceSettings):
    """Everything the instances process reads."""

    options: InstancesOptions = field(default_factory=InstancesOptions)
