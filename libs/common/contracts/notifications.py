"""Notifications' subjects and models: webhook endpoints, their deliveries and attempts.

A workspace registers endpoints (URLs of its backend); every event an endpoint's
patterns match becomes a *delivery* (``webhook-id`` = the delivery id, ``msg_…``), sent
signed the Standard Webhooks way and retried on a schedule; each try is an *attempt*.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, ValidationInfo, field_validator

from libs.common.contracts.base import (
    Event,
    EventType,
    Operation,
    PageRequest,
    Reply,
    Request,
    not_null,
    ping_operation,
)
from libs.common.contracts.dead_letters import dead_letters_operation
from libs.common.contracts.keys import keys_operations

PING = ping_operation("notifications")
DEAD_LETTERS_LIST = dead_letters_operation("notifications")
KEYS_STATUS, KEYS_RESEAL = keys_operations("notifications")

EventPattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^(\*|[a-z][a-z_]*\.(\*|[a-z][a-z_]*))$",
        description="An event type (`flow_run.failed`), all of one entity (`connection.*`) or `*`",
    ),
]
DeliveryId = Annotated[str, Field(pattern=r"^msg_[0-9a-f]{32}$", description="The webhook-id")]
DeliveryStatus = Literal["pending", "succeeded", "failed"]
EndpointUrl = Annotated[str, Field(min_length=1, max_length=2048)]
Description = Annotated[str, Field(max_length=500)]


# --- endpoints --------------------------------------------------------------------------


class WebhookEndpoint(Reply):
    """A URL of the workspace's backend that receives signed notifications."""

    id: UUID
    url: str
    events: list[str]
    enabled: bool
    description: str | None
    disabled_reason: str | None = Field(description="Why Tether disabled it (410, failing)")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when deliveries are also signed with the previous secret"
    )
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpoint):
    """An endpoint with its signing secret: shown once, at creation or rotation."""

    secret: str = Field(description="whsec_…: verify signatures with it; it is never shown again")


class WebhookEndpointPage(Reply):
    """A page of endpoints."""

    items: list[WebhookEndpoint]
    cursor: str | None


class EndpointListRequest(PageRequest):
    """List the workspace's endpoints."""


class EndpointCreateRequest(Request):
    """Register an endpoint; its secret is in the reply, once."""

    url: EndpointUrl
    events: list[EventPattern] = Field(min_length=1, max_length=64)
    enabled: bool = True
    description: Description | None = None


class EndpointRef(Request):
    """A request about one endpoint."""

    id: UUID


class EndpointGetRequest(EndpointRef):
    """Read an endpoint."""


class EndpointPatchRequest(EndpointRef):
    """Change an endpoint (left-out fields keep their values; enabling clears the reason)."""

    url: EndpointUrl | None = None
    events: list[EventPattern] | None = Field(default=None, min_length=1, max_length=64)
    enabled: bool | None = None
    description: Description | None = None

    _not_null = field_validator("url", "events", "enabled", mode="before")(not_null)


class EndpointDeleteRequest(EndpointRef):
    """Delete an endpoint (its pending deliveries are not sent; its log stays readable)."""


class EndpointDeleted(Reply):
    """An endpoint was deleted."""

    id: UUID
    deleted: bool


class EndpointRotateRequest(EndpointRef):
    """Issue a new secret; the previous one keeps signing beside it for the overlap."""


class EndpointTestRequest(EndpointRef):
    """Send a ``test`` event now and answer with the attempt."""


# --- deliveries -------------------------------------------------------------------------


class DeliveryAttempt(Reply):
    """One try to send a delivery."""

    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    response: str | None = Field(description="The first 1 KB of the answer's body")
    error: str | None


class WebhookDelivery(Reply):
    """One event sent (or being sent) to one endpoint."""

    id: str = Field(description="The webhook-id header: stable across retries")
    endpoint_id: UUID
    event_type: str
    event_id: UUID | None
    status: DeliveryStatus
    attempt_count: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookDeliveryDetail(WebhookDelivery):
    """A delivery with what was sent and every attempt."""

    payload: dict[str, Any] = Field(description="The body sent: {type, timestamp, data}")
    attempts: list[DeliveryAttempt]


class WebhookDeliveryPage(Reply):
    """A page of deliveries, newest first."""

    items: list[WebhookDelivery]
    cursor: str | None


class DeliveryListRequest(PageRequest):
    """List an endpoint's deliveries, newest first, filtered."""

    endpoint_id: UUID
    status: DeliveryStatus | None = None
    type: str | None = Field(default=None, max_length=100)
    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None


class DeliveryGetRequest(Request):
    """Read a delivery with its attempts."""

    id: DeliveryId


