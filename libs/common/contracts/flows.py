"""Flows' subjects and models: flows with revisions, flow instances with customisation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, field_validator

from libs.common.contracts.base import (
    Contract,
    Event,
    EventType,
    Key,
    Name,
    Operation,
    PageRequest,
    Reply,
    Request,
    Revision,
    not_null,
    ping_operation,
)
from libs.common.contracts.dead_letters import dead_letters_operation

PING = ping_operation("flows")
DEAD_LETTERS_LIST = dead_letters_operation("flows")

Level = Literal["universal", "app", "customer"]


class ApiTrigger(Contract):
    """Run when the workspace's app calls the flow."""

    type: Literal["api"] = "api"


class AppEventTrigger(Contract):
    """Run when the app pushes an event of this app-event type."""

    type: Literal["app-event"] = "app-event"
    app_event_type_key: Key


class ScheduleTrigger(Contract):
    """Run on a cron schedule."""

    type: Literal["schedule"] = "schedule"
    cron: str = Field(min_length=1, max_length=120)


class DataRecordTrigger(Contract):
    """Run when a record of a data source is created, updated or deleted."""

    type: Literal["data-record-created", "data-record-updated", "data-record-deleted"]
    data_source_key: Key


Trigger = Annotated[
    ApiTrigger | AppEventTrigger | ScheduleTrigger | DataRecordTrigger, Field(discriminator="type")
]


class Link(Contract):
    """An edge to the next node."""

    to: str = Field(min_length=1)


class Node(Contract):
    """One step of a flow; ``config`` is checked against its type's model."""

    type: str = Field(min_length=1)
    name: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list)


class FlowDefinition(Contract):
    """What a revision of a flow says (its level and scope never change)."""

    name: Name
    trigger: Trigger
    nodes: dict[str, Node] = Field(default_factory=dict)
    parameters: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of customer-set values"
    )
    auto_deploy: bool = False


class Flow(Reply):
    """A flow at its newest revision."""

    id: UUID
    key: str
    level: Level
    integration_key: str | None
    customer_id: str | None
    name: str
    trigger: Trigger
    nodes: dict[str, Node]
    parameters: dict[str, Any] | None
    auto_deploy: bool
    revision: int
    archived: bool
    created_at: datetime
    updated_at: datetime


class FlowPage(Reply):
    """A page of flows."""

    items: list[Flow]
    cursor: str | None


class FlowRef(Request):
    """A request about one flow."""

    id: UUID


class FlowGetRequest(FlowRef):
    """Read a flow."""


class FlowBody(Request):
    """What a request that writes a whole definition gives: every field but key and scope."""

    name: Name
    trigger: Trigger
    nodes: dict[str, Node] = Field(default_factory=dict)
    parameters: dict[str, Any] | None = None
    auto_deploy: bool = False

    def definition(self) -> FlowDefinition:
        """Return the definition this request gives."""
        return FlowDefinition(
            name=self.name,
            trigger=self.trigger,
            nodes=self.nodes,
            parameters=self.parameters,
            auto_deploy=self.auto_deploy,
        )


class FlowScope(Request):
    """Where a flow applies: its key and level, set at creation and never changed."""

    key: Key
    level: Level
    integration_key: Key | None = None
    customer_id: str | None = Field(default=None, max_length=256)


class FlowCreateRequest(FlowBody, FlowScope):
    """Create a flow: universal, for one integration, or for one customer."""


class FlowRevise(FlowRef):
    """A change of a flow's definition; ``revision`` (or If-Match) must be the current one."""

    revision: Revision | None = None


class FlowPutRequest(FlowBody, FlowRevise):
    """Replace a flow's definition; ``revision`` (or If-Match) must be the current one."""


