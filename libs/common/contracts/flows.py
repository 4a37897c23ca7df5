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


JmesPath = Annotated[str, Field(min_length=1, max_length=4096)]
"""A JMESPath expression (checked when the flow is saved)."""


class ApiTrigger(Contract):
    """Run when the workspace's app calls ``POST /flow-instances/{id}/run``."""

    type: Literal["api"] = "api"
    input_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema (2020-12) the run's input must match"
    )


class AppEventTrigger(Contract):
    """Run when the app pushes an event of this app-event type on the instance's connection."""

    type: Literal["app-event"] = "app-event"
    app_event_type_key: Key
    filter: JmesPath | None = Field(
        default=None, description="Run only when this JMESPath over the event is truthy"
    )


class ScheduleTrigger(Contract):
    """Run on a cron schedule (in ``timezone``); missed ticks run once on recovery."""

    type: Literal["schedule"] = "schedule"
    cron: str = Field(min_length=1, max_length=120)
    timezone: str = Field(default="UTC", min_length=1, max_length=64, description="IANA name")


class DataRecordTrigger(Contract):
    """Run when a record of a data source is created, updated or deleted."""

    type: Literal["data-record-created", "data-record-updated", "data-record-deleted"]
    data_source_key: Key
    filter: JmesPath | None = Field(
        default=None, description="Run only when this JMESPath over the event is truthy"
    )


Trigger = Annotated[
    ApiTrigger | AppEventTrigger | ScheduleTrigger | DataRecordTrigger, Field(discriminator="type")
]


class Link(Contract):
    """An edge to the next node."""

    to: str = Field(min_length=1)


class RetryPolicy(Contract):
    """How often a node is tried and how long it waits between tries (doubling, jittered)."""

    attempts: int = Field(default=3, ge=1, le=10, description="Tries in all, the first included")
    backoff: float = Field(default=1.0, ge=0, le=600, description="Seconds before the 2nd try")


class Node(Contract):
    """One step of a flow; ``config`` is checked against its type's model.

    Without ``retry`` a node is tried 3 times on transient errors (timeouts, 5xx, 429) and
    once on any other; ``onError: continue`` lets the run go on past a node that failed
    (its output is then ``null`` and its error is in the run's ``errors``).
    """

    type: str = Field(min_length=1)
    name: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list)
    retry: RetryPolicy | None = None
    on_error: Literal["stop", "continue"] = "stop"


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


# --- flow runs --------------------------------------------------------------------------

RunState = Literal["queued", "running", "completed", "failed", "stopped"]
NodeState = Literal["running", "waiting", "completed", "failed", "skipped"]
TriggerType = Literal[
    "api",
    "app-event",
    "schedule",
    "data-record-created",
    "data-record-updated",
    "data-record-deleted",
    "rerun",
]


class RunTrigger(Contract):
    """What started a run."""

    type: TriggerType
    event_id: UUID | None = None
    tick: datetime | None = None
    rerun_of: UUID | None = None
    from_node: str | None = None


class RunError(Contract):
    """Why a node (or a run) failed: a stable code, a sentence, and details."""

    code: str
    message: str
    node: str | None = None
    data: Any = None


class NodeSummary(Contract):
    """A node of a run at a glance."""

    state: NodeState
    runs: int
    errors: list[RunError] = Field(default_factory=list)


class FlowRun(Reply):
    """One execution of a flow instance."""

    id: UUID
    flow_instance_id: UUID
    flow_id: UUID
    revision: int
    connection_id: UUID
    customer_id: str
    state: RunState
    trigger: RunTrigger
    input: Any
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    errors: list[RunError]
    nodes: dict[str, NodeSummary]
    definition: FlowDefinition | None = Field(
        default=None,
        description="The flow as this run executes it (its revision with the customisation);"
        " only when one run is read",
    )


class FlowRunPage(Reply):
    """A page of runs, newest first."""

    items: list[FlowRun]
    cursor: str | None


class NodeExecution(Contract):
    """One execution of a node (for-each items have one each, ``item`` says which)."""

    item: str | None
    state: NodeState
    attempts: int
    input: Any
    output: Any
    output_size: int | None = Field(description="Bytes of the output as JSON")
    output_dropped: bool = Field(description="The output was too large, or past its retention")
    reused: bool = Field(description="Copied from the original run by a rerun")
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: float | None
    logs: list[dict[str, Any]]
    error: RunError | None


