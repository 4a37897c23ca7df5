"""Identity's own settings, beside the ones every service reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.config import CryptoSettings
from libs.common.runtime import ServiceSettings


class IdentityOptions(BaseSettings):
    """Identity's tunables (``TETHER_*``)."""

    model_config = SettingsConfigDict(env_prefix="TETHER_", extra="ignore", frozen=True)

    secret_grace: float = Field(
        default=24 * 3600, ge=0, description="Seconds an old secret still verifies"
    )
    workspace_cache_ttl: float = Field(default=30.0, ge=0)
    customer_cache_ttl: float = Field(
        default=60.0, ge=0, description="Seconds a hot customer is served from memory"
    )
    customer_cache_size: int = Field(default=100_000, ge=0)


@dataclass(frozen=True)
class IdentitySettings:
    """Everything the identity process reads."""

    service: ServiceSettings
    crypto: CryptoSettings
    options: IdentityOptions = field(default_factory=IdentityOptions)

    @classmethod
    def from_env(cls) -> IdentitySettings:
        """Read every concern from the environment."""
        return cls(service=ServiceSettings.from_env(), crypto=CryptoSettings())