class DeliveryRedeliverRequest(Request):
    """Send a finished delivery again (same webhook-id, a fresh retry schedule)."""

    id: DeliveryId


class ReplayRequest(Request):
    """Send again an endpoint's finished deliveries created in [from, to)."""

    endpoint_id: UUID
    from_: datetime = Field(alias="from")
    to: datetime
    status: Literal["succeeded", "failed"] | None = None

    @field_validator("to")
    @classmethod
    def _after_from(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("from_")
        if start is not None and value <= start:
            raise ValueError("must be later than from")
        return value


class ReplayAccepted(Reply):
    """How many deliveries a replay queued again."""

    endpoint_id: UUID
    count: int


# --- event types ------------------------------------------------------------------------


class EventTypeListRequest(Request):
    """List the event types an endpoint may ask for."""


class WebhookEventType(Reply):
    """One event type: its name, whether ``*`` includes it, and its payload's JSON Schema."""

    type: str
    description: str
    in_wildcard: bool = Field(description="False: only an explicit pattern matches it (volume)")
    available: bool = Field(description="False: listed, but no service emits it yet")
    payload_schema: dict[str, Any] = Field(description="JSON Schema of the body's `data`")


class WebhookEventTypeList(Reply):
    """Every event type."""

    items: list[WebhookEventType]


# --- operations -------------------------------------------------------------------------

ENDPOINTS_LIST = Operation(
    "tether.notifications.endpoints.list",
    EndpointListRequest,
    WebhookEndpointPage,
    "List webhook endpoints",
)
ENDPOINTS_CREATE = Operation(
    "tether.notifications.endpoints.create",
    EndpointCreateRequest,
    WebhookEndpointWithSecret,
    "Register a webhook endpoint (the secret is shown once)",
)
ENDPOINTS_GET = Operation(
    "tether.notifications.endpoints.get", EndpointGetRequest, WebhookEndpoint, "Read an endpoint"
)
ENDPOINTS_PATCH = Operation(
    "tether.notifications.endpoints.patch",
    EndpointPatchRequest,
    WebhookEndpoint,
    "Change an endpoint",
)
ENDPOINTS_DELETE = Operation(
    "tether.notifications.endpoints.delete",
    EndpointDeleteRequest,
    EndpointDeleted,
    "Delete an endpoint",
)
ENDPOINTS_ROTATE_SECRET = Operation(
    "tether.notifications.endpoints.rotate_secret",
    EndpointRotateRequest,
    WebhookEndpointWithSecret,
    "Issue a new signing secret (both sign during the overlap)",
)
ENDPOINTS_TEST = Operation(
    "tether.notifications.endpoints.test",
    EndpointTestRequest,
    WebhookDeliveryDetail,
    "Send a test event now and answer with the attempt",
)
DELIVERIES_LIST = Operation(
    "tether.notifications.deliveries.list",
    DeliveryListRequest,
    WebhookDeliveryPage,
    "List an endpoint's deliveries",
)
DELIVERIES_GET = Operation(
    "tether.notifications.deliveries.get",
    DeliveryGetRequest,
    WebhookDeliveryDetail,
    "Read a delivery with every attempt",
)
DELIVERIES_REDELIVER = Operation(
    "tether.notifications.deliveries.redeliver",
    DeliveryRedeliverRequest,
    WebhookDelivery,
    "Send a delivery again",
)
DELIVERIES_REPLAY = Operation(
    "tether.notifications.deliveries.replay",
    ReplayRequest,
    ReplayAccepted,
    "Send again an endpoint's deliveries of a time range",
)
EVENT_TYPES_LIST = Operation(
    "tether.notifications.event_types.list",
    EventTypeListRequest,
    WebhookEventTypeList,
    "List the event types endpoints may ask for",
)

# --- events -----------------------------------------------------------------------------


class EndpointDisabledEvent(Event):
    """Tether disabled an endpoint (410 Gone, or failing every attempt for too long)."""

    endpoint_id: UUID
    reason: str


ENDPOINT_DISABLED = EventType("tether.evt.notifications.endpoint.disabled", EndpointDisabledEvent)

OPERATIONS = (
    PING,
    DEAD_LETTERS_LIST,
    KEYS_STATUS,
    KEYS_RESEAL,
    ENDPOINTS_LIST,
    ENDPOINTS_CREATE,
    ENDPOINTS_GET,
    ENDPOINTS_PATCH,
    ENDPOINTS_DELETE,
    ENDPOINTS_ROTATE_SECRET,
    ENDPOINTS_TEST,
    DELIVERIES_LIST,
    DELIVERIES_GET,
    DELIVERIES_REDELIVER,
    DELIVERIES_REPLAY,
    EVENT_TYPES_LIST,
)
EVENTS = (ENDPOINT_DISABLED,)
