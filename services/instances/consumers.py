"""React to connection events: remember connections, deploy on connect, tear down on archive."""

from __future__ import annotations

from typing import Any

from libs.common.contracts import connections as cc
from libs.common.contracts.base import Event, EventType
from libs.common.db import Conn
from services.instances import lifecycle
from services.instances.settings import InstancesOptions
from services.instances.store import connections
from services.instances.store.connections import KnownConnection

DURABLE = "instances-connection-events"
EVENTS: tuple[EventType[Any], ...] = (
    cc.CONNECTION_CREATED,
    cc.CONNECTION_RECONNECTED,
    cc.CONNECTION_DISCONNECTED,
    cc.CONNECTION_ARCHIVED,
)
STATE_AFTER: dict[str, cc.ConnectionState] = {
    cc.CONNECTION_CREATED.subject: "connected",
    cc.CONNECTION_RECONNECTED.subject: "connected",
    cc.CONNECTION_DISCONNECTED.subject: "disconnected",
    cc.CONNECTION_ARCHIVED.subject: "archived",
}


async def on_connection_event(
    conn: Conn, kind: EventType[Any], event: Event, *, options: InstancesOptions
) -> None:
    """Handle one connection event in the consumer's transaction (once per event id).

    An event older than the state already known (redelivered late, or overtaken by a
    read) changes nothing; deployments follow the state known afterwards, so a stale
    ``created`` never deploys to a connection known to be archived.
    """
    if not isinstance(event, cc.ConnectionEvent):  # EVENTS are connection events only
        raise TypeError(f"not a connection event: {kind.subject}")
    known = await connections.upsert_connection(
        conn,
        KnownConnection(
            workspace_id=event.workspace_id,
            id=event.connection_id,
            customer_id=event.customer_id,
            integration_key=event.integration_key,
            state=STATE_AFTER[kind.subject],
            state_at=event.occurred_at,
        ),
    )
    verb = kind.subject.rsplit(".", 1)[1]
    if verb in ("created", "reconnected") and known.state == "connected":
        await lifecycle.start(conn, known, f"connection.{verb}", options=options)
    elif verb == "archived" and known.state == "archived":
        await lifecycle.start(conn, known, "connection.archived", options=options, teardown=True)
