"""The ``apply-field-mapping`` node: map a record with the run's connection's field mapping.

The instances service maps it (``tether.instances.field_mapping_instances.run_on_connection``,
called as the system for the run's workspace and connection): the instance's effective
mapping (its customisation included), the type conversions and the broken check are all
there; this node passes the direction and the record and returns the mapped one.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from libs.common.contracts import instances
from libs.common.contracts.base import Key
from services.flows.nodes.base import NodeCall, NodeConfig, NodeResult, NodeType
from services.flows.nodes.system_call import call_system, system_context


class ApplyFieldMappingConfig(NodeConfig):
    """Map one record with a field mapping of the run's connection."""

    field_mapping_key: Key = Field(alias="fieldMappingKey")
    direction: instances.Direction
    input: dict[str, Any] = Field(default_factory=dict)


class ApplyFieldMapping(NodeType):
    """Map a record (import or export) with the connection's field-mapping instance."""

    name = "apply-field-mapping"
    config = ApplyFieldMappingConfig
    docs = (
        "Maps one record with the run's connection's instance of a field mapping (see "
        "/field-mappings), its customer's customisation included. Config: `fieldMappingKey`, "
        '`direction` ("import": an external record of the connection\'s app → the '
        "workspace's fields; \"export\": the workspace's record → the app's fields) and "
        '`input` (an object, usually an expression such as `{"$expr": "input"}`). '
        "Output: the mapped record (fields whose value is null are left out, values "
        "converted to each field's type). Errors: `field_mapping_instance_not_found` (the "
        "connection has no instance of the mapping), `field_mapping_broken` (a field its "
        "customisation maps is gone from the app; `data` names it), `conversion_failed` "
        "and `invalid_expression` (a value cannot be converted or an expression failed; "
        "`data` names the field) — none retried; an instances service that does not "
        "answer is retried."
    )

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Ask the instances service to map the record."""
        assert isinstance(config, ApplyFieldMappingConfig)
        request = instances.FieldMappingRunOnConnectionRequest(
            field_mapping_key=config.field_mapping_key,
            connection_id=call.connection_id,
            direction=config.direction,
            input=config.input,
            ctx=system_context(call),
        )
        result = await call_system(
            call,
            instances.FIELD_MAPPING_INSTANCES_RUN_ON_CONNECTION,
            request,
            f"field mapping {config.field_mapping_key}",
        )
        return NodeResult(output=result.output)
