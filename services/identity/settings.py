"""Identity's own settings, beside the ones every service reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from libs.common.config import ServiceOptions
from libs.common.runtime import SealedServiceSettings


class IdentityOptions(ServiceOptions):
    """Identity's tunables (``TETHER_*``)."""

    workspace_cache_ttl: float = Field(default=30.0, ge=0)
    customer_cache_ttl: float = Field(
        default=60.0, ge=0, description="Seconds a hot customer is served from memory"
    )
    customer_cache_size: int = Field(default=100_000, ge=0)


@dataclass(frozen=True)
class IdentitySettings(SealedServiceSettings):
    """Everything the identity process reads."""

    options: IdentityOptions = field(default_factory=IdentityOptions)
