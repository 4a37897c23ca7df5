"""Read typed settings from ``TETHER_*`` environment variables, one class per concern."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_ENV = SettingsConfigDict(env_prefix="TETHER_", extra="ignore", frozen=True)


class ServiceOptions(BaseSettings):
    """Base of a service's own tunables: read from ``TETHER_*``, unknown variables ignored."""

    model_config = _ENV


class DatabaseSettings(BaseSettings):
    """Where PostgreSQL is and how big a service's pool is."""

    model_config = _ENV

    database_url: str = Field(description="PostgreSQL DSN, e.g. postgresql://user@host:5432/db")
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=20, ge=1, description="Size to the expected concurrency")


class BusSettings(BaseSettings):
    """Where NATS is and how long calls wait."""

    model_config = _ENV

    nats_url: str = Field(description="NATS server URL(s), comma separated")
    call_timeout: float = Field(default=10.0, gt=0, description="Seconds a bus call waits")
    events_replicas: int = Field(
        default=1, ge=1, le=5, description="JetStream replicas of TETHER_EVENTS"
    )


class LogSettings(BaseSettings):
    """How log lines look."""

    model_config = _ENV

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"


class CryptoSettings(BaseSettings):
    """Master keys for envelope encryption: ``kid:base64key,...`` (first is active)."""

    model_config = _ENV

    master_keys: SecretStr


class RuntimeSettings(BaseSettings):
    """How a service process runs: health port, shutdown deadline, event loop."""

    model_config = _ENV

    health_port: int | None = Field(default=None, description="Serve /healthz and /readyz here")
    health_host: str = "127.0.0.1"
    shutdown_grace: float = Field(
        default=10.0, gt=0, description="Seconds to finish in-flight work"
    )
    uvloop: bool = Field(default=True, description="Use uvloop when installed")
    outbox_sweep_interval: float = Field(default=1.0, gt=0)
    event_max_attempts: int = Field(
        default=10, ge=1, le=1000, description="Times a consumer tries an event before giving up"
    )
    event_backoff: tuple[float, ...] = Field(
        default=(1.0, 5.0, 30.0, 120.0, 600.0, 1800.0),
        min_length=1,
        description="Seconds before each retry of an event (JSON list; the last repeats)",
    )


class GatewaySettings(BaseSettings):
    """The public HTTP edge."""

    # populate_by_name: ``metrics_port`` is read from its own variable (below) yet set by name.
    model_config = SettingsConfigDict(**_ENV, populate_by_name=True)

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    token_cache_size: int = Field(default=10_000, ge=0)
    token_cache_ttl: float = Field(default=60.0, ge=0)
    verification_keys_cache_size: int = Field(
        default=10_000, ge=0, description="Workspaces whose token verification keys are kept"
    )
    verification_keys_ttl: float = Field(
        default=60.0,
        ge=0,
        description="Seconds a workspace's verification keys are kept (dropped on workspace.updated)",
    )
    known_customers_cache_size: int = Field(
        default=50_000,
        ge=0,
        description="Customers whose token claims identity already holds (no call for their tokens)",
    )
    known_customers_ttl: float = Field(
        default=60.0,
        ge=0,
        description="Seconds a customer's claims are known without asking identity (dropped on changes)",
    )
    kept_replies_cache_size: int = Field(
        default=50_000,
        ge=0,
        description="Replies kept per replica for hot reads (/customers/me, credentials); 0: none",
    )
    kept_replies_ttl: float = Field(
        default=60.0,
        ge=0,
        description="Longest a kept reply is answered again (dropped earlier by its events)",
    )
    public_url: str | None = Field(default=None, description="Base URL the world sees")
    metrics_port: int | None = Field(
        default=None,
        validation_alias="TETHER_GATEWAY_METRICS_PORT",
        description="Serve /metrics and /healthz on this port (health host), never the public one",
    )


class StackSettings(BaseSettings):
    """What ``tether up`` runs: embedded infrastructure unless URLs are given."""

    model_config = _ENV

    home: Path = Path(".tether")
    database_url: str | None = None
    nats_url: str | None = None
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    master_keys: SecretStr | None = None


SERVICES: tuple[str, ...] = ("identity", "connections", "instances", "flows", "notifications")
"""The back-end services, in start order; the gateway starts after them."""
