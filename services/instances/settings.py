"""Instances' own settings, beside the ones every service reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from libs.common.config import ServiceOptions
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


@dataclass(frozen=True)
class InstancesSettings(SealedServiceSettings):
    """Everything the instances process reads."""

    options: InstancesOptions = field(default_factory=InstancesOptions)
