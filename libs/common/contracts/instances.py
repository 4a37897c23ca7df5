"""Instances' subjects and models: element definitions, deployments, instances, webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from libs.common.contracts.actions import *  # noqa: F403 (re-exported: actions are served here)
from libs.common.contracts.actions import ACTION_RUN_FAILED
from libs.common.contracts.actions import OPERATIONS as ACTION_OPERATIONS
from libs.common.contracts.base import (
    AppPath,
    Contract,
    Event,
    EventType,
    Key,
    Operation,
    PageRequest,
    Reply,
    Request,
    ping_operation,
)
from libs.common.contracts.data_records import *  # noqa: F403 (re-exported: one import for callers)
from libs.common.contracts.data_records import (
    DATA_RECORD_OPERATIONS,
    CollectionSpec,
    RecordEventSpec,
    SyncPass,
    SyncSpec,
    SyncState,
)
from libs.common.contracts.dead_letters import dead_letters_operation
from libs.common.contracts.field_mappings import *  # noqa: F403 (re-exported: served here too)
from libs.common.contracts.field_mappings import OPERATIONS as FIELD_MAPPING_OPERATIONS
from libs.common.contracts.keys import keys_operations

PING = ping_operation("instances")
DEAD_LETTERS_LIST = dead_letters_operation("instances")
KEYS_STATUS, KEYS_RESEAL = keys_operations("instances")

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

# --- element definitions ----------------------------------------------------------------


class SubscribeSpec(Contract):
    """How to subscribe at the app.

    ``body`` is a JSON template: strings may name ``{webhookUrl}``, ``{connectionId}`` and
    ``{webhookSecret}``. ``idPath`` is a JMESPath to the subscription id in the answer.
    """

    method: Method = "POST"
    path: AppPath
    body: dict[str, Any] | None = None
    id_path: str = Field(min_length=1)


class UnsubscribeSpec(Contract):
    """How to unsubscribe: ``path`` may name ``{subscriptionId}``."""

    method: Method = "DELETE"
    path: AppPath


class LookupSpec(Contract):
    """How to find a subscription we may have created before a crash (by its webhook URL)."""

    path: AppPath
    items_path: str = Field(min_length=1, description="JMESPath to the list of subscriptions")
    url_field: str = "url"
    id_field: str = "id"


class SignatureSpec(Contract):
    """HMAC-SHA256 signatures on incoming events.

    ``secret``: ``subscription`` — Tether makes one per subscription and passes it as
    ``{webhookSecret}`` when subscribing; ``static`` — the app's one secret, set here once
    (write-only).
    """

    header: str = Field(min_length=1)
    secret: Literal["subscription", "static"] = "subscription"
    prefix: str = Field(default="sha256=", description="Text before the hex digest")


class AppEventType(Reply):
    """A kind of event an app can push, and how to subscribe to it."""

    key: str
    integration_key: str
    name: str
    subscribe: SubscribeSpec
    unsubscribe: UnsubscribeSpec | None
    lookup: LookupSpec | None
    signature: SignatureSpec | None
    static_secret_set: bool
    events_path: str
    delivery_id_header: str | None
    record_event: RecordEventSpec | None = None
    revision: int
    created_at: datetime
    updated_at: datetime


class ElementRef(Request):
    """A request about one element definition."""

    key: Key


class AppEventTypeWrite(ElementRef):
    """The optional parts of an app-event type, written alike by create and patch."""

    unsubscribe: UnsubscribeSpec | None = None
    lookup: LookupSpec | None = None
    signature: SignatureSpec | None = None
    static_secret: str | None = Field(default=None, max_length=1024)
    delivery_id_header: str | None = None
    record_event: RecordEventSpec | None = None


class AppEventTypeCreateRequest(AppEventTypeWrite):
    """Define an app-event type."""

    integration_key: Key
    name: str = Field(min_length=1, max_length=200)
    subscribe: SubscribeSpec
    events_path: str = Field(default="@", min_length=1)


class AppEventTypePatchRequest(AppEventTypeWrite):
    """Change an app-event type (deploy it again to apply)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    subscribe: SubscribeSpec | None = None
    events_path: str | None = Field(default=None, min_length=1)


class AppEventTypeGetRequest(ElementRef):
    """Read one app-event type."""


class AppEventTypeDeleteRequest(ElementRef):
    """Delete an app-event type (deploy to unsubscribe its connections)."""


