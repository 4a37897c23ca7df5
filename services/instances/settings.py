"""Instances' own settings, beside the ones every service reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.config import CryptoSettings
from libs.common.runtime import ServiceSettings


class InstancesOptions(BaseSettings):
    """Instances' tunables (``TETHER_*``)."""

    model_config = SettingsConfigDict(env_prefix="TETHER_", extra="ignore", frozen=True)

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
class InstancesSettings:
    """Everything the instances process reads."""

    service: ServiceSettings
    crypto: CryptoSettings
    options: InstancesOptions = field(default_factory=InstancesOptions)

    @classmethod
    def from_env(cls) -> InstancesSettings:
        """Read every concern from the environment."""
        return cls(service=ServiceSettings.from_env(), crypto=CryptoSettings())
