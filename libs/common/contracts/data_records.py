"""Data records: how a data source reads and writes its app's records, and the sync of them.

Instances answers these subjects; ``libs.common.contracts.instances`` re-exports every name
here, so callers import that one module (``from libs.common.contracts import instances``).

A data source's ``collection`` says how to call the app for its records. Every request
template (``path``, ``query``, ``body``) may hold expressions — ``{{ … }}`` in strings and
``{"$expr": …}`` values, JMESPath, the one language of :mod:`libs.common.expressions` —
evaluated over ``{id, record, cursor, page, updatedSince}`` (what the call has). ``idPath``
and ``updatedAtPath`` are JMESPath into one record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from libs.common.contracts.base import (
    AppPath,
    Contract,
    Key,
    Operation,
    PageRequest,
    Reply,
    Request,
)

RecordMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Param = Annotated[str, Field(min_length=1, max_length=200)]
JmesPath = Annotated[str, Field(min_length=1, max_length=2000)]
RecordId = Annotated[str, Field(min_length=1, max_length=512)]

# --- the collection spec ----------------------------------------------------------------


class CursorPagination(Contract):
    """The answer holds the next page's cursor (``cursorPath``); send it as query ``param``."""

    type: Literal["cursor"]
    param: Param = "cursor"
    cursor_path: JmesPath


class PagePagination(Contract):
    """Pages are numbered from ``start`` (query ``param``); an empty or short page is the last."""

    type: Literal["page"]
    param: Param = "page"
    start: int = Field(default=1, ge=0, le=1_000_000)
    size_param: Param | None = None
    size: int | None = Field(default=None, ge=1, le=10_000)


class LinkPagination(Contract):
    """The answer's ``Link`` header names the next page (``rel="next"``)."""

    type: Literal["link"]


Pagination = Annotated[
    CursorPagination | PagePagination | LinkPagination, Field(discriminator="type")
]


class UpdatedSinceSpec(Contract):
    """Ask only for records changed since the last completed pass (incremental syncs)."""

    param: Param
    format: Literal["iso", "epoch", "epoch_ms"] = "iso"


class ListSpec(Contract):
    """List the records, page by page; ``itemsPath`` finds a page's records in the answer."""

    path: AppPath
    query: dict[str, Any] = Field(default_factory=dict)
    items_path: JmesPath
    pagination: Pagination | None = None
    updated_since: UpdatedSinceSpec | None = None


class RecordCall(Contract):
    """One request about one record; ``recordPath`` finds the record in the answer (default: all)."""

    path: AppPath
    query: dict[str, Any] = Field(default_factory=dict)
    body: Any = None
    record_path: JmesPath | None = None


class GetSpec(RecordCall):
    """Read one record (``{{ id }}`` in the path)."""

    method: RecordMethod = "GET"


class CreateSpec(RecordCall):
    """Create a record (``{{ record }}`` is what the caller gave)."""

    method: RecordMethod = "POST"
    body: Any = Field(default_factory=lambda: {"$expr": "record"})


class UpdateSpec(RecordCall):
    """Change a record (``{{ id }}``, ``{{ record }}``)."""

    method: RecordMethod = "PATCH"
    body: Any = Field(default_factory=lambda: {"$expr": "record"})


class DeleteSpec(RecordCall):
    """Delete a record (``{{ id }}``)."""

    method: RecordMethod = "DELETE"


class CollectionSpec(Contract):
    """How to list, read, create, change and delete the app's records."""

    list: ListSpec
    get: GetSpec | None = None
    create: CreateSpec | None = None
    update: UpdateSpec | None = None
    delete: DeleteSpec | None = None
    id_path: JmesPath = "id"
    updated_at_path: JmesPath | None = None


class SyncSpec(Contract):
    """Copy the records into Tether every ``intervalMinutes``, detecting changes.

    ``incremental`` passes ask for records changed since the last completed pass (the list's
    ``updatedSince``) and never delete; ``full`` passes read everything and delete what a
    completed pass no longer saw, unless that is over ``massDeleteThreshold`` percent of the
    records (then the pass is held for an admin).
    """

    interval_minutes: int = Field(ge=1, le=525_600)
    mode: Literal["incremental", "full"] = "full"
    mass_delete_threshold: float = Field(default=50.0, ge=0, le=100)


class RecordEventSpec(Contract):
    """Turn an app event into a record change of data source ``dataSourceKey``."""

    data_source_key: Key
    type: Literal["created", "updated", "deleted"]
    id_path: JmesPath
    record_path: JmesPath | None = Field(
        default=None, description="JMESPath to the record in the event (default: the event)"
    )


# --- sync state -------------------------------------------------------------------------

SyncState = Literal["idle", "queued", "running", "held", "failed"]
PassStatus = Literal["running", "completed", "failed", "held", "discarded"]


