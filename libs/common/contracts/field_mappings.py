"""Field mappings' subjects and models (served by the instances service, re-exported by its contracts).

A field mapping says how the workspace's own fields (``appSchema``, a JSON Schema of an
object) map to the fields of a connection's data source (its ``fieldsSchema``, custom
fields included), both ways:

* ``importValue``: app field → an expression over the *external* record (an app record
  built from what the connection's app holds);
* ``exportValue``: external field → an expression over the *app* record.

Expressions are the one language of ``libs/common/expressions.py`` (``{"$expr": …}`` and
``{{ … }}``); ``{"$expr": "email"}`` is a plain field reference. Definitions have
revisions and levels as actions do; deployments build one instance per connection on
that connection's ``fieldsSchema``, which a customer may customise (which external field
feeds each app field) with the one customisation mechanism (a JSON Merge Patch over
``{importValue, exportValue}``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field, field_validator

from libs.common.contracts.actions import Level
from libs.common.contracts.base import (
    Contract,
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
    "FIELD_MAPPINGS_CREATE",
    "FIELD_MAPPINGS_DELETE",
    "FIELD_MAPPINGS_GET",
    "FIELD_MAPPINGS_LIST",
    "FIELD_MAPPINGS_PATCH",
    "FIELD_MAPPINGS_REVISION",
    "FIELD_MAPPINGS_REVISIONS",
    "FIELD_MAPPING_INSTANCES_GET",
    "FIELD_MAPPING_INSTANCES_LIST",
    "FIELD_MAPPING_INSTANCES_PATCH",
    "FIELD_MAPPING_INSTANCES_RESET",
    "FIELD_MAPPING_INSTANCES_RUN",
    "FIELD_MAPPING_INSTANCES_RUN_ON_CONNECTION",
    "FIELD_MAPPING_INSTANCES_UPGRADE",
    "AppField",
    "Direction",
    "ExternalField",
    "FieldMapping",
    "FieldMappingCreateRequest",
    "FieldMappingDefinition",
    "FieldMappingDeleteRequest",
    "FieldMappingDeleted",
    "FieldMappingGetRequest",
    "FieldMappingInstance",
    "FieldMappingInstanceGetRequest",
    "FieldMappingInstanceListRequest",
    "FieldMappingInstancePage",
    "FieldMappingInstancePatchRequest",
    "FieldMappingInstanceRef",
    "FieldMappingInstanceResetRequest",
    "FieldMappingInstanceRunRequest",
    "FieldMappingInstanceUpgradeRequest",
    "FieldMappingListRequest",
    "FieldMappingPage",
    "FieldMappingPatchRequest",
    "FieldMappingProblem",
    "FieldMappingRef",
    "FieldMappingRevision",
    "FieldMappingRevisionGetRequest",
    "FieldMappingRevisionPage",
    "FieldMappingRevisionsRequest",
    "FieldMappingRunOnConnectionRequest",
    "FieldMappingRunResult",
]

Direction = Literal["import", "export"]

# --- definitions ------------------------------------------------------------------------


class FieldMappingDefinition(Contract):
    """What one revision of a field mapping says (key, level, scope and data source never change)."""

    name: Name
    app_schema: dict[str, Any] = Field(
        description="JSON Schema 2020-12 of the workspace's own record (an object)"
    )
    import_value: dict[str, Any] = Field(
        default_factory=dict, description="App field → expression over the external record"
    )
    export_value: dict[str, Any] = Field(
        default_factory=dict, description="External field → expression over the app record"
    )
    auto_deploy: bool = False


class FieldMapping(Reply):
    """A field mapping at its newest revision."""

    key: str
    level: Level
    integration_key: str | None
    customer_id: str | None
    data_source_key: str
    name: str
    app_schema: dict[str, Any]
    import_value: dict[str, Any]
    export_value: dict[str, Any]
    auto_deploy: bool
    revision: int
    created_at: datetime
    updated_at: datetime


class FieldMappingPage(Reply):
    """A page of field mappings."""

    items: list[FieldMapping]
    cursor: str | None


class FieldMappingRef(Request):
    """A request about one field mapping."""

    key: Key


class FieldMappingGetRequest(FieldMappingRef):
    """Read a field mapping."""


class FieldMappingCreateRequest(Request):
    """Define a field mapping of a data source: universal, for one integration or one customer."""

    key: Key
    level: Level
    integration_key: Key | None = None
    customer_id: str | None = Field(default=None, min_length=1, max_length=256)
    data_source_key: Key
    name: Name
    app_schema: dict[str, Any]
    import_value: dict[str, Any] = Field(default_factory=dict)
    export_value: dict[str, Any] = Field(default_factory=dict)
    auto_deploy: bool = False

    def definition(self) -> FieldMappingDefinition:
        """Return the first revision this request gives."""
        return FieldMappingDefinition.model_validate(
            self.model_dump(include=set(FieldMappingDefinition.model_fields))
        )


class FieldMappingPatchRequest(FieldMappingRef):
    """Change parts of a field mapping; ``revision`` (or If-Match) must be the current one."""

    revision: Revision | None = None
    name: Name | None = None
    app_schema: dict[str, Any] | None = None
    import_value: dict[str, Any] | None = None
    export_value: dict[str, Any] | None = None
    auto_deploy: bool | None = None

    @field_validator(
        "name", "app_schema", "import_value", "export_value", "auto_deploy", mode="before"
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return not_null(value)

    def given(self) -> dict[str, Any]:
        """Return the definition fields this request sets (left-out fields keep their value)."""
        return {
            k: getattr(self, k)
            for k in self.model_fields_set
            if k in FieldMappingDefinition.model_fields
        }


class FieldMappingDeleteRequest(FieldMappingRef):
    """Delete a field mapping with its revisions and instances."""


class FieldMappingDeleted(Reply):
    """What was deleted."""

    deleted: bool
    instances: int


class FieldMappingListRequest(PageRequest):
    """List field mappings by key."""

    level: Level | None = None
    integration_key: str | None = None
    customer_id: str | None = None
    data_source_key: str | None = None


class FieldMappingRevision(Reply):
    """One revision of a field mapping."""

    revision: int
    definition: FieldMappingDefinition
    created_at: datetime


class FieldMappingRevisionPage(Reply):
    """A field mapping's revisions, newest first."""

    items: list[FieldMappingRevision]


