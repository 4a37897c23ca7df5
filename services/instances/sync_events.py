"""Emit ``data_record.created/updated/deleted`` through the outbox, many at a time.

A sync page's events commit with the page's rows (the caller's transaction), exactly as
:func:`libs.common.outbox.emit` would write them one by one; a page of a thousand changes
is one pipelined insert and one ``NOTIFY`` (:func:`libs.common.outbox.emit_many`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from libs.common.contracts import instances as c
from libs.common.contracts.base import EventType
from libs.common.db import Conn
from libs.common.outbox import emit_many
from services.instances.store.data_source_instances import DataSourceInstanceRecord

Kind = Literal["created", "updated", "deleted"]
EVENT_OF: dict[Kind, EventType[c.DataRecordEvent]] = {
    "created": c.DATA_RECORD_CREATED,
    "updated": c.DATA_RECORD_UPDATED,
    "deleted": c.DATA_RECORD_DELETED,
}


def record_event(
    instance: DataSourceInstanceRecord, integration_key: str, record_id: str, record: Any
) -> c.DataRecordEvent:
    """Return the event about one record of ``instance`` (``record`` None for a deletion)."""
    return c.DataRecordEvent(
        workspace_id=instance.workspace_id,
        customer_id=instance.customer_id,
        connection_id=instance.connection_id,
        integration_key=integration_key,
        data_source_key=instance.data_source_key,
        data_source_instance_id=instance.id,
        record_id=record_id,
        record=record,
    )


async def emit_records(
    conn: Conn,
    instance: DataSourceInstanceRecord,
    integration_key: str,
    changes: Iterable[tuple[Kind, str, Any]],
) -> int:
    """Queue one event per ``(kind, record id, record)`` in the caller's transaction; count them."""
    return await emit_many(
        conn,
        [
            (EVENT_OF[kind], record_event(instance, integration_key, record_id, record))
            for kind, record_id, record in changes
        ],
    )