class AppEventTypeListRequest(Request):
    """List app-event types."""

    integration_key: str | None = None


class AppEventTypePage(Reply):
    """Every app-event type."""

    items: list[AppEventType]


class FieldsSpec(Contract):
    """Fetch the connection's field list: ``itemsPath`` (JMESPath) turns the answer into
    ``{name, type, label, required}`` items (a JMESPath multiselect hash usually does it)."""

    path: AppPath
    items_path: str = Field(min_length=1)


class InitialStateSpec(Contract):
    """Fetch what must be remembered at deployment (e.g. the newest record's cursor)."""

    path: AppPath
    state_path: str = Field(min_length=1)


class DataSource(Reply):
    """A data source: a field schema and an initial state per connection."""

    key: str
    integration_key: str
    name: str
    fields: FieldsSpec | None
    initial_state: InitialStateSpec | None
    collection: CollectionSpec | None = None
    sync: SyncSpec | None = None
    revision: int
    created_at: datetime
    updated_at: datetime


class DataSourceWrite(ElementRef):
    """The optional parts of a data source, written alike by create and patch."""

    fields: FieldsSpec | None = None
    initial_state: InitialStateSpec | None = None
    collection: CollectionSpec | None = None
    sync: SyncSpec | None = None


class DataSourceCreateRequest(DataSourceWrite):
    """Define a data source."""

    integration_key: Key
    name: str = Field(min_length=1, max_length=200)


class DataSourcePatchRequest(DataSourceWrite):
    """Change a data source (deploy it again to apply)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)


class DataSourceGetRequest(ElementRef):
    """Read one data source."""


class DataSourceDeleteRequest(ElementRef):
    """Delete a data source."""


class DataSourceListRequest(Request):
    """List data sources."""

    integration_key: str | None = None


class DataSourcePage(Reply):
    """Every data source."""

    items: list[DataSource]


class Deleted(Reply):
    """What was deleted."""

    deleted: bool


# --- deployments ------------------------------------------------------------------------

StepStatus = Literal["pending", "running", "succeeded", "failed", "cancelled"]
StepKind = Literal["subscribe", "unsubscribe", "data_source", "action", "field_mapping", "flows"]
DeploymentStatus = Literal["pending", "running", "succeeded", "failed", "partial", "cancelled"]


class DeploymentStep(Contract):
    """One idempotent step of a deployment."""

    id: UUID
    kind: StepKind
    element_key: str
    status: StepStatus
    attempts: int
    error: str | None
    updated_at: datetime


class Deployment(Reply):
    """Bringing one connection's instances up to date, step by step."""

    id: UUID
    connection_id: UUID
    customer_id: str
    integration_key: str
    reason: str
    status: DeploymentStatus
    steps_total: int
    steps_done: int
    steps: list[DeploymentStep]
    superseded_by: UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class DeploymentPage(Reply):
    """Deployments, newest first, with their aggregate progress."""

    items: list[Deployment]
    steps_total: int
    steps_done: int
    cursor: str | None


class DeploymentGetRequest(Request):
    """Read one deployment."""

    id: UUID


class DeploymentListRequest(PageRequest):
    """List deployments: of a connection, or of an integration's fan-out."""

    connection_id: UUID | None = None
    integration_key: str | None = None
    status: DeploymentStatus | None = None


class DeployConnectionRequest(Request):
    """Deploy every current definition to one connection."""

    id: UUID


class DeployElementRequest(ElementRef):
    """Deploy one changed definition to every connection of its integration."""


class FanOut(Reply):
    """The deployments a fan-out started."""

    deployments: int
    integration_key: str


# --- instances --------------------------------------------------------------------------


SubscriptionStatus = Literal["subscribing", "active", "failed", "unsubscribing", "unsubscribed"]
DataSourceInstanceStatus = Literal["ready", "failed", "archived"]


class AppEventSubscription(Reply):
    """A webhook subscription at the app for one connection."""

    id: UUID
    connection_id: UUID
    customer_id: str
    app_event_type_key: str
    status: SubscriptionStatus
    external_id: str | None
    webhook_url: str
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class SubscriptionListRequest(Request):
    """List subscriptions (a customer sees their own)."""

    connection_id: UUID | None = None


class SubscriptionPage(Reply):
    """Subscriptions."""

    items: list[AppEventSubscription]


