"""Define what every contract shares: the model base, the request context, subjects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from libs.common.errors import Forbidden, Unauthenticated


class Contract(BaseModel):
    """Base of every request, reply and event: immutable, strict about extra keys, camelCase."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


# Bounded integers: a number past what its column or its arithmetic holds is a 422 naming
# the field, not a DataError or OverflowError deep in a service (the gateway refuses
# integers beyond 64 bits anywhere; these bound the fields that need less).
INT32_MAX = 2**31 - 1

Revision = Annotated[int, Field(ge=1, le=INT32_MAX)]
"""A revision number: 1, 2, … as an ``integer`` column holds it."""

Seconds = Annotated[int, Field(le=INT32_MAX)]
"""A duration in seconds, at most ~68 years, so ``now + timedelta(seconds=…)`` and
PostgreSQL's ``interval`` stay in range. Each field sets its own lower bound (a ``ge`` given
beside an Annotated bound would be overridden by it, so this type sets none)."""


# What Tether later sends to an app must be sendable: a request line or header carries no
# control characters (aiohttp refuses to write them), so they are refused when saved.
AppPath = Annotated[str, Field(max_length=4096, pattern=r"^/[^\x00-\x1f\x7f]*$")]
"""A path on an app's API (``/me``, ``/hooks/{subscriptionId}``)."""

AppUrl = Annotated[str, Field(max_length=4096, pattern=r"^https?://[^\x00-\x20\x7f]+$")]
"""An absolute http(s) URL of an app: no spaces, no control characters."""

HeaderName = Annotated[str, Field(max_length=256, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
"""An HTTP header name (an RFC 9110 token)."""

HeaderValue = Annotated[str, Field(max_length=8192, pattern=r"^[^\x00-\x08\x0a-\x1f\x7f]*$")]
"""An HTTP header value (tabs allowed, no other control characters)."""


def not_null(value: Any) -> Any:
    """Refuse an explicit ``null`` (a ``mode="before"`` field validator of PATCH requests).

    Such fields are optional only so that they can be left out (kept as they are); what
    they change cannot be empty, so ``null`` is refused by name instead of failing later.
    """
    if value is None:
        raise ValueError("leave the field out to keep its value; it cannot be null")
    return value


Key = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
"""A workspace-chosen key of a definition (an integration, a flow element, a data source)."""

Name = Annotated[str, Field(min_length=1, max_length=200)]
"""A human-readable name of something the workspace defines (shown, never parsed)."""


Principal = Literal["admin", "customer", "system", "anonymous"]


class Context(Contract):
    """Who asks and in which workspace; every request carries one."""

    workspace_id: UUID | None = None
    principal: Principal = "anonymous"
    customer_id: str | None = None
    request_id: str = ""

    def workspace(self) -> UUID:
        """Return the workspace id, or refuse a caller that has none."""
        if self.workspace_id is None:
            raise Unauthenticated("this operation needs a workspace")
        return self.workspace_id

    def admin_workspace(self) -> UUID:
        """Return the workspace id for an admin (or system) caller; refuse anyone else."""
        if self.principal not in ("admin", "system"):
            raise Forbidden("this operation needs an admin token", code="admin_required")
        return self.workspace()

    def customer(self) -> str:
        """Return the customer id of a customer caller; refuse anyone else."""
        if self.principal != "customer" or not self.customer_id:
            raise Forbidden("this operation needs a customer token", code="customer_required")
        return self.customer_id

    def sees(self, customer_id: str | None) -> bool:
        """Tell whether this caller may see something owned by ``customer_id``.

        The one visibility rule: admins and services see their whole workspace; a customer
        sees only what is theirs (and nothing that belongs to no customer).
        """
        if self.principal in ("admin", "system"):
            return True
        return (
            self.principal == "customer"
            and customer_id is not None
            and (customer_id == self.customer_id)
        )

    def customer_filter(self, requested: str | None) -> tuple[str | None, bool]:
        """Return (the customer to list for, whether anything may be seen at all).

        A customer lists only their own (asking for another sees nothing); an admin lists
        whom they ask for (None: everyone). Anyone else is refused.
        """
        if self.principal == "customer":
            own = self.customer()
            return own, requested in (None, own)
        self.admin_workspace()
        return requested, True

    def require_system(self) -> None:
        """Refuse anyone but an operator or another service."""
        if self.principal != "system":
            raise Forbidden("this operation is for operators only")


class Request(Contract):
    """Base of every request: carries the caller's context."""

    ctx: Context = Field(default_factory=Context)


class PageRequest(Request):
    """Base of every list request: a page size and the cursor a previous page returned."""

    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = Field(default=None, max_length=512)


class Reply(Contract):
    """Base of every reply.

    Replies ignore fields they do not know, so a provider can add a field before its
    consumers are redeployed (requests stay strict: unknown input is a caller's mistake).
    """

    model_config = ConfigDict(extra="ignore")


def _now() -> datetime:
    return datetime.now(UTC)


class Event(Contract):
    """Base of every event: ids and facts, never secrets (unknown fields ignored, as replies)."""

    model_config = ConfigDict(extra="ignore")

    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: datetime = Field(default_factory=_now)
    workspace_id: UUID


ReqT = TypeVar("ReqT", bound=Request)
RepT = TypeVar("RepT", bound=Reply)
EvtT = TypeVar("EvtT", bound=Event)


@dataclass(frozen=True)
class Operation(Generic[ReqT, RepT]):
    """A request/reply subject with its request and reply models."""

    subject: str
    request: type[ReqT]
    reply: type[RepT]
    summary: str = ""

    @property
    def service(self) -> str:
        """Return the service that answers this subject (``tether.<service>.…``)."""
        return self.subject.split(".")[1]

    @property
    def name(self) -> str:
        """Return a micro endpoint name derived from the subject."""
        return "-".join(self.subject.split(".")[2:])


@dataclass(frozen=True)
class EventType(Generic[EvtT]):
    """An event subject (``tether.evt.<service>.<entity>.<verb>``) with its model."""

    subject: str
    model: type[EvtT]

    @property
    def service(self) -> str:
        """Return the service that emits this event."""
        return self.subject.split(".")[2]


class PingRequest(Request):
    """Ask a service whether it answers."""


class PingReply(Reply):
    """A service's answer to a ping."""

    service: str
    instance: str
    version: str
    time: datetime


def ping_operation(service: str) -> Operation[PingRequest, PingReply]:
    """Return the ping operation of ``service``."""
    return Operation(
        f"tether.{service}.system.ping", PingRequest, PingReply, f"Ping the {service} service"
    )


EVENTS_STREAM = "TETHER_EVENTS"
EVENTS_SUBJECTS = "tether.evt.>"
INBOUND_STREAM = "TETHER_INBOUND"
"""What a service accepted from outside and must still handle (a work queue, not events)."""
INBOUND_SUBJECTS = "tether.inbound.>"
