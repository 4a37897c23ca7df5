"""Turn events into deliveries: one per enabled endpoint whose patterns ask for the event."""

from __future__ import annotations

from typing import Any

from libs.common.contracts.base import Event, EventType
from libs.common.db import Conn
from services.notifications import catalog, delivery
from services.notifications.settings import NotificationsOptions
from services.notifications.store import endpoints

DURABLE = "notifications-events"
EVENTS: tuple[EventType[Any], ...] = catalog.CONSUMED


async def on_event(
    conn: Conn, kind: EventType[Any], event: Event, *, options: NotificationsOptions
) -> None:
    """Record a delivery (and its job) per matching endpoint, in the consumer's transaction.

    Runs once per event id (the consumer's dedupe); each delivery's id is derived from the
    event and the endpoint, so even a second run would record nothing twice. The body
    carries the event's fields (ids and facts, never a secret), not the event's envelope
    ids: ``data.eventId`` says which event it was.
    """
    event_type = catalog.public_type(kind)
    wanted = [
        e
        for e in await endpoints.enabled_endpoints(conn, event.workspace_id)
        if catalog.matches(e.events, event_type)
    ]
    if not wanted:
        return
    payload = delivery.body(
        event_type, event.occurred_at, event.model_dump(mode="json", by_alias=True)
    )
    for endpoint in wanted:
        await delivery.record_delivery(
            conn,
            event.workspace_id,
            endpoint.id,
            delivery=delivery.delivery_id(event.event_id, endpoint.id),
            event_id=event.event_id,
            event_type=event_type,
            payload=payload,
            options=options,
        )
