"""Accept inbound webhooks: verify, extract events, put the delivery on JetStream, answer.

What a ``202`` guarantees: **nothing accepted is lost.** The delivery is answered only after
JetStream stored it (its ``PubAck``) on the ``TETHER_INBOUND`` work queue (file storage);
the durable consumer in :mod:`services.instances.inbound_webhooks` then records it and
emits one ``app_event.received`` per event, in one transaction, acking only after that
commit. A process killed at any point before that commit leaves the message unacked, and
it is delivered again (to any replica) once its ack wait runs out.

Accepting reads nothing from PostgreSQL when the token's route is in memory
(:mod:`services.instances.webhook_routes`) and writes nothing: one JetStream publish.

Repeats, in two windows: the publish carries ``Nats-Msg-Id`` = the subscription id and
the app's delivery id (when the app-event type names a delivery-id header; else a fresh
uuid, and nothing is deduplicated). A repeat inside JetStream's duplicate window
(``inbound_duplicate_window``) is recognised at once and answered ``duplicate``; a later
one is accepted again and dropped by the consumer, which remembers every delivery id in
``webhook_deliveries`` (kept with no expiry today). Downstream, each app event is emitted
once per delivery id, with an id derived from it.

Each delivery's outcome (``accepted``, ``duplicate`` or ``rejected``) is reported to the
``observe`` callback given to :class:`Webhooks`, for metrics.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import jmespath
import jmespath.exceptions
import nats.errors
import structlog
from nats.js import JetStreamContext

from libs.common import tracing
from libs.common.contracts import instances as c
from libs.common.crypto import Keyring, associated_data
from libs.common.errors import (
    BadRequest,
    Gone,
    InvalidInput,
    NotFound,
    TetherError,
    Unauthenticated,
    Unavailable,
)
from libs.common.outbox import message_headers
from services.instances.elements import STATIC_SECRET_PURPOSE
from services.instances.steps import SECRET_PURPOSE, token_digest
from services.instances.store.definitions import AppEventTypeRecord
from services.instances.store.subscriptions import SubscriptionRecord
from services.instances.webhook_routes import WebhookRoutes

log = structlog.get_logger(__name__)

Outcome = Literal["accepted", "duplicate", "rejected"]

DELIVERY_ID_LIMIT = 256
"""Characters of an app's delivery id that are kept (and compared)."""


def inbound_id(subscription_id: UUID, delivery_id: str | None) -> tuple[str, UUID]:
    """Return a delivery's ``Nats-Msg-Id`` and its message's event id.

    With the app's delivery id both are fixed by it (namespaced by the subscription), so a
    retried delivery repeats them; without one, both are new.
    """
    if delivery_id is None:
        fresh = uuid4()
        return str(fresh), fresh
    msg_id = f"{subscription_id}:{delivery_id}"
    return msg_id, uuid5(NAMESPACE_URL, f"tether:webhook:{msg_id}")


class Webhooks:
    """The inbound webhook handler."""

    def __init__(
        self,
        routes: WebhookRoutes,
        keyring: Keyring,
        js: JetStreamContext,
        *,
        publish_timeout: float = 5.0,
        observe: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.routes = routes
        self._keyring = keyring
        self._js = js
        self._publish_timeout = publish_timeout
        self._observe = observe

    async def receive(self, req: c.WebhookReceiveRequest) -> c.WebhookAccepted:
        """Accept a delivery once JetStream holds it; a repeat it recognises adds nothing."""
        try:
            answer = await self._accept(req)
        except TetherError:
            self._report("rejected")
            raise
        self._report("duplicate" if answer.duplicate else "accepted")
        return answer

    def _report(self, outcome: Outcome) -> None:
        if self._observe is not None:
            self._observe(outcome)

    async def _accept(self, req: c.WebhookReceiveRequest) -> c.WebhookAccepted:
        route = await self.routes.find(token_digest(req.token))
        if route is None:
            raise NotFound("unknown webhook")
        sub, definition = route.subscription, route.definition
        if not route.live or definition is None:
            raise Gone("this webhook subscription is no longer active")
        try:
            raw = base64.b64decode(req.body, validate=True)
        except binascii.Error as exc:
            raise InvalidInput("body must be base64") from exc
        headers = {k.lower(): v for k, v in req.headers.items()}
        self._verify(sub, definition, raw, headers)
        events = _events(definition, raw)
        header = definition.delivery_id_header
        given = headers.get(header.lower()) if header else None
        delivery_id = given[:DELIVERY_ID_LIMIT] if given else None
        msg_id, event_id = inbound_id(sub.id, delivery_id)
        message = c.InboundWebhook(
            event_id=event_id,
            workspace_id=sub.workspace_id,
            customer_id=sub.customer_id,
            connection_id=sub.connection_id,
            integration_key=sub.integration_key,
            app_event_type_key=sub.app_event_type_key,
            subscription_id=sub.id,
            delivery_id=delivery_id,
            events=events,
            record_event=definition.record_event is not None,
        )
        try:
            ack = await self._js.publish(
                c.INBOUND_WEBHOOK.subject,
                message.model_dump_json().encode(),
                timeout=self._publish_timeout,
                headers=message_headers(msg_id, tracing.current_traceparent()),
            )
        except nats.errors.Error as exc:  # not stored: the app must deliver it again
            log.warning("webhook_not_stored", subscription_id=str(sub.id), error=type(exc).__name__)
            raise Unavailable("the webhook could not be stored; deliver it again") from exc
        if ack.duplicate:
            log.info("webhook_duplicate", subscription_id=str(sub.id))
            return c.WebhookAccepted(accepted=0, duplicate=True)
        return c.WebhookAccepted(accepted=len(events))

    def _verify(
        self,
        sub: SubscriptionRecord,
        definition: AppEventTypeRecord,
        raw: bytes,
        headers: dict[str, str],
    ) -> None:
        spec = definition.signature
        if spec is None:
            return
        if spec.secret == "static":
            sealed = definition.static_secret_sealed
            aad = associated_data(definition.workspace_id, definition.key, STATIC_SECRET_PURPOSE)
        else:
            sealed = sub.secret_sealed
            aad = associated_data(sub.workspace_id, sub.id, SECRET_PURPOSE)
        if sealed is None:
            raise Unauthenticated("no signing secret is configured", code="bad_signature")
        secret = self._keyring.decrypt(sealed, aad)
        expected = spec.prefix + hmac.new(secret, raw, hashlib.sha256).hexdigest()
        given = headers.get(spec.header.lower(), "")
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise Unauthenticated("the webhook signature does not verify", code="bad_signature")


def _events(definition: AppEventTypeRecord, raw: bytes) -> list[Any]:
    """Return the delivery's events: what ``eventsPath`` finds in the JSON body, as a list."""
    try:
        payload = json.loads(raw) if raw else None
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise BadRequest("the webhook body is not JSON", code="malformed_json") from exc
    try:
        found = jmespath.search(definition.events_path, payload)
    except jmespath.exceptions.JMESPathError as exc:
        raise InvalidInput("the app-event type's eventsPath cannot read this body") from exc
    return found if isinstance(found, list) else ([] if found is None else [found])
