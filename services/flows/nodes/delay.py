"""The ``delay`` node: continue after a while; the runner waits durably, holding no worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Self

from pydantic import Field, model_validator

from services.flows.nodes.base import NodeCall, NodeConfig, NodeError, NodeResult, NodeType

MAX_DELAY = timedelta(days=30)


class DelayConfig(NodeConfig):
    """Wait ``seconds``, or until the time ``until``, before the next node."""

    seconds: float | None = Field(default=None, ge=1, le=MAX_DELAY.total_seconds())
    until: datetime | None = Field(default=None, description="ISO 8601; UTC when no offset")

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("give either seconds or until")
        return self


class Delay(NodeType):
    """Pause the run."""

    name = "delay"
    config = DelayConfig
    docs = (
        "Pauses the run before the nodes after it. Config: either `seconds` (1 to 2,592,000, "
        'that is 30 days; may be an expression such as `{"$expr": "input.waitSeconds"}`) '
        "or `until` (an ISO 8601 time such as `2026-05-01T09:00:00+02:00`, UTC when it has "
        "no offset; may be an expression). A waiting run holds no worker, survives restarts "
        "and does not count towards the run's duration limit; stopping the run ends the "
        "wait at once. A time already past does not wait. Output: `{until}`, the time the "
        "run continues. Errors: `delay_too_long` when `until` is more than 30 days away."
    )

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Return the time to continue at; the runner does the waiting."""
        assert isinstance(config, DelayConfig)
        now = datetime.now(UTC)
        if config.seconds is not None:
            until = now + timedelta(seconds=config.seconds)
        else:
            assert config.until is not None
            until = config.until if config.until.tzinfo else config.until.replace(tzinfo=UTC)
            if until - now > MAX_DELAY:
                raise NodeError(
                    "delay_too_long",
                    f"until {until.isoformat()} is more than {MAX_DELAY.days} days away",
                )
        output = {"until": max(until, now).isoformat()}
        return NodeResult(output=output, wait_until=until if until > now else None)
