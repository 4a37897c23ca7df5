"""Turn app events into record changes: ``recordEvent`` on an app-event type.

An app that pushes its changes (a webhook per created, updated or deleted contact) needs no
polling: each event of an app-event type with ``recordEvent: {dataSourceKey, type, idPath,
recordPath?}`` is stored in the connection's instance of that data source and emits the same
``data_record.*`` events a sync would, in the webhook's own transaction (with its
``app_event.received``). Like a sync, it emits only what changes the stored copy: a
``created`` or ``updated`` event is ``data_record.created`` for a record not stored (or
deleted before), ``data_record.updated`` for a changed one, nothing for an unchanged one; a
``deleted`` event emits ``data_record.deleted`` unless the record is deleted already.
An event without an id at ``idPath``, or a connection without an instance of the data
source, changes nothing (logged).
"""

from __future__ import annotations

from typing import Any

import structlog

from libs.common import expressions
from libs.common.db import Conn
from services.instances.collection import canonical_json, content_hash, updated_at
from services.instances.store import definitions, records, syncs
from services.instances.store.definitions import AppEventTypeRecord
from services.instances.store.records import IncomingRecord
from services.instances.store.subscriptions import SubscriptionRecord
from services.instances.sync_events import emit_records

log = structlog.get_logger(__name__)


def _id_of(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list | bool) or value == "":
        return None
    return str(value)[:512]


async def record_change(
    conn: Conn, sub: SubscriptionRecord, definition: AppEventTypeRecord, event: Any
) -> int:
    """Apply one app event as a record change (in the caller's transaction); count events."""
    spec = definition.record_event
    if spec is None:
        return 0
    instance = await syncs.instance_by_key(
        conn, sub.workspace_id, sub.connection_id, spec.data_source_key
    )
    if instance is None or instance.status == "archived":
        log.info("record_event_skipped", reason="no data-source instance", key=spec.data_source_key)
        return 0
    try:
        rid = _id_of(expressions.search(spec.id_path, event, "recordEvent.idPath"))
        record = (
            expressions.search(spec.record_path, event, "recordEvent.recordPath")
            if spec.record_path
            else event
        )
    except expressions.ExpressionError as exc:
        log.info("record_event_skipped", reason=exc.message)
        return 0
    if rid is None:
        log.info("record_event_skipped", reason="no id", id_path=spec.id_path)
        return 0
    if spec.type == "deleted":
        outcome = await records.mark_deleted(conn, instance.workspace_id, instance.id, rid)
        if outcome == "already":
            return 0
        return await emit_records(conn, instance, sub.integration_key, [("deleted", rid, None)])
    source = await definitions.select_data_source(
        conn, instance.workspace_id, instance.data_source_key
    )
    when = updated_at(source.collection, record) if source and source.collection else None
    text = canonical_json(record)
    changes = await records.apply_records(
        conn,
        instance.workspace_id,
        instance.id,
        [IncomingRecord(rid, content_hash(text), text, when)],
        seen_pass=None,
    )
    return await emit_records(
        conn, instance, sub.integration_key, ((ch.kind, ch.record_id, ch.data) for ch in changes)
    )
