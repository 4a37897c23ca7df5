"""Handle accepted webhook deliveries: record them, emit their app events, apply record events.

:mod:`services.instances.webhooks` answers ``202`` once a delivery is on the
``TETHER_INBOUND`` work queue; this durable consumer (an
:class:`~libs.common.outbox.EventConsumer` on that stream) does the rest in one transaction
per delivery, acked only after it commits:

* remember the app's delivery id in ``webhook_deliveries``: a repeat that came after
  JetStream's duplicate window (so it was accepted again) changes nothing;
* emit one ``app_event.received`` per event through the outbox, with an id derived from
  the delivery's, so that downstream sees each app event once per delivery;
* apply ``recordEvent`` app-event types as record changes (:mod:`services.instances.sync_webhooks`),
  when the type had one at acceptance and still has (its current spec applies).

Each delivery is handled at least once (a killed replica's unacked delivery returns after
``inbound_ack_wait``) and never twice (the consumer's ``processed_events`` row, committed
with the writes); a delivery that keeps failing becomes a dead letter like any event.
It is handled whatever its subscription became since: it was accepted.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid5

import asyncpg
import structlog

from libs.common import retention
from libs.common.contracts import instances as c
from libs.common.contracts.base import Event, EventType
from libs.common.db import Conn
from libs.common.outbox import emit, emit_many
from services.instances.settings import InstancesOptions
from services.instances.store import definitions, subscriptions
from services.instances.sync_webhooks import record_change

log = structlog.get_logger(__name__)

INBOUND_DURABLE = "instances-inbound-webhooks"
INBOUND_EVENTS: tuple[EventType[Any], ...] = (c.INBOUND_WEBHOOK,)


def app_events(delivery: c.InboundWebhook) -> list[c.AppEventReceived]:
    """Return the ``app_event.received`` events of a delivery, their ids fixed by its id."""
    return [
        c.AppEventReceived(
            event_id=uuid5(delivery.event_id, str(n)),
            workspace_id=delivery.workspace_id,
            customer_id=delivery.customer_id,
            connection_id=delivery.connection_id,
            integration_key=delivery.integration_key,
            app_event_type_key=delivery.app_event_type_key,
            subscription_id=delivery.subscription_id,
            delivery_id=delivery.delivery_id,
            payload=payload,
        )
        for n, payload in enumerate(delivery.events)
    ]


async def on_inbound_webhook(conn: Conn, kind: EventType[Any], event: Event) -> None:
    """Handle one accepted delivery in the consumer's transaction (once per delivery)."""
    if not isinstance(event, c.InboundWebhook):  # INBOUND_EVENTS carry deliveries only
        raise TypeError(f"not an inbound webhook: {kind.subject}")
    if event.delivery_id and not await subscriptions.record_delivery(
        conn, event.subscription_id, event.delivery_id
    ):
        log.info("webhook_duplicate_dropped", subscription_id=str(event.subscription_id))
        return
    received = app_events(event)
    if len(received) == 1:
        await emit(conn, c.APP_EVENT_RECEIVED, received[0])  # one round trip with its NOTIFY
    else:
        await emit_many(conn, [(c.APP_EVENT_RECEIVED, e) for e in received])
    if not event.record_event or not event.events:
        return
    definition = await definitions.select_app_event_type(
        conn, event.workspace_id, event.app_event_type_key
    )
    if definition is None or definition.record_event is None:
        return
    sub = await subscriptions.select_subscription(conn, event.workspace_id, event.subscription_id)
    if sub is None:
        return
    for payload in event.events:
        await record_change(conn, sub, definition, payload)


DROP_OLD_DELIVERIES_SQL = """
DELETE FROM webhook_deliveries WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM webhook_deliveries
    WHERE received_at < now() - make_interval(secs => $1) LIMIT $2))
"""


def forgetting(older_than: float) -> retention.Batch:
    """Return the batch that forgets delivery ids received over ``older_than`` seconds ago.

    System work across workspaces (the table is keyed by subscription, whose ids are
    unguessable): only ids an app would no longer redeliver are dropped.
    """

    async def batch(conn: Conn, limit: int) -> int:
        status = await conn.execute(DROP_OLD_DELIVERIES_SQL, older_than, limit)
        return int(status.split()[-1])

    return batch


async def sweep_deliveries(pool: asyncpg.Pool[Any], options: InstancesOptions) -> None:
    """Forget handled delivery ids past ``webhook_dedupe_days``, every hour, until cancelled."""
    await retention.sweep_every(
        pool,
        forgetting(options.webhook_dedupe_days * 86400.0),
        limit=1000,
        interval=options.action_run_retention_interval,
        swept="webhook_delivery_ids_forgotten",
        failed="webhook_delivery_retention_failed",
    )
