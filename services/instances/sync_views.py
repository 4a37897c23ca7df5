"""Find the data-source instance a caller may use, and show where its sync stands.

One visibility rule for every record and sync operation: an admin (or a service) sees its
workspace's instances, a customer only those of their own connections; anything else is
``NotFound``, exactly as a missing instance (another customer's or workspace's instance is
never told apart from none). Archived instances are gone.
"""

from __future__ import annotations

from uuid import UUID

from libs.common.contracts import instances as c
from libs.common.contracts.base import Context
from libs.common.db import Conn
from libs.common.errors import Conflict, InvalidInput, NotFound
from services.instances.store import data_source_instances, definitions, syncs
from services.instances.store.data_source_instances import DataSourceInstanceRecord
from services.instances.store.definitions import DataSourceRecord


async def visible_instance(
    conn: Conn, ctx: Context, instance_id: UUID, *, archived: bool = False
) -> DataSourceInstanceRecord:
    """Return an instance by id if the caller may see it (and use it, unless ``archived``)."""
    workspace_id = ctx.workspace()
    ctx.customer_filter(None)  # refuse callers that are neither admin nor customer
    found = await data_source_instances.select_data_source_instance(conn, workspace_id, instance_id)
    gone = found is not None and found.status == "archived" and not archived
    if found is None or gone or not ctx.sees(found.customer_id):
        raise NotFound("data-source instance not found")
    return found


async def target_instance(conn: Conn, req: c.RecordTarget) -> DataSourceInstanceRecord:
    """Return the instance a record request names (by id, or connection and data source)."""
    if req.id is not None:
        return await visible_instance(conn, req.ctx, req.id)
    if req.connection_id is None or req.data_source_key is None:
        raise InvalidInput(
            "name the data-source instance: id, or connectionId and dataSourceKey",
            details=[{"field": "id", "message": "required without connectionId and dataSourceKey"}],
        )
    workspace_id = req.ctx.workspace()
    req.ctx.customer_filter(None)
    found = await syncs.instance_by_key(conn, workspace_id, req.connection_id, req.data_source_key)
    if found is None or found.status == "archived" or not req.ctx.sees(found.customer_id):
        raise NotFound(f"no instance of data source {req.data_source_key} on that connection")
    return found


async def collection_of(
    conn: Conn, instance: DataSourceInstanceRecord
) -> tuple[DataSourceRecord, c.CollectionSpec]:
    """Return the instance's data source and its collection; Conflict when it has none."""
    definition = await definitions.select_data_source(
        conn, instance.workspace_id, instance.data_source_key
    )
    if definition is None or definition.collection is None:
        raise Conflict(
            f"data source {instance.data_source_key} defines no collection",
            code="no_collection",
        )
    return definition, definition.collection


async def sync_status(conn: Conn, instance: DataSourceInstanceRecord) -> c.SyncStatus:
    """Return the instance's sync state and its newest pass."""
    last = await syncs.last_pass(conn, instance.workspace_id, instance.id)
    pending = await syncs.has_pending_job(conn, instance.workspace_id, instance.id)
    return status_of(instance.id, last, pending)


async def sync_statuses(
    conn: Conn, workspace_id: UUID, instance_ids: list[UUID]
) -> dict[UUID, c.SyncStatus]:
    """Return the sync state and newest pass of several instances in two queries."""
    last = await syncs.last_passes(conn, workspace_id, instance_ids)
    pending = await syncs.pending_jobs(conn, workspace_id, instance_ids)
    return {i: status_of(i, last.get(i), i in pending) for i in instance_ids}


def status_of(instance_id: UUID, last: syncs.PassRecord | None, pending: bool) -> c.SyncStatus:
    """Name an instance's sync state from its newest pass and whether a job waits.

    ``running``/``held``/``failed`` follow the newest pass; ``queued`` means a pass waits
    for a worker; ``idle`` is everything else (never synced, or the last pass ended well).
    """
    state: c.SyncState = "idle"
    if last is not None and last.status in ("running", "held"):
        state = last.status
    elif pending:
        state = "queued"
    elif last is not None and last.status == "failed":
        state = "failed"
    return c.SyncStatus(
        id=instance_id, sync_state=state, last_pass=last.view() if last is not None else None
    )


async def instance_view(conn: Conn, ctx: Context, instance_id: UUID) -> c.DataSourceInstance:
    """Return one instance as ``GET /data-source-instances/{id}`` shows it."""
    instance = await visible_instance(conn, ctx, instance_id, archived=True)
    status = await sync_status(conn, instance)
    return c.DataSourceInstance.model_validate(
        {
            **instance.model_dump(),
            "sync_state": status.sync_state,
            "last_pass": status.last_pass,
        }
    )