class SyncPass(Contract):
    """One pass of a sync over the collection, with its figures."""

    id: UUID
    mode: Literal["incremental", "full"]
    status: PassStatus
    started_at: datetime
    ended_at: datetime | None
    pages: int
    records: int
    created: int
    updated: int
    deleted: int
    would_delete: int | None = Field(
        default=None, description="A held pass: the records it would delete"
    )
    live_records: int | None = Field(
        default=None, description="A held pass: the records stored before it"
    )
    error: str | None


class SyncStatus(Reply):
    """Where a data-source instance's sync stands."""

    id: UUID
    sync_state: SyncState
    last_pass: SyncPass | None


class SyncRequest(Request):
    """About one data-source instance's sync."""

    id: UUID


class SyncPassListRequest(PageRequest):
    """List a data-source instance's sync passes, newest first."""

    id: UUID


class SyncPassPage(Reply):
    """Sync passes, newest first; ``cursor`` continues after the page (null: the last)."""

    items: list[SyncPass]
    cursor: str | None


# --- live records -----------------------------------------------------------------------


class RecordTarget(Request):
    """A data-source instance: by ``id``, or by ``connectionId`` and ``dataSourceKey``."""

    id: UUID | None = None
    connection_id: UUID | None = None
    data_source_key: Key | None = None


class RecordListRequest(RecordTarget):
    """List one page of records from the app (``cursor``: the page a previous one named)."""

    cursor: str | None = Field(default=None, max_length=8192)


class RecordGetRequest(RecordTarget):
    """Read one record from the app."""

    record_id: RecordId


class RecordCreateRequest(RecordTarget):
    """Create a record in the app."""

    record: dict[str, Any]
    idempotency_key: str | None = Field(default=None, max_length=256)


class RecordUpdateRequest(RecordTarget):
    """Change a record in the app."""

    record_id: RecordId
    record: dict[str, Any]
    idempotency_key: str | None = Field(default=None, max_length=256)


class RecordDeleteRequest(RecordTarget):
    """Delete a record in the app."""

    record_id: RecordId
    idempotency_key: str | None = Field(default=None, max_length=256)


class DataRecord(Reply):
    """A record as the app gave it, with its id (``idPath``) and ``updatedAt`` (if known)."""

    id: str
    data: Any
    updated_at: datetime | None = None


class DataRecordPage(Reply):
    """One page of records; ``cursor`` asks for the next one (null: the last page)."""

    items: list[DataRecord]
    cursor: str | None


class RecordDeleted(Reply):
    """A record the app deleted."""

    id: str
    deleted: bool


# --- synced records ---------------------------------------------------------------------


class SyncedRecordListRequest(PageRequest):
    """Read the stored copy, oldest change first (``changedSince``: changed after that time)."""

    id: UUID
    changed_since: datetime | None = None


class SyncedRecord(Reply):
    """A record as the last sync stored it (``deletedAt`` once the app no longer has it)."""

    id: str
    data: Any
    updated_at: datetime | None
    deleted_at: datetime | None
    first_seen_at: datetime
    last_modified_at: datetime


class SyncedRecordPage(Reply):
    """Stored records, by ``lastModifiedAt``; ``cursor`` continues after the page."""

    items: list[SyncedRecord]
    cursor: str | None


# --- operations -------------------------------------------------------------------------

RECORDS_LIST = Operation(
    "tether.instances.records.list", RecordListRequest, DataRecordPage, "List records in the app"
)
RECORDS_GET = Operation(
    "tether.instances.records.get", RecordGetRequest, DataRecord, "Read a record in the app"
)
RECORDS_CREATE = Operation(
    "tether.instances.records.create",
    RecordCreateRequest,
    DataRecord,
    "Create a record in the app",
)
RECORDS_UPDATE = Operation(
    "tether.instances.records.update",
    RecordUpdateRequest,
    DataRecord,
    "Change a record in the app",
)
RECORDS_DELETE = Operation(
    "tether.instances.records.delete",
    RecordDeleteRequest,
    RecordDeleted,
    "Delete a record in the app",
)
SYNCS_START = Operation(
    "tether.instances.syncs.start", SyncRequest, SyncStatus, "Run a sync pass now"
)
SYNCS_CONFIRM = Operation(
    "tether.instances.syncs.confirm", SyncRequest, SyncStatus, "Apply a held pass's deletions"
)
SYNCS_DISCARD = Operation(
    "tether.instances.syncs.discard", SyncRequest, SyncStatus, "Drop a held pass's deletions"
)
SYNCED_RECORDS_LIST = Operation(
    "tether.instances.synced_records.list",
    SyncedRecordListRequest,
    SyncedRecordPage,
    "Read the synced copy",
)

SYNC_PASSES_LIST = Operation(
    "tether.instances.syncs.passes",
    SyncPassListRequest,
    SyncPassPage,
    "List a data-source instance's sync passes",
)

DATA_RECORD_OPERATIONS = (
    RECORDS_LIST,
    RECORDS_GET,
    RECORDS_CREATE,
    RECORDS_UPDATE,
    RECORDS_DELETE,
    SYNCS_START,
    SYNCS_CONFIRM,
    SYNCS_DISCARD,
    SYNCED_RECORDS_LIST,
    SYNC_PASSES_LIST,
)