class FieldMappingRevisionsRequest(FieldMappingRef):
    """List a field mapping's revisions."""


class FieldMappingRevisionGetRequest(FieldMappingRef):
    """Read one revision."""

    n: Revision


# --- instances --------------------------------------------------------------------------


class ExternalField(Contract):
    """One field of the connection's data source, from its fetched ``fieldsSchema``."""

    name: str
    type: str | None
    title: str | None = None


class AppField(Contract):
    """One app field of an instance: what feeds it now and what may feed it."""

    type: str | None
    source: str | None = Field(
        description="The external field that feeds it (null: an expression, or nothing)"
    )
    value: Any = Field(default=None, description="The effective importValue expression")
    customized: bool
    options: list[str] = Field(description="External fields of a type that converts to it")


class FieldMappingProblem(Contract):
    """Why an instance is broken: a field its customisation maps is gone from the schema."""

    app_field: str | None
    external_field: str
    message: str


class FieldMappingInstance(Reply):
    """A field mapping on one connection: its customisation and effective mapping."""

    id: UUID
    field_mapping_key: str
    data_source_key: str
    connection_id: UUID
    customer_id: str
    integration_key: str
    base_revision: int
    latest_revision: int
    outdated: bool
    customization: dict[str, Any]
    app_schema: dict[str, Any]
    import_value: dict[str, Any]
    export_value: dict[str, Any]
    fields: dict[str, AppField]
    external_fields: list[ExternalField]
    broken: bool
    problems: list[FieldMappingProblem]
    archived: bool
    created_at: datetime
    updated_at: datetime


class FieldMappingInstancePage(Reply):
    """A page of field-mapping instances."""

    items: list[FieldMappingInstance]
    cursor: str | None


class FieldMappingInstanceRef(Request):
    """A request about one field-mapping instance."""

    id: UUID


class FieldMappingInstanceGetRequest(FieldMappingInstanceRef):
    """Read an instance with its effective mapping and the fields each app field may map to."""


class FieldMappingInstanceListRequest(PageRequest):
    """List field-mapping instances (a customer sees their own)."""

    connection_id: UUID | None = None
    field_mapping_key: str | None = None
    customer_id: str | None = None


class FieldMappingInstancePatchRequest(FieldMappingInstanceRef):
    """Customise an instance.

    ``fields`` (customers and admins): app field → the external field that feeds it on
    import and that it feeds on export (``null``: back to the definition's mapping).
    ``customization`` (admins): the whole JSON Merge Patch over ``{importValue,
    exportValue}``, replacing the current one.
    """

    fields: dict[str, str | None] | None = None
    customization: dict[str, Any] | None = None


class FieldMappingInstanceUpgradeRequest(FieldMappingInstanceRef):
    """Re-apply the customisation onto the field mapping's newest revision (three-way)."""


class FieldMappingInstanceResetRequest(FieldMappingInstanceRef):
    """Drop the customisation and move to the field mapping's newest revision."""


