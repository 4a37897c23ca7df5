"""The data-record nodes: list, find, create, update and delete a data source's records.

Each calls the instances service over the bus (``tether.instances.records.*``) as the
system, naming the run's connection and the node's ``dataSourceKey``; instances builds the
request from the data source's collection spec and sends it through the connection (its
credentials never reach flows). Writes carry the execution's idempotency key
(``<runId>:<nodeKey>[:<item>]``), the same on every retry.

Errors: the app's refusal (``app_rejected``, 4xx) and a data source or connection that
cannot be used fail the node at once; an app that is down (``app_unavailable``), slow
(``app_timeout``) or rate-limiting, and an instances service that does not answer, are
transient (retried by the node's retry policy).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from libs.common.contracts import instances as ic
from libs.common.contracts.base import Key, Operation, Reply, Request
from services.flows.nodes.base import NodeCall, NodeConfig, NodeError, NodeResult, NodeType
from services.flows.nodes.system_call import call_system, system_context

ERRORS = (
    " Errors: `app_rejected` when the app refuses the request (4xx; not retried, `data` "
    "holds its status and message, a 429 is retried after its Retry-After), "
    "`app_unavailable` (5xx or unreachable) and `app_timeout` (retried), `no_collection` "
    "or `operation_not_defined` when the data source does not say how, `not_found` when "
    "the connection has no instance of the data source."
)


class RecordsConfig(NodeConfig):
    """What every data-record node names: the data source (on the run's connection)."""

    data_source_key: Key = Field(alias="dataSourceKey")


class ListRecordsConfig(RecordsConfig):
    """List one page of records (``cursor``: the page a previous list named)."""

    cursor: str | None = Field(default=None, max_length=8192)


class FindRecordConfig(RecordsConfig):
    """Read one record by id."""

    id: str = Field(min_length=1, max_length=512)


class CreateRecordConfig(RecordsConfig):
    """Create a record."""

    record: dict[str, Any] = Field(default_factory=dict)


class UpdateRecordConfig(RecordsConfig):
    """Change a record."""

    id: str = Field(min_length=1, max_length=512)
    record: dict[str, Any] = Field(default_factory=dict)


class DeleteRecordConfig(RecordsConfig):
    """Delete a record."""

    id: str = Field(min_length=1, max_length=512)


async def call_records(call: NodeCall, op: Operation[Any, Any], **fields: Any) -> Reply:
    """Send one record request to instances for the run's connection; map its errors.

    Beyond :func:`call_system`'s mapping, an app's 429 is retried after its ``Retry-After``.
    """
    request: Request = op.request.model_validate(
        {**fields, "connection_id": call.connection_id, "ctx": system_context(call)}
    )
    try:
        reply: Reply = await call_system(call, op, request, None)
    except NodeError as exc:
        details = exc.data if isinstance(exc.data, dict) else {}
        if exc.code != "app_rejected" or details.get("status") != 429:
            raise
        wait = details.get("retryAfter")
        raise NodeError(
            exc.code,
            exc.message,
            data=exc.data,
            transient=True,
            retry_after=float(wait) if isinstance(wait, int | float) else None,
        ) from exc.__cause__
    call.log("data_record_call", operation=op.subject.rsplit(".", 1)[-1])
    return reply


def _record(reply: Reply) -> dict[str, Any]:
    return reply.model_dump(mode="json", by_alias=True)


class ListDataRecords(NodeType):
    """List a page of the data source's records in the app."""

    name = "list-data-records"
    config = ListRecordsConfig
    docs = (
        "Lists one page of a data source's records in the app, through the run's "
        "connection. Config: `dataSourceKey`, `cursor` (from a previous list's output; "
        "omit for the first page). Output: `{records: [{id, data, updatedAt}], cursor}` "
        "(`cursor` null on the last page)." + ERRORS
    )

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """List one page."""
        assert isinstance(config, ListRecordsConfig)
        page = await call_records(
            call, ic.RECORDS_LIST, data_source_key=config.data_source_key, cursor=config.cursor
        )
        assert isinstance(page, ic.DataRecordPage)
        return NodeResult(
            output={"records": [_record(r) for r in page.items], "cursor": page.cursor}
        )


class FindDataRecord(NodeType):
    """Read one record by id."""

    name = "find-data-record"
    config = FindRecordConfig
    docs = (
        "Reads one record of a data source by `id`. Config: `dataSourceKey`, `id`. Output: "
        "`{found: true, record: {id, data, updatedAt}}`, or `{found: false, record: null}` "
        "when the app answers 404." + ERRORS
    )

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Read the record; a 404 from the app is ``found: false``."""
        assert isinstance(config, FindRecordConfig)
        try:
            found = await call_records(
                call, ic.RECORDS_GET, data_source_key=config.data_source_key, record_id=config.id
            )
        except NodeError as exc:
            gone = isinstance(exc.data, dict) and exc.data.get("status") in (404, 410)
            if exc.code == "app_rejected" and gone:
                return NodeResult(output={"found": False, "record": None})
            raise
        return NodeResult(output={"found": True, "record": _record(found)})


class CreateDataRecord(NodeType):
    """Create a record in the app."""

    name = "create-data-record"
    config = CreateRecordConfig
    docs = (
        "Creates a record of a data source in the app. Config: `dataSourceKey`, `record` "
        "(an object; values may be expressions). Sent with `Idempotency-Key: "
        "<runId>:<nodeKey>[:<item>]`. Output: `{id, data, updatedAt}` as the app answered." + ERRORS
    )

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Create the record."""
        assert isinstance(config, CreateRecordConfig)
        created = await call_records(
            call,
            ic.RECORDS_CREATE,
            data_source_key=config.data_source_key,
            record=config.record,
            idempotency_key=call.idempotency_key,
        )
        return NodeResult(output=_record(created))


class UpdateDataRecord(NodeType):
    """Change a record in the app."""

    name = "update-data-record"
    config = UpdateRecordConfig
    docs = (
        "Changes a record of a data source in the app. Config: `dataSourceKey`, `id`, "
        "`record` (the fields to change). Output: `{id, data, updatedAt}`." + ERRORS
    )

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Update the record."""
        assert isinstance(config, UpdateRecordConfig)
        changed = await call_records(
            call,
            ic.RECORDS_UPDATE,
            data_source_key=config.data_source_key,
            record_id=config.id,
            record=config.record,
            idempotency_key=call.idempotency_key,
        )
        return NodeResult(output=_record(changed))


class DeleteDataRecord(NodeType):
    """Delete a record in the app."""

    name = "delete-data-record"
    config = DeleteRecordConfig
    docs = (
        "Deletes a record of a data source in the app. Config: `dataSourceKey`, `id`. "
        "Output: `{id, deleted: true}`." + ERRORS
    )

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Delete the record."""
        assert isinstance(config, DeleteRecordConfig)
        gone = await call_records(
            call,
            ic.RECORDS_DELETE,
            data_source_key=config.data_source_key,
            record_id=config.id,
            idempotency_key=call.idempotency_key,
        )
        return NodeResult(output=_record(gone))


RECORD_NODES: tuple[NodeType, ...] = (
    ListDataRecords(),
    FindDataRecord(),
    CreateDataRecord(),
    UpdateDataRecord(),
    DeleteDataRecord(),
)
"""The data-record node types, for the registry."""
