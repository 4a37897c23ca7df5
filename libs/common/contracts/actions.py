"""Actions' subjects and models (served by the instances service, re-exported by its contracts).

An action is one operation in an external app run on demand through a connection: a
typed input (``inputSchema``), the request it makes (values may be expressions over
``{input, customer, connection, parameters}``) and the shape of its output
(``outputMapping``, JMESPath over the app's answer body). Definitions have revisions;
action instances deploy them to connections with a customisation; runs are logged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, field_validator

from libs.common.contracts.base import (
    AppPath,
    Contract,
    Event,
    EventType,
    HeaderName,
    Key,
    Name,
    Operation,
    PageRequest,
    Reply,
    Request,
    Revision,
    not_null,
)

__all__ = [
    "ACTIONS_CREATE",
    "ACTIONS_DELETE",
    "ACTIONS_GET",
    "ACTIONS_LIST",
    "ACTIONS_PATCH",
    "ACTIONS_REVISION",
    "ACTIONS_REVISIONS",
    "ACTION_INSTANCES_CREATE",
    "ACTION_INSTANCES_GET",
    "ACTION_INSTANCES_LIST",
    "ACTION_INSTANCES_PATCH",
    "ACTION_INSTANCES_RESET",
    "ACTION_INSTANCES_RUN",
    "ACTION_INSTANCES_RUN_ON_CONNECTION",
    "ACTION_INSTANCES_UPGRADE",
    "ACTION_RUNS_GET",
    "ACTION_RUNS_LIST",
    "ACTION_RUNS_START",
    "ACTION_RUN_FAILED",
    "Action",
    "ActionCreateRequest",
    "ActionDefinition",
    "ActionDeleteRequest",
    "ActionDeleted",
    "ActionGetRequest",
    "ActionInstance",
    "ActionInstanceCreateRequest",
    "ActionInstanceGetRequest",
    "ActionInstanceListRequest",
    "ActionInstancePage",
    "ActionInstancePatchRequest",
    "ActionInstanceRef",
    "ActionInstanceResetRequest",
    "ActionInstanceRunRequest",
    "ActionInstanceUpgradeRequest",
    "ActionListRequest",
    "ActionPage",
    "ActionPatchRequest",
    "ActionRef",
    "ActionRequestSpec",
    "ActionRevision",
    "ActionRevisionGetRequest",
    "ActionRevisionPage",
    "ActionRevisionsRequest",
    "ActionRun",
    "ActionRunError",
    "ActionRunFailedEvent",
    "ActionRunGetRequest",
    "ActionRunListRequest",
    "ActionRunMade",
    "ActionRunOnConnectionRequest",
    "ActionRunPage",
    "ActionRunRequest",
    "ActionRunResult",
    "IdempotencyKey",
    "Level",
    "RunStatus",
]

Level = Literal["universal", "app", "customer"]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
RunStatus = Literal["success", "error", "running"]

IdempotencyKey = Annotated[str, Field(min_length=1, max_length=255)]
"""A caller's key for one run: a repeat within 24 h returns the first run's result."""


# --- definitions ------------------------------------------------------------------------


class ActionRequestSpec(Contract):
    """The request an action makes to the app, through the connection's proxy.

    ``path`` is joined onto the integration's API base URL. Any value of ``path``,
    ``query``, ``headers`` and ``body`` may be ``{"$expr": "<jmespath>"}`` or hold
    ``{{ <jmespath> }}`` templates, evaluated over ``{input, customer, connection,
    parameters}`` when the action runs.
    """

    method: Method = "GET"
    path: AppPath
    query: dict[str, Any] = Field(default_factory=dict)
    headers: dict[HeaderName, Any] = Field(default_factory=dict)
    body: Any = None


class ActionDefinition(Contract):
    """What one revision of an action says (its key, level and scope never change)."""

    name: Name
    input_schema: dict[str, Any] | None = Field(default=None, description="JSON Schema 2020-12")
    request: ActionRequestSpec | None = Field(
        default=None, description="The request (app- and customer-level actions)"
    )
    implementations: dict[str, ActionRequestSpec] | None = Field(
        default=None, description="The request per integration key (universal actions)"
    )
    output_mapping: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="JMESPath over the app's answer body (absent: the body as it is)",
    )
    parameters: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of customer-set values"
    )
    auto_deploy: bool = False


class Action(Reply):
    """An action at its newest revision."""

    key: str
    level: Level
    integration_key: str | None
    customer_id: str | None
    name: str
    input_schema: dict[str, Any] | None
    request: ActionRequestSpec | None
    implementations: dict[str, ActionRequestSpec] | None
    output_mapping: str | None
    parameters: dict[str, Any] | None
    auto_deploy: bool
    revision: int
    created_at: datetime
    updated_at: datetime


class ActionPage(Reply):
    """A page of actions."""

    items: list[Action]
    cursor: str | None


class ActionRef(Request):
    """A request about one action."""

    key: Key


class ActionGetRequest(ActionRef):
    """Read an action."""


class ActionCreateRequest(Request):
    """Define an action: universal, for one integration, or for one customer."""

    key: Key
    level: Level
    integration_key: Key | None = None
    customer_id: str | None = Field(default=None, min_length=1, max_length=256)
    name: Name
    input_schema: dict[str, Any] | None = None
    request: ActionRequestSpec | None = None
    implementations: dict[Key, ActionRequestSpec] | None = None
    output_mapping: str | None = Field(default=None, min_length=1, max_length=4096)
    parameters: dict[str, Any] | None = None
    auto_deploy: bool = False

    def definition(self) -> ActionDefinition:
        """Return the first revision this request gives."""
        return ActionDefinition.model_validate(
            self.model_dump(include=set(ActionDefinition.model_fields))
        )


class ActionPatchRequest(ActionRef):
    """Change parts of an action; ``revision`` (or If-Match) must be the current one.

    A part sent as ``null`` is removed (``name`` and ``autoDeploy`` cannot be null).
    """

    revision: Revision | None = None
    name: Name | None = None
    input_schema: dict[str, Any] | None = None
    request: ActionRequestSpec | None = None
    implementations: dict[Key, ActionRequestSpec] | None = None
    output_mapping: str | None = Field(default=None, min_length=1, max_length=4096)
    parameters: dict[str, Any] | None = None
    auto_deploy: bool | None = None

    @field_validator("name", "auto_deploy", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return not_null(value)

    def given(self) -> dict[str, Any]:
        """Return the definition fields this request sets (left-out fields keep their value)."""
        return {
            k: getattr(self, k) for k in self.model_fields_set if k in ActionDefinition.model_fields
        }


class ActionDeleteRequest(ActionRef):
    """Delete an action with its revisions and instances (its runs stay logged)."""


class ActionDeleted(Reply):
    """What was deleted."""

    deleted: bool
    instances: int


class ActionListRequest(PageRequest):
    """List actions by key."""

    level: Level | None = None
    integration_key: str | None = None
    customer_id: str | None = None


class ActionRevision(Reply):
    """One revision of an action."""

    revision: int
    definition: ActionDefinition
    created_at: datetime


class ActionRevisionPage(Reply):
    """An action's revisions, newest first."""

    items: list[ActionRevision]


