"""The system status every service answers, and the overview the gateway builds from it.

``tether.<service>.system.status`` answers one replica's view of its service, for an
admin of a workspace (or a system caller naming one), in two parts:

* figures about the machinery that carry no tenant data and read the same for every
  caller: the outbox backlog, the service's durable consumers in JetStream, its job
  queues;
* figures about the caller's workspace only: its dead-lettered events and the service's
  ``checks`` (connections in error, failed runs, disabled endpoints, …). Nothing in them
  ever names or counts another workspace's objects.

``problems`` words what needs attention in sentences ("3 runs failed in the last 24 h").

``GET /system/status`` (the gateway, :class:`SystemStatus`) asks every service at once
and adds the replicas each one runs, from nats.micro's ``$SRV.INFO`` and ``$SRV.STATS``.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from libs.common.contracts.base import Operation, Reply, Request

SAMPLE_SIZE = 5
"""Ids a check lists at most (the console links them; the count says how many there are)."""


class SystemStatusRequest(Request):
    """Ask a service for its status and its checks of the caller's workspace."""


class OutboxBacklog(Reply):
    """The service's events written but not yet published to JetStream (all workspaces)."""

    pending: int = Field(description="Rows not yet published")
    lag_seconds: float = Field(description="Age of the oldest unpublished row; 0 when none")


class ConsumerLag(Reply):
    """One durable JetStream consumer of the service, as JetStream counts it."""

    consumer: str = Field(description="The durable consumer's name")
    pending: int = Field(description="Messages in the stream not yet delivered to it")
    ack_pending: int = Field(description="Messages delivered and not yet acknowledged")
    redelivered: int = Field(description="Messages delivered more than once, not yet acked")


class JobQueue(Reply):
    """One job queue of the service (all workspaces)."""

    queue: str
    due: int = Field(description="Pending jobs whose not-before time has come")
    running: int = Field(description="Jobs a worker holds a lease on")
    lag_seconds: float = Field(
        description="How long the oldest due job has waited past its not-before time"
    )


class DeadLetterCount(Reply):
    """The caller's workspace's events the service's consumers failed on."""

    given_up: int = Field(description="Events a consumer gave up on (`tether dead-letters`)")
    retrying: int = Field(description="Events that failed and will be tried again")


class StatusCheck(Reply):
    """One check of the caller's workspace (``ok`` false: ``summary`` says what is wrong)."""

    key: str = Field(description="What is checked, e.g. `connections_in_error`")
    ok: bool
    count: int = Field(description="How many objects the check found")
    summary: str = Field(description="One sentence, e.g. `1 connection in error`")
    at: datetime | None = Field(
        default=None, description="The moment the check is about (e.g. the soonest expiry)"
    )
    sample: list[str] = Field(
        default_factory=list, description="Ids of some of the objects found (at most 5)"
    )


class ServiceStatus(Reply):
    """One replica's status of its service, with the checks of the caller's workspace."""

    service: str
    instance: str = Field(description="The replica that answered (its nats.micro id)")
    version: str
    time: datetime
    ok: bool = Field(description="False when ``problems`` is not empty")
    problems: list[str] = Field(description="What needs attention, one sentence each")
    outbox: OutboxBacklog
    consumers: list[ConsumerLag]
    jobs: list[JobQueue]
    dead_letters: DeadLetterCount
    checks: list[StatusCheck]


def system_status_operation(service: str) -> Operation[SystemStatusRequest, ServiceStatus]:
    """Return the ``system.status`` operation of ``service``."""
    return Operation(
        f"tether.{service}.system.status",
        SystemStatusRequest,
        ServiceStatus,
        f"Report the {service} service's status and its checks of the caller's workspace",
    )


class Replica(Reply):
    """One running replica of a service, as it describes itself to nats.micro."""

    id: str
    version: str
    started: datetime | None = Field(default=None, description="When it started serving")
    requests: int | None = Field(
        default=None, description="Requests its endpoints received since it started"
    )


class ServiceOverview(Reply):
    """A service in the system overview: its replicas and its status."""

    ok: bool = Field(description="It answered and reported no problem")
    replicas: list[Replica]
    versions: list[str] = Field(description="The distinct versions its replicas run")
    status: ServiceStatus | None = Field(description="None when no replica answered")
    error: str | None = Field(default=None, description="Why there is no status")


class SystemStatus(Reply):
    """Every service's replicas and status, with the checks of the caller's workspace."""

    ok: bool = Field(description="Every service answered and none reported a problem")
    checked_at: datetime
    workspace_id: UUID = Field(description="The workspace the checks are about")
    problems: list[str] = Field(description="`<service>: <what needs attention>`, one each")
    services: dict[str, ServiceOverview]
