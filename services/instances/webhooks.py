"""Accept inbound webhooks: verify, extract events, publish each once (via the outbox)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

import asyncpg
import jmespath
import jmespath.exceptions
import structlog

from libs.common.contracts import instances as c
from libs.common.crypto import Keyring, associated_data
from libs.common.errors import BadRequest, Gone, InvalidInput, NotFound, Unauthenticated
from libs.common.outbox import emit
from services.instances.elements import STATIC_SECRET_PURPOSE
from services.instances.steps import SECRET_PURPOSE, token_digest
from services.instances.store import definitions, subscriptions
from services.instances.store.definitions import AppEventTypeRecord
from services.instances.store.subscriptions import SubscriptionRecord
from services.instances.sync_webhooks import record_change

log = structlog.get_logger(__name__)


class Webhooks:
    """The inbound webhook handler."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], keyring: Keyring) -> None:
        self._pool = pool
        self._keyring = keyring

    async def receive(self, req: c.WebhookReceiveRequest) -> c.WebhookAccepted:
        """Publish the delivery's events as ``app_event.received``; a repeat publishes nothing."""
        async with self._pool.acquire() as conn:
            sub = await subscriptions.subscription_by_token(conn, token_digest(req.token))
            definition = (
                await definitions.select_app_event_type(
                    conn, sub.workspace_id, sub.app_event_type_key
                )
                if sub
                else None
            )
        if sub is None:
            raise NotFound("unknown webhook")
        if sub.status not in ("active", "subscribing") or definition is None:
            raise Gone("this webhook subscription is no longer active")
        try:
            raw = base64.b64decode(req.body, validate=True)
        except binascii.Error as exc:
            raise InvalidInput("body must be base64") from exc
        headers = {k.lower(): v for k, v in req.headers.items()}
        self._verify(sub, definition, raw, headers)
        try:
            payload = json.loads(raw) if raw else None
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise BadRequest("the webhook body is not JSON", code="malformed_json") from exc
        try:
            found = jmespath.search(definition.events_path, payload)
        except jmespath.exceptions.JMESPathError as exc:
            raise InvalidInput("the app-event type's eventsPath cannot read this body") from exc
        events = found if isinstance(found, list) else ([] if found is None else [found])
        header = definition.delivery_id_header
        delivery_id = headers.get(header.lower()) if header else None
        async with self._pool.acquire() as conn, conn.transaction():
            if delivery_id and not await subscriptions.record_delivery(
                conn, sub.id, delivery_id[:256]
            ):
                log.info("webhook_duplicate", subscription_id=str(sub.id))
                return c.WebhookAccepted(accepted=0, duplicate=True)
            for event in events:
                await emit(
                    conn,
                    c.APP_EVENT_RECEIVED,
                    c.AppEventReceived(
                        workspace_id=sub.workspace_id,
                        customer_id=sub.customer_id,
                        connection_id=sub.connection_id,
                        integration_key=sub.integration_key,
                        app_event_type_key=sub.app_event_type_key,
                        subscription_id=sub.id,
                        delivery_id=delivery_id,
                        payload=event,
                    ),
                )
                await record_change(conn, sub, definition, event)
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