class ActionRevisionsRequest(ActionRef):
    """List an action's revisions."""


class ActionRevisionGetRequest(ActionRef):
    """Read one revision."""

    n: Revision


# --- instances --------------------------------------------------------------------------


class ActionInstance(Reply):
    """An action deployed to one connection, with its customisation and effective action."""

    id: UUID
    action_key: str
    connection_id: UUID
    customer_id: str
    integration_key: str
    base_revision: int
    latest_revision: int
    outdated: bool
    customization: dict[str, Any]
    action: ActionDefinition
    parameter_values: dict[str, Any]
    enabled: bool
    archived: bool
    created_at: datetime
    updated_at: datetime


class ActionInstancePage(Reply):
    """A page of action instances."""

    items: list[ActionInstance]
    cursor: str | None


class ActionInstanceCreateRequest(Request):
    """Deploy an action to a connection by hand (idempotent: the existing one is returned)."""

    action_key: Key
    connection_id: UUID


class ActionInstanceRef(Request):
    """A request about one action instance."""

    id: UUID


class ActionInstanceGetRequest(ActionInstanceRef):
    """Read an action instance with its effective action."""


class ActionInstanceListRequest(PageRequest):
    """List action instances (a customer sees their own)."""

    connection_id: UUID | None = None
    action_key: str | None = None
    customer_id: str | None = None


