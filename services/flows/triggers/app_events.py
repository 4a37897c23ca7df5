"""Start flow runs from app events: instances' ``app_event.received``, durably consumed.

Each event starts one run of every enabled, non-archived flow instance on the event's
connection whose trigger is ``app-event`` with the event's ``appEventTypeKey`` and whose
optional filter is truthy over the event's JSON (``{eventId, workspaceId, customerId,
connectionId, integrationKey, appEventTypeKey, subscriptionId, deliveryId, payload}``).
The run's input is the event's ``payload``; its trigger is ``{type: app-event, eventId}``.
Exactly once per event per instance, redeliveries included: see
:mod:`services.flows.triggers.matching`.
"""

from __future__ import annotations

from typing import Any

from libs.common.contracts import instances as ic
from libs.common.contracts.base import Event, EventType
from libs.common.db import Conn
from services.flows.settings import FlowsOptions
from services.flows.triggers.matching import start_triggered

DURABLE = "flows-app-events"
EVENTS: tuple[EventType[Any], ...] = (ic.APP_EVENT_RECEIVED,)


async def on_app_event(
    conn: Conn, kind: EventType[Any], event: Event, *, options: FlowsOptions
) -> None:
    """Start the runs one app event triggers, in the consumer's transaction."""
    if not isinstance(event, ic.AppEventReceived):  # EVENTS holds app events only
        raise TypeError(f"not an app event: {kind.subject}")
    await start_triggered(
        conn,
        event,
        connection_id=event.connection_id,
        trigger_type="app-event",
        key_field="appEventTypeKey",
        key=event.app_event_type_key,
        input=event.payload,
        options=options,
    )