class FlowPatchRequest(FlowRevise):
    """Change parts of a flow; ``revision`` (or If-Match) must be the current one."""

    name: Name | None = None
    trigger: Trigger | None = None
    nodes: dict[str, Node] | None = None
    parameters: dict[str, Any] | None = None
    auto_deploy: bool | None = None

    @field_validator("name", "trigger", "nodes", "auto_deploy", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return not_null(value)  # parameters may be null: that clears them

    def given(self) -> dict[str, Any]:
        """Return the definition fields this request sets (left-out fields keep their value)."""
        return {
            k: getattr(self, k) for k in self.model_fields_set if k in FlowDefinition.model_fields
        }


class FlowDeleteRequest(FlowRef):
    """Delete a flow (archived instead while it has instances)."""


class FlowDeleted(Reply):
    """What happened to the flow."""

    deleted: bool
    archived: bool


class FlowListRequest(PageRequest):
    """List flows."""

    level: Level | None = None
    integration_key: str | None = None
    customer_id: str | None = None
    include_archived: bool = False


class FlowRevision(Reply):
    """One revision of a flow's definition."""

    revision: int
    definition: FlowDefinition
    created_at: datetime


class FlowRevisionPage(Reply):
    """A flow's revisions, newest first."""

    items: list[FlowRevision]


class FlowRevisionsRequest(FlowRef):
    """List a flow's revisions."""


class FlowRevisionGetRequest(FlowRef):
    """Read one revision."""

    n: Revision


# --- flow instances ---------------------------------------------------------------------


class FlowInstance(Reply):
    """A flow deployed to one connection, with its customisation and effective definition."""

    id: UUID
    flow_id: UUID
    connection_id: UUID
    customer_id: str
    integration_key: str
    base_revision: int
    latest_revision: int
    outdated: bool
    customization: dict[str, Any]
    flow: FlowDefinition
    parameter_values: dict[str, Any]
    enabled: bool
    archived: bool
    created_at: datetime
    updated_at: datetime


class FlowInstancePage(Reply):
    """A page of flow instances."""

    items: list[FlowInstance]
    cursor: str | None


class FlowInstanceCreateRequest(Request):
    """Deploy a flow to a connection by hand."""

    flow_id: UUID
    connection_id: UUID


class FlowInstanceRef(Request):
    """A request about one flow instance."""

    id: UUID


class FlowInstanceGetRequest(FlowInstanceRef):
    """Read a flow instance."""


class FlowInstanceListRequest(PageRequest):
    """List flow instances (a customer sees their own)."""

    customer_id: str | None = None
    connection_id: UUID | None = None
    flow_id: UUID | None = None


class FlowInstancePatchRequest(FlowInstanceRef):
    """Customise (a JSON Merge Patch over ``{nodes, parameters}``) and/or enable/disable.

    A customer may change only ``enabled`` and ``customization.parameters``.
    """

    customization: dict[str, Any] | None = None
    enabled: bool | None = None


class FlowInstanceUpgradeRequest(FlowInstanceRef):
    """Re-apply the customisation onto the flow's newest revision (three-way)."""


class FlowInstanceResetRequest(FlowInstanceRef):
    """Drop the customisation."""


class EnsureInstancesRequest(Request):
    """Create the autoDeploy flows' instances a connection should have (idempotent)."""

    connection_id: UUID
    customer_id: str
    integration_key: str
    archive: bool = Field(
        default=False, description="The connection is gone: archive its instances"
    )


class EnsureInstancesReply(Reply):
    """What ensuring did."""

    created: int
    archived: int
    total: int


FLOWS_LIST = Operation("tether.flows.flows.list", FlowListRequest, FlowPage, "List flows")
FLOWS_CREATE = Operation("tether.flows.flows.create", FlowCreateRequest, Flow, "Create a flow")
FLOWS_GET = Operation("tether.flows.flows.get", FlowGetRequest, Flow, "Read a flow")
FLOWS_PUT = Operation("tether.flows.flows.put", FlowPutRequest, Flow, "Replace a flow")
FLOWS_PATCH = Operation("tether.flows.flows.patch", FlowPatchRequest, Flow, "Change a flow")
FLOWS_DELETE = Operation(
    "tether.flows.flows.delete", FlowDeleteRequest, FlowDeleted, "Delete a flow"
)
FLOWS_REVISIONS = Operation(
    "tether.flows.flows.revisions", FlowRevisionsRequest, FlowRevisionPage, "List revisions"
)
FLOWS_REVISION = Operation(
    "tether.flows.flows.revision", FlowRevisionGetRequest, FlowRevision, "Read a revision"
)
FLOW_INSTANCES_LIST = Operation(
    "tether.flows.flow_instances.list",
    FlowInstanceListRequest,
    FlowInstancePage,
    "List flow instances",
)
FLOW_INSTANCES_CREATE = Operation(
    "tether.flows.flow_instances.create", FlowInstanceCreateRequest, FlowInstance, "Deploy a flow"
)
FLOW_INSTANCES_GET = Operation(
    "tether.flows.flow_instances.get", FlowInstanceGetRequest, FlowInstance, "Read a flow instance"
)
FLOW_INSTANCES_PATCH = Operation(
    "tether.flows.flow_instances.patch", FlowInstancePatchRequest, FlowInstance, "Customise"
)
FLOW_INSTANCES_UPGRADE = Operation(
    "tether.flows.flow_instances.upgrade", FlowInstanceUpgradeRequest, FlowInstance, "Upgrade"
)
FLOW_INSTANCES_RESET = Operation(
    "tether.flows.flow_instances.reset", FlowInstanceResetRequest, FlowInstance, "Reset"
)
FLOW_INSTANCES_ENSURE = Operation(
    "tether.flows.flow_instances.ensure",
    EnsureInstancesRequest,
    EnsureInstancesReply,
    "Create a connection's autoDeploy flow instances (deployment step)",
)

# --- events -----------------------------------------------------------------------------


class FlowEvent(Event):
    """A flow changed."""

    flow_id: UUID
    revision: int


class FlowInstanceEvent(Event):
    """A flow instance changed."""

    flow_instance_id: UUID
    flow_id: UUID
    connection_id: UUID
    customer_id: str


FLOW_CREATED = EventType("tether.evt.flows.flow.created", FlowEvent)
FLOW_UPDATED = EventType("tether.evt.flows.flow.updated", FlowEvent)
FLOW_ARCHIVED = EventType("tether.evt.flows.flow.archived", FlowEvent)
FLOW_INSTANCE_CREATED = EventType("tether.evt.flows.flow_instance.created", FlowInstanceEvent)
FLOW_INSTANCE_UPDATED = EventType("tether.evt.flows.flow_instance.updated", FlowInstanceEvent)
FLOW_INSTANCE_ARCHIVED = EventType("tether.evt.flows.flow_instance.archived", FlowInstanceEvent)

OPERATIONS = (
    PING,
    DEAD_LETTERS_LIST,
    FLOWS_LIST,
    FLOWS_CREATE,
    FLOWS_GET,
    FLOWS_PUT,
    FLOWS_PATCH,
    FLOWS_DELETE,
    FLOWS_REVISIONS,
    FLOWS_REVISION,
    FLOW_INSTANCES_LIST,
    FLOW_INSTANCES_CREATE,
    FLOW_INSTANCES_GET,
    FLOW_INSTANCES_PATCH,
    FLOW_INSTANCES_UPGRADE,
    FLOW_INSTANCES_RESET,
    FLOW_INSTANCES_ENSURE,
)
EVENTS = (
    FLOW_CREATED,
    FLOW_UPDATED,
    FLOW_ARCHIVED,
    FLOW_INSTANCE_CREATED,
    FLOW_INSTANCE_UPDATED,
    FLOW_INSTANCE_ARCHIVED,
)