class ActionInstancePatchRequest(ActionInstanceRef):
    """Customise (a JSON Merge Patch over the customisable document) and/or enable/disable.

    The document is ``{request, implementations, outputMapping, inputSchema, parameters}``
    (``parameters``: the instance's parameter values). A customer may change only
    ``enabled`` and ``customization.parameters``.
    """

    customization: dict[str, Any] | None = None
    enabled: bool | None = None


class ActionInstanceUpgradeRequest(ActionInstanceRef):
    """Re-apply the customisation onto the action's newest revision (three-way)."""


class ActionInstanceResetRequest(ActionInstanceRef):
    """Drop the customisation and move to the action's newest revision."""


# --- runs -------------------------------------------------------------------------------


class ActionRunRequest(ActionRef):
    """Run an action on a connection (its instance's customisation applies when it has one)."""

    connection_id: UUID
    input: Any = Field(default_factory=dict)
    idempotency_key: IdempotencyKey | None = None


class ActionInstanceRunRequest(ActionInstanceRef):
    """Run an action instance."""

    input: Any = Field(default_factory=dict)
    idempotency_key: IdempotencyKey | None = None


class ActionRunOnConnectionRequest(Request):
    """Run a connection's instance of an action (for other services, as the system)."""

    action_key: Key
    connection_id: UUID
    input: Any = Field(default_factory=dict)
    idempotency_key: IdempotencyKey | None = None


class ActionRunResult(Reply):
    """What a run gave back; ``replayed``: a stored result of an earlier run with the same key."""

    output: Any
    action_run_id: UUID
    replayed: bool = False


class ActionRunMade(Contract):
    """The request a run made (never credentials, auth headers or the query)."""

    method: str
    path: str
    status: int | None


class ActionRunError(Contract):
    """Why a run failed."""

    code: str
    message: str
    status: int = Field(description="The HTTP status Tether answered the run with")
    details: Any = None


class ActionRun(Reply):
    """One run of an action, as logged."""

    id: UUID
    action_key: str
    action_instance_id: UUID | None
    revision: int
    connection_id: UUID
    customer_id: str
    integration_key: str
    status: RunStatus
    input: Any
    output: Any
    output_size: int | None
    output_dropped: bool
    request: ActionRunMade | None
    error: ActionRunError | None
    duration_ms: int | None
    idempotency_key: str | None
    started_at: datetime
    finished_at: datetime | None


class ActionRunPage(Reply):
    """A page of action runs, newest first."""

    items: list[ActionRun]
    cursor: str | None


class ActionRunListRequest(PageRequest):
    """List action runs (a customer sees their own), newest first."""

    action_key: str | None = None
    connection_id: UUID | None = None
    customer_id: str | None = None
    status: RunStatus | None = None
    from_: datetime | None = Field(default=None, alias="from", description="Started at or after")
    to: datetime | None = Field(default=None, description="Started before")


class ActionRunGetRequest(Request):
    """Read one action run."""

    id: UUID


# --- operations -------------------------------------------------------------------------

