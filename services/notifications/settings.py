"""Notifications' own settings, beside the ones every service reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from pydantic import Field, model_validator

from libs.common.config import ServiceOptions
from libs.common.runtime import SealedServiceSettings
from libs.common.ssrf import UrlPolicy

DAY = 24 * 3600.0


class NotificationsOptions(ServiceOptions):
    """Notifications' tunables (``TETHER_*``)."""

    allow_private_urls: bool = Field(
        default=False,
        description="Allow endpoints on loopback/private addresses, and plain http (labs, tests)",
    )
    delivery_workers: int = Field(
        default=32, ge=0, description="Deliveries sent at once per replica"
    )
    endpoint_concurrency: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="Deliveries in flight at once per endpoint (keep under delivery_workers: "
        "a dead endpoint holds at most this many workers)",
    )
    delivery_timeout: float = Field(default=15.0, gt=0, description="Seconds an attempt may take")
    delivery_schedule: tuple[float, ...] = Field(
        default=(0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),
        min_length=1,
        max_length=50,
        description="Seconds before each attempt, the first included (JSON list)",
    )
    delivery_lease: float = Field(default=30.0, gt=0, description="Seconds a worker holds a job")
    delivery_poll_interval: float = Field(default=1.0, gt=0)
    endpoint_disable_after: float = Field(
        default=5 * DAY, gt=0, description="Seconds of failing every attempt before disabling"
    )
    secret_overlap: float = Field(
        default=DAY, ge=0, description="Seconds the previous secret signs after a rotation"
    )
    delivery_retention_days: int = Field(default=30, ge=1, le=3650)
    retention_sweep_interval: float = Field(default=3600.0, gt=0)
    replay_max: int = Field(default=10_000, ge=1, description="Deliveries one replay may queue")

    def url_policy(self) -> UrlPolicy:
        """Return where endpoints may point: https to public addresses unless allowed."""
        return UrlPolicy(allow_private=self.allow_private_urls, require_https=True)

    @model_validator(mode="after")
    def _room_beside_a_dead_endpoint(self) -> Self:
        # A dead endpoint holds up to endpoint_concurrency workers for a whole timeout each:
        # with no worker left over, every other endpoint would wait behind it.
        if 0 < self.delivery_workers <= self.endpoint_concurrency:
            raise ValueError(
                "TETHER_ENDPOINT_CONCURRENCY must be below TETHER_DELIVERY_WORKERS, "
                "or one dead endpoint can hold every worker"
            )
        return self


@dataclass(frozen=True)
class NotificationsSettings(SealedServiceSettings):
    """Everything the notifications process reads."""

    options: NotificationsOptions = field(default_factory=NotificationsOptions)