class NodeExecutionPage(Reply):
    """Every execution of one node of a run."""

    key: str
    type: str
    items: list[NodeExecution]


class FlowRunStartRequest(Request):
    """Run a flow instance with this input (``Idempotency-Key`` returns the first run)."""

    id: UUID = Field(description="The flow instance")
    input: Any = None
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"
    )


class FlowRunRef(Request):
    """A request about one run."""

    id: UUID


class FlowRunGetRequest(FlowRunRef):
    """Read a run."""


class FlowRunNodeRequest(FlowRunRef):
    """Read every execution of one node of a run."""

    key: str = Field(min_length=1, max_length=200)


class FlowRunStopRequest(FlowRunRef):
    """Stop a run before its next node (a delay ends at once)."""


class FlowRunRerunRequest(FlowRunRef):
    """Run again with the same revision and input; ``fromNode`` reuses earlier outputs."""

    from_node: str | None = Field(default=None, min_length=1, max_length=200)


class FlowRunListRequest(PageRequest):
    """List runs, newest first (a customer sees their own)."""

    flow_instance_id: UUID | None = None
    flow_id: UUID | None = None
    connection_id: UUID | None = None
    customer_id: str | None = Field(default=None, max_length=256)
    state: RunState | None = None
    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None


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

FLOW_RUNS_START = Operation(
    "tether.flows.flow_runs.start", FlowRunStartRequest, FlowRun, "Run a flow instance"
)
FLOW_RUNS_LIST = Operation(
    "tether.flows.flow_runs.list", FlowRunListRequest, FlowRunPage, "List runs"
)
FLOW_RUNS_GET = Operation("tether.flows.flow_runs.get", FlowRunGetRequest, FlowRun, "Read a run")
FLOW_RUNS_NODE = Operation(
    "tether.flows.flow_runs.node", FlowRunNodeRequest, NodeExecutionPage, "Read a node's executions"
)
FLOW_RUNS_STOP = Operation("tether.flows.flow_runs.stop", FlowRunStopRequest, FlowRun, "Stop a run")
FLOW_RUNS_RERUN = Operation(
    "tether.flows.flow_runs.rerun", FlowRunRerunRequest, FlowRun, "Run again (from a node)"
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


class FlowRunEvent(Event):
    """A run was queued, started or ended (``error`` says why a failed run failed)."""

    flow_run_id: UUID
    flow_instance_id: UUID
    flow_id: UUID
    connection_id: UUID
    customer_id: str
    state: RunState
    trigger_type: TriggerType
    error: RunError | None = None


FLOW_CREATED = EventType("tether.evt.flows.flow.created", FlowEvent)
FLOW_UPDATED = EventType("tether.evt.flows.flow.updated", FlowEvent)
FLOW_ARCHIVED = EventType("tether.evt.flows.flow.archived", FlowEvent)
FLOW_INSTANCE_CREATED = EventType("tether.evt.flows.flow_instance.created", FlowInstanceEvent)
FLOW_INSTANCE_UPDATED = EventType("tether.evt.flows.flow_instance.updated", FlowInstanceEvent)
FLOW_INSTANCE_ARCHIVED = EventType("tether.evt.flows.flow_instance.archived", FlowInstanceEvent)
FLOW_RUN_QUEUED = EventType("tether.evt.flows.flow_run.queued", FlowRunEvent)
FLOW_RUN_STARTED = EventType("tether.evt.flows.flow_run.started", FlowRunEvent)
FLOW_RUN_COMPLETED = EventType("tether.evt.flows.flow_run.completed", FlowRunEvent)
FLOW_RUN_FAILED = EventType("tether.evt.flows.flow_run.failed", FlowRunEvent)
FLOW_RUN_STOPPED = EventType("tether.evt.flows.flow_run.stopped", FlowRunEvent)

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
    FLOW_RUNS_START,
    FLOW_RUNS_LIST,
    FLOW_RUNS_GET,
    FLOW_RUNS_NODE,
    FLOW_RUNS_STOP,
    FLOW_RUNS_RERUN,
)
EVENTS = (
    FLOW_CREATED,
    FLOW_UPDATED,
    FLOW_ARCHIVED,
    FLOW_INSTANCE_CREATED,
    FLOW_INSTANCE_UPDATED,
    FLOW_INSTANCE_ARCHIVED,
    FLOW_RUN_QUEUED,
    FLOW_RUN_STARTED,
    FLOW_RUN_COMPLETED,
    FLOW_RUN_FAILED,
    FLOW_RUN_STOPPED,
)
