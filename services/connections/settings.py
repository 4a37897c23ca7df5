"""Connections' own settings, beside the ones every service reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from libs.common.config import ServiceOptions
from libs.common.runtime import SealedServiceSettings


class ConnectionsOptions(ServiceOptions):
    """Connections' tunables (``TETHER_*``)."""

    public_url: str = Field(
        default="http://127.0.0.1:8080", description="Base URL the browser reaches the gateway at"
    )
    refresh_margin: float = Field(
        default=600.0,
        ge=0,
        description="Refresh this many seconds before expiry (at most half the lifetime)",
    )
    refresh_workers: int = Field(
        default=8, ge=0, description="Background refreshes at once per replica"
    )
    refresh_poll_interval: float = Field(default=1.0, gt=0)
    refresh_max_failures: int = Field(
        default=5, ge=1, description="Consecutive failures before 'error'"
    )
    refresh_backoff_base: float = Field(
        default=2.0, gt=0, description="Seconds; doubles per failure"
    )
    refresh_backoff_cap: float = Field(default=600.0, gt=0)
    check_interval: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds between test requests for tokens that never say when they expire",
    )
    connect_session_ttl: float = Field(default=900.0, gt=0)
    http_timeout: float = Field(default=20.0, gt=0)
    proxy_max_retry_after: float = Field(
        default=5.0, ge=0, description="Longest Retry-After the proxy waits out"
    )
    credentials_cache_ttl: float = Field(
        default=30.0,
        ge=0,
        description=(
            "Seconds a replica answers a connection's credentials from memory at most (also "
            "never past their renewal time); bounds how long a missed change event can serve "
            "stale credentials. 0 turns the cache off"
        ),
    )
    credentials_cache_size: int = Field(
        default=10_000, ge=0, description="Connections whose sealed credentials a replica keeps"
    )


@dataclass(frozen=True)
class ConnectionsSettings(SealedServiceSettings):
    """Everything the connections process reads."""

    options: ConnectionsOptions = field(default_factory=ConnectionsOptions)
