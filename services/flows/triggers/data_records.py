"""Start flow runs from data-record changes: instances' ``data_record.*``, durably consumed.

Each ``data_record.created`` / ``updated`` / ``deleted`` event starts one run of every
enabled, non-archived flow instance on the event's connection whose trigger is
``data-record-<verb>`` with the event's ``dataSourceKey`` and whose optional filter is
truthy over the event's JSON (``{eventId, workspaceId, customerId, connectionId,
integrationKey, dataSourceKey, dataSourceInstanceId, recordId, record}``). The run's input
is ``{record, recordId, dataSourceKey}`` (``record`` is null for a deletion); its trigger is
``{type: data-record-<verb>, eventId}``. Exactly once per event per instance, redeliveries
included: see :mod:`services.flows.triggers.matching`.
"""

from __future__ import annotations

from typing import Any

from libs.common.contracts import flows as c
from libs.common.contracts import instances as ic
from libs.common.contracts.base import Event, EventType
from libs.common.db import Conn
from services.flows.settings import FlowsOptions
from services.flows.triggers.matching import start_triggered

DURABLE = "flows-data-records"
TRIGGER_OF: dict[str, c.TriggerType] = {
    ic.DATA_RECORD_CREATED.subject: "data-record-created",
    ic.DATA_RECORD_UPDATED.subject: "data-record-updated",
    ic.DATA_RECORD_DELETED.subject: "data-record-deleted",
}
EVENTS: tuple[EventType[Any], ...] = (
    ic.DATA_RECORD_CREATED,
    ic.DATA_RECORD_UPDATED,
    ic.DATA_RECORD_DELETED,
)


async def on_data_record(
    conn: Conn, kind: EventType[Any], event: Event, *, options: FlowsOptions
) -> None:
    """Start the runs one data-record change triggers, in the consumer's transaction."""
    if not isinstance(event, ic.DataRecordEvent):  # EVENTS holds data-record events only
        raise TypeError(f"not a data-record event: {kind.subject}")
    await start_triggered(
        conn,
        event,
        connection_id=event.connection_id,
        trigger_type=TRIGGER_OF[kind.subject],
        key_field="dataSourceKey",
        key=event.data_source_key,
        input={
            "record": event.record,
            "recordId": event.record_id,
            "dataSourceKey": event.data_source_key,
        },
        options=options,
    )