class DataSourceInstance(Reply):
    """A data source deployed to one connection."""

    id: UUID
    connection_id: UUID
    customer_id: str
    data_source_key: str
    status: DataSourceInstanceStatus
    fields_schema: dict[str, Any] | None
    state: Any
    last_error: str | None
    updated_at: datetime
    sync_state: SyncState | None = Field(default=None, description="With a sync spec")
    last_pass: SyncPass | None = None


class DataSourceInstanceGetRequest(Request):
    """Read one data-source instance with its sync state."""

    id: UUID


class DataSourceInstanceListRequest(Request):
    """List data-source instances (a customer sees their own)."""

    connection_id: UUID | None = None


class DataSourceInstancePage(Reply):
    """Data-source instances."""

    items: list[DataSourceInstance]


class RefreshSchemaRequest(Request):
    """Fetch a data-source instance's field schema again."""

    id: UUID


# --- inbound webhooks -------------------------------------------------------------------


class WebhookReceiveRequest(Request):
    """An app delivered events to a subscription's inbound URL."""

    token: str = Field(min_length=16, max_length=128)
    body: str = Field(description="Base64 of the raw request body")
    headers: dict[str, str] = Field(default_factory=dict)


class WebhookAccepted(Reply):
    """How many events were accepted (0 for a repeated delivery)."""

    accepted: int
    duplicate: bool = False


# --- operations -------------------------------------------------------------------------

APP_EVENT_TYPES_LIST = Operation(
    "tether.instances.app_event_types.list",
    AppEventTypeListRequest,
    AppEventTypePage,
    "List app-event types",
)
APP_EVENT_TYPES_CREATE = Operation(
    "tether.instances.app_event_types.create",
    AppEventTypeCreateRequest,
    AppEventType,
    "Define an app-event type",
)
APP_EVENT_TYPES_GET = Operation(
    "tether.instances.app_event_types.get",
    AppEventTypeGetRequest,
    AppEventType,
    "Read an app-event type",
)
APP_EVENT_TYPES_PATCH = Operation(
    "tether.instances.app_event_types.patch",
    AppEventTypePatchRequest,
    AppEventType,
    "Change an app-event type",
)
APP_EVENT_TYPES_DELETE = Operation(
    "tether.instances.app_event_types.delete",
    AppEventTypeDeleteRequest,
    Deleted,
    "Delete an app-event type",
)
APP_EVENT_TYPES_DEPLOY = Operation(
    "tether.instances.app_event_types.deploy",
    DeployElementRequest,
    FanOut,
    "Deploy to every connection",
)
DATA_SOURCES_LIST = Operation(
    "tether.instances.data_sources.list", DataSourceListRequest, DataSourcePage, "List data sources"
)
DATA_SOURCES_CREATE = Operation(
    "tether.instances.data_sources.create",
    DataSourceCreateRequest,
    DataSource,
    "Define a data source",
)
DATA_SOURCES_GET = Operation(
    "tether.instances.data_sources.get", DataSourceGetRequest, DataSource, "Read a data source"
)
DATA_SOURCES_PATCH = Operation(
    "tether.instances.data_sources.patch",
    DataSourcePatchRequest,
    DataSource,
    "Change a data source",
)
DATA_SOURCES_DELETE = Operation(
    "tether.instances.data_sources.delete", DataSourceDeleteRequest, Deleted, "Delete a data source"
)
DATA_SOURCES_DEPLOY = Operation(
    "tether.instances.data_sources.deploy",
    DeployElementRequest,
    FanOut,
    "Deploy to every connection",
)
DEPLOYMENTS_GET = Operation(
    "tether.instances.deployments.get", DeploymentGetRequest, Deployment, "Read a deployment"
)
DEPLOYMENTS_LIST = Operation(
    "tether.instances.deployments.list", DeploymentListRequest, DeploymentPage, "List deployments"
)
DEPLOYMENTS_START = Operation(
    "tether.instances.deployments.start",
    DeployConnectionRequest,
    Deployment,
    "Deploy to a connection",
)
SUBSCRIPTIONS_LIST = Operation(
    "tether.instances.subscriptions.list",
    SubscriptionListRequest,
    SubscriptionPage,
    "List subscriptions",
)
DATA_SOURCE_INSTANCES_LIST = Operation(
    "tether.instances.data_source_instances.list",
    DataSourceInstanceListRequest,
    DataSourceInstancePage,
    "List data-source instances",
)
DATA_SOURCE_INSTANCES_GET = Operation(
    "tether.instances.data_source_instances.get",
    DataSourceInstanceGetRequest,
    DataSourceInstance,
    "Read a data-source instance",
)
DATA_SOURCE_INSTANCES_REFRESH = Operation(
    "tether.instances.data_source_instances.refresh_schema",
    RefreshSchemaRequest,
    DataSourceInstance,
    "Fetch the field schema again",
)
WEBHOOKS_RECEIVE = Operation(
    "tether.instances.webhooks.receive",
    WebhookReceiveRequest,
    WebhookAccepted,
    "Accept an inbound webhook",
)