ACTIONS_LIST = Operation(
    "tether.instances.actions.list", ActionListRequest, ActionPage, "List actions"
)
ACTIONS_CREATE = Operation(
    "tether.instances.actions.create", ActionCreateRequest, Action, "Define an action"
)
ACTIONS_GET = Operation("tether.instances.actions.get", ActionGetRequest, Action, "Read an action")
ACTIONS_PATCH = Operation(
    "tether.instances.actions.patch", ActionPatchRequest, Action, "Change an action"
)
ACTIONS_DELETE = Operation(
    "tether.instances.actions.delete", ActionDeleteRequest, ActionDeleted, "Delete an action"
)
ACTIONS_REVISIONS = Operation(
    "tether.instances.actions.revisions",
    ActionRevisionsRequest,
    ActionRevisionPage,
    "List an action's revisions",
)
ACTIONS_REVISION = Operation(
    "tether.instances.actions.revision",
    ActionRevisionGetRequest,
    ActionRevision,
    "Read a revision of an action",
)
ACTION_RUNS_START = Operation(
    "tether.instances.action_runs.start", ActionRunRequest, ActionRunResult, "Run an action"
)
ACTION_INSTANCES_LIST = Operation(
    "tether.instances.action_instances.list",
    ActionInstanceListRequest,
    ActionInstancePage,
    "List action instances",
)
ACTION_INSTANCES_CREATE = Operation(
    "tether.instances.action_instances.create",
    ActionInstanceCreateRequest,
    ActionInstance,
    "Deploy an action to a connection",
)
ACTION_INSTANCES_GET = Operation(
    "tether.instances.action_instances.get",
    ActionInstanceGetRequest,
    ActionInstance,
    "Read an action instance",
)
ACTION_INSTANCES_PATCH = Operation(
    "tether.instances.action_instances.patch",
    ActionInstancePatchRequest,
    ActionInstance,
    "Customise an action instance",
)
ACTION_INSTANCES_UPGRADE = Operation(
    "tether.instances.action_instances.upgrade",
    ActionInstanceUpgradeRequest,
    ActionInstance,
    "Upgrade an action instance",
)
ACTION_INSTANCES_RESET = Operation(
    "tether.instances.action_instances.reset",
    ActionInstanceResetRequest,
    ActionInstance,
    "Reset an action instance",
)
ACTION_INSTANCES_RUN = Operation(
    "tether.instances.action_instances.run",
    ActionInstanceRunRequest,
    ActionRunResult,
    "Run an action instance",
)
ACTION_INSTANCES_RUN_ON_CONNECTION = Operation(
    "tether.instances.action_instances.run_on_connection",
    ActionRunOnConnectionRequest,
    ActionRunResult,
    "Run a connection's action instance (services only)",
)
ACTION_RUNS_LIST = Operation(
    "tether.instances.action_runs.list", ActionRunListRequest, ActionRunPage, "List action runs"
)
ACTION_RUNS_GET = Operation(
    "tether.instances.action_runs.get", ActionRunGetRequest, ActionRun, "Read an action run"
)

# --- events -----------------------------------------------------------------------------


class ActionRunFailedEvent(Event):
    """An action run failed (successful runs are logged, not evented)."""

    action_run_id: UUID
    action_key: str
    action_instance_id: UUID | None
    connection_id: UUID
    customer_id: str
    integration_key: str
    error: ActionRunError


ACTION_RUN_FAILED = EventType("tether.evt.instances.action_run.failed", ActionRunFailedEvent)

OPERATIONS = (
    ACTIONS_LIST,
    ACTIONS_CREATE,
    ACTIONS_GET,
    ACTIONS_PATCH,
    ACTIONS_DELETE,
    ACTIONS_REVISIONS,
    ACTIONS_REVISION,
    ACTION_INSTANCES_LIST,
    ACTION_INSTANCES_CREATE,
    ACTION_INSTANCES_GET,
    ACTION_INSTANCES_PATCH,
    ACTION_INSTANCES_UPGRADE,
    ACTION_INSTANCES_RESET,
    ACTION_INSTANCES_RUN,
    ACTION_INSTANCES_RUN_ON_CONNECTION,
    ACTION_RUNS_START,
    ACTION_RUNS_LIST,
    ACTION_RUNS_GET,
)
EVENTS = (ACTION_RUN_FAILED,)
