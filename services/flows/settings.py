"""Flows' own settings, beside the ones every service reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from libs.common.config import ServiceOptions
from libs.common.runtime import ServiceSettings
from services.flows.triggers.settings import TriggerOptions


class FlowsOptions(ServiceOptions):
    """Flows' tunables (``TETHER_*``): how runs are queued, executed, limited and kept."""

    runs_per_connection: int = Field(
        default=1, ge=1, le=1000, description="Runs of one connection that execute at once"
    )
    run_queue_limit: int = Field(
        default=10_000, ge=1, description="Queued runs per connection before new ones get 429"
    )
    run_workers: int = Field(default=16, ge=0, description="Runs executed at once per replica")
    run_lease: float = Field(
        default=30.0, gt=0, description="Seconds a dead replica's run waits before another takes it"
    )
    run_max_attempts: int = Field(
        default=10, ge=1, description="Claims of one run's job (crashes included) before it fails"
    )
    run_poll_interval: float = Field(default=1.0, gt=0, description="Idle workers look this often")
    run_max_seconds: float = Field(
        default=3000.0, gt=0, description="Time a run may spend in its nodes (delays excluded)"
    )
    node_output_limit: int = Field(
        default=1 << 20, ge=1, description="Bytes of JSON a node's output may have"
    )
    max_nodes_per_run: int = Field(
        default=10_000, ge=1, description="Node executions per run (for-each items included)"
    )
    node_request_timeout: float = Field(
        default=30.0, gt=0, description="Seconds one outbound call of a node may take"
    )
    retry_inline_max: float = Field(
        default=10.0,
        ge=0,
        description="A node retry waiting longer than this frees its worker (a continuation job)",
    )
    run_retention_days: int = Field(
        default=30, ge=0, description="Days a run's node inputs and outputs are kept"
    )
    run_retention_interval: float = Field(
        default=3600.0, gt=0, description="Seconds between retention sweeps"
    )
    run_customer_ttl: float = Field(
        default=30.0, ge=0, description="Seconds a run's customer (name, fields) is reused"
    )
    allow_private_urls: bool = Field(
        default=False, description="Let http-request nodes call private and loopback addresses"
    )


@dataclass(frozen=True)
class FlowsSettings:
    """Everything the flows process reads."""

    service: ServiceSettings
    options: FlowsOptions = field(default_factory=FlowsOptions)
    triggers: TriggerOptions = field(default_factory=TriggerOptions)

    @classmethod
    def from_env(cls) -> FlowsSettings:
        """Read every concern from ``TETHER_*`` variables."""
        return cls(service=ServiceSettings.from_env())