# --- events -----------------------------------------------------------------------------


class DeploymentEvent(Event):
    """A deployment finished."""

    deployment_id: UUID
    connection_id: UUID
    status: DeploymentStatus


class AppEventReceived(Event):
    """An app pushed an event for a connection (the event's own payload, as the app sent it)."""

    customer_id: str
    connection_id: UUID
    integration_key: str
    app_event_type_key: str
    subscription_id: UUID
    delivery_id: str | None
    payload: Any


class InboundWebhook(Event):
    """A verified webhook delivery, accepted (202) and not yet handled: instances' own work.

    Not a public event: it travels on the ``TETHER_INBOUND`` work queue from the replica
    that accepted it to the one that records it and emits one ``app_event.received`` per
    item of ``events``. ``event_id`` is derived from the subscription and the app's
    delivery id when the app sends one, so a retried delivery has the same id.
    """

    customer_id: str
    connection_id: UUID
    integration_key: str
    app_event_type_key: str
    subscription_id: UUID
    delivery_id: str | None
    events: list[Any]
    record_event: bool = Field(
        default=False, description="The app-event type had a recordEvent when it was accepted"
    )


class DataRecordEvent(Event):
    """A synced record of a data source was created, updated or deleted in the app."""

    customer_id: str
    connection_id: UUID
    integration_key: str
    data_source_key: str
    data_source_instance_id: UUID
    record_id: str
    record: Any = Field(default=None, description="The record as the app gave it (null: deleted)")


DEPLOYMENT_COMPLETED = EventType("tether.evt.instances.deployment.completed", DeploymentEvent)
DEPLOYMENT_FAILED = EventType("tether.evt.instances.deployment.failed", DeploymentEvent)
APP_EVENT_RECEIVED = EventType("tether.evt.instances.app_event.received", AppEventReceived)
DATA_RECORD_CREATED = EventType("tether.evt.instances.data_record.created", DataRecordEvent)
DATA_RECORD_UPDATED = EventType("tether.evt.instances.data_record.updated", DataRecordEvent)
DATA_RECORD_DELETED = EventType("tether.evt.instances.data_record.deleted", DataRecordEvent)
INBOUND_WEBHOOK = EventType("tether.inbound.instances.webhook", InboundWebhook)
"""Instances' inbound work queue (stream ``TETHER_INBOUND``), not one of its ``EVENTS``."""

OPERATIONS = (
    PING,
    DEAD_LETTERS_LIST,
    KEYS_STATUS,
    KEYS_RESEAL,
    APP_EVENT_TYPES_LIST,
    APP_EVENT_TYPES_CREATE,
    APP_EVENT_TYPES_GET,
    APP_EVENT_TYPES_PATCH,
    APP_EVENT_TYPES_DELETE,
    APP_EVENT_TYPES_DEPLOY,
    DATA_SOURCES_LIST,
    DATA_SOURCES_CREATE,
    DATA_SOURCES_GET,
    DATA_SOURCES_PATCH,
    DATA_SOURCES_DELETE,
    DATA_SOURCES_DEPLOY,
    DEPLOYMENTS_GET,
    DEPLOYMENTS_LIST,
    DEPLOYMENTS_START,
    SUBSCRIPTIONS_LIST,
    DATA_SOURCE_INSTANCES_LIST,
    DATA_SOURCE_INSTANCES_GET,
    DATA_SOURCE_INSTANCES_REFRESH,
    WEBHOOKS_RECEIVE,
    *DATA_RECORD_OPERATIONS,
    *ACTION_OPERATIONS,
    *FIELD_MAPPING_OPERATIONS,
)
EVENTS = (
    ACTION_RUN_FAILED,
    DEPLOYMENT_COMPLETED,
    DEPLOYMENT_FAILED,
    APP_EVENT_RECEIVED,
    DATA_RECORD_CREATED,
    DATA_RECORD_UPDATED,
    DATA_RECORD_DELETED,
)