class FieldMappingInstanceRunRequest(FieldMappingInstanceRef):
    """Map one record: ``import`` (external → app) or ``export`` (app → external)."""

    direction: Direction
    input: dict[str, Any]


class FieldMappingRunOnConnectionRequest(Request):
    """Map one record with a connection's instance of a field mapping (services only)."""

    field_mapping_key: Key
    connection_id: UUID
    direction: Direction
    input: dict[str, Any]


class FieldMappingRunResult(Reply):
    """The mapped record."""

    output: dict[str, Any]


# --- operations -------------------------------------------------------------------------

FIELD_MAPPINGS_LIST = Operation(
    "tether.instances.field_mappings.list",
    FieldMappingListRequest,
    FieldMappingPage,
    "List field mappings",
)
FIELD_MAPPINGS_CREATE = Operation(
    "tether.instances.field_mappings.create",
    FieldMappingCreateRequest,
    FieldMapping,
    "Define a field mapping",
)
FIELD_MAPPINGS_GET = Operation(
    "tether.instances.field_mappings.get",
    FieldMappingGetRequest,
    FieldMapping,
    "Read a field mapping",
)
FIELD_MAPPINGS_PATCH = Operation(
    "tether.instances.field_mappings.patch",
    FieldMappingPatchRequest,
    FieldMapping,
    "Change a field mapping",
)
FIELD_MAPPINGS_DELETE = Operation(
    "tether.instances.field_mappings.delete",
    FieldMappingDeleteRequest,
    FieldMappingDeleted,
    "Delete a field mapping",
)
FIELD_MAPPINGS_REVISIONS = Operation(
    "tether.instances.field_mappings.revisions",
    FieldMappingRevisionsRequest,
    FieldMappingRevisionPage,
    "List a field mapping's revisions",
)
FIELD_MAPPINGS_REVISION = Operation(
    "tether.instances.field_mappings.revision",
    FieldMappingRevisionGetRequest,
    FieldMappingRevision,
    "Read a revision of a field mapping",
)
FIELD_MAPPING_INSTANCES_LIST = Operation(
    "tether.instances.field_mapping_instances.list",
    FieldMappingInstanceListRequest,
    FieldMappingInstancePage,
    "List field-mapping instances",
)
FIELD_MAPPING_INSTANCES_GET = Operation(
    "tether.instances.field_mapping_instances.get",
    FieldMappingInstanceGetRequest,
    FieldMappingInstance,
    "Read a field-mapping instance",
)
FIELD_MAPPING_INSTANCES_PATCH = Operation(
    "tether.instances.field_mapping_instances.patch",
    FieldMappingInstancePatchRequest,
    FieldMappingInstance,
    "Customise a field-mapping instance",
)
FIELD_MAPPING_INSTANCES_UPGRADE = Operation(
    "tether.instances.field_mapping_instances.upgrade",
    FieldMappingInstanceUpgradeRequest,
    FieldMappingInstance,
    "Upgrade a field-mapping instance",
)
FIELD_MAPPING_INSTANCES_RESET = Operation(
    "tether.instances.field_mapping_instances.reset",
    FieldMappingInstanceResetRequest,
    FieldMappingInstance,
    "Reset a field-mapping instance",
)
FIELD_MAPPING_INSTANCES_RUN = Operation(
    "tether.instances.field_mapping_instances.run",
    FieldMappingInstanceRunRequest,
    FieldMappingRunResult,
    "Map a record with a field-mapping instance",
)
FIELD_MAPPING_INSTANCES_RUN_ON_CONNECTION = Operation(
    "tether.instances.field_mapping_instances.run_on_connection",
    FieldMappingRunOnConnectionRequest,
    FieldMappingRunResult,
    "Map a record with a connection's field-mapping instance (services only)",
)

OPERATIONS = (
    FIELD_MAPPINGS_LIST,
    FIELD_MAPPINGS_CREATE,
    FIELD_MAPPINGS_GET,
    FIELD_MAPPINGS_PATCH,
    FIELD_MAPPINGS_DELETE,
    FIELD_MAPPINGS_REVISIONS,
    FIELD_MAPPINGS_REVISION,
    FIELD_MAPPING_INSTANCES_LIST,
    FIELD_MAPPING_INSTANCES_GET,
    FIELD_MAPPING_INSTANCES_PATCH,
    FIELD_MAPPING_INSTANCES_UPGRADE,
    FIELD_MAPPING_INSTANCES_RESET,
    FIELD_MAPPING_INSTANCES_RUN,
    FIELD_MAPPING_INSTANCES_RUN_ON_CONNECTION,
)
