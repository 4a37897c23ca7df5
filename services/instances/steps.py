"""Run deployment steps: subscribe, unsubscribe, fetch a data source's schema and state.

:meth:`StepRunner.handle` is the handler of queue ``deployments`` (``libs/common/jobs.py``
runs it at least once per step; see ``lifecycle.py``). Every step is idempotent. Subscribing stores its intent (a ``subscribing`` row with the
inbound URL) before calling the app; a step that finds such a row left by a worker that
died asks the app for its subscriptions (the ``lookup`` request) and adopts the one with
our URL instead of creating a second. Without a lookup request, a crash in the middle of
the call can leave a duplicate at the app: define ``lookup`` for apps that allow it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

import asyncpg
import jmespath
import jmespath.exceptions
import structlog

from libs.common.contracts import instances as c
from libs.common.crypto import Keyring, associated_data
from libs.common.jobs import Job
from services.instances import action_instances, field_mapping_deploy
from services.instances.appclient import AppClient
from services.instances.lifecycle import ACTIVE, NO_LONGER_ACTIVE, StepFailure
from services.instances.store import connections, definitions, deployments, subscriptions
from services.instances.store.connections import KnownConnection
from services.instances.store.data_source_instances import (
    DataSourceInstanceWrite,
    upsert_data_source_instance,
)
from services.instances.store.definitions import AppEventTypeRecord, DataSourceRecord
from services.instances.store.deployments import StepRecord
from services.instances.store.subscriptions import SubscriptionRecord

log = structlog.get_logger(__name__)

TOKEN_PURPOSE = "webhook-token"
SECRET_PURPOSE = "webhook-secret"
_PLACEHOLDER = re.compile(r"\{(webhookUrl|connectionId|webhookSecret)\}")
JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object"})


def token_digest(token: str) -> bytes:
    """Return the stored form of an inbound URL token."""
    return hashlib.sha256(token.encode()).digest()


def search(expression: str, data: Any) -> Any:
    """Run a JMESPath expression; a broken one is a permanent failure naming it."""
    try:
        return jmespath.search(expression, data)
    except jmespath.exceptions.JMESPathError as exc:
        raise StepFailure(f"JMESPath {expression!r} failed: {exc}", transient=False) from exc


def fill(template: Any, values: dict[str, str]) -> Any:
    """Fill ``{webhookUrl}``-style placeholders in every string of a JSON template."""
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    return template


def fields_schema(items: Any) -> dict[str, Any]:
    """Turn ``[{name, type, label, required}]`` into a JSON Schema of the record."""
    if not isinstance(items, list):
        raise StepFailure("the fields request did not produce a list", transient=False)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for item in items:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        name = str(item["name"])
        prop: dict[str, Any] = {}
        kind = str(item.get("type") or "").lower()
        if kind in JSON_TYPES:
            prop["type"] = kind
        if item.get("label"):
            prop["title"] = str(item["label"])
        properties[name] = prop
        if item.get("required"):
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


class StepRunner:
    """Execute one step against the app, through the connections proxy."""

    def __init__(
        self, pool: asyncpg.Pool[asyncpg.Record], keyring: Keyring, app: AppClient, public_url: str
    ) -> None:
        self._pool = pool
        self._keyring = keyring
        self._app = app
        self._public_url = public_url.rstrip("/")

    def webhook_url(self, record: SubscriptionRecord) -> str:
        """Return a subscription's inbound URL."""
        aad = associated_data(record.workspace_id, record.id, TOKEN_PURPOSE)
        return f"{self._public_url}/webhooks/{self._keyring.decrypt(record.token_sealed, aad).decode()}"

    async def handle(self, job: Job) -> None:
        """Run the step a ``deployments`` job stands for (the job's id is the step's)."""
        step = None
        if job.workspace_id is not None:
            async with self._pool.acquire() as conn:
                step = await deployments.select_step(conn, job.workspace_id, job.id)
        if step is None:
            raise StepFailure("the step no longer exists", transient=False)
        await self.run(step)

    async def run(self, step: StepRecord) -> None:
        """Run ``step``; raise StepFailure when it did not succeed."""
        async with self._pool.acquire() as conn:
            deployment = await deployments.select_deployment(
                conn, step.workspace_id, step.deployment_id
            )
            if deployment is None or deployment.status not in ACTIVE:
                # Superseded (or cancelled) meanwhile: its steps never run again.
                raise StepFailure(NO_LONGER_ACTIVE, transient=False)
            known = await connections.select_known_connection(
                conn, step.workspace_id, deployment.connection_id
            )
        if known is None:
            raise StepFailure("the connection is unknown", transient=False)
        if step.kind == "subscribe":
            await self.subscribe(known, step.element_key)
        elif step.kind == "unsubscribe":
            await self.unsubscribe(known, step.element_key)
        elif step.kind == "data_source":
            await self.data_source(known, step.element_key)
        elif step.kind == "action":
            await action_instances.ensure(self._pool, known, step.element_key)
        elif step.kind == "field_mapping":
            await field_mapping_deploy.ensure(self._pool, known, step.element_key)
        else:
            await self._app.ensure_flows(known, archive=step.element_key == "archive")

    async def subscribe(self, known: KnownConnection, key: str) -> None:
        """Make sure the connection has one live subscription to the app-event type."""
        async with self._pool.acquire() as conn:
            definition = await definitions.select_app_event_type(conn, known.workspace_id, key)
            current = await subscriptions.live_subscription(conn, known.workspace_id, known.id, key)
        if definition is None:
            raise StepFailure(f"app-event type {key} no longer exists", transient=False)
        if current is not None and current.status == "active":
            if current.revision == definition.revision:
                return  # already in line: redeploying changes nothing at the app
            await self._remove(known, definition, current)  # the definition changed: subscribe anew
            current = None
        if current is None:
            current = await self._intend(known, definition)
        elif definition.lookup is not None and await self._adopt(
            known, definition.lookup, definition.revision, current
        ):
            return
        await self._subscribe_at_app(known, definition, current)

    async def _intend(
        self, known: KnownConnection, definition: AppEventTypeRecord
    ) -> SubscriptionRecord:
        """Store the subscription (and its inbound URL) before the app hears of it."""
        sub_id = uuid4()
        token = secrets.token_urlsafe(32)
        sealed = self._keyring.encrypt(
            token.encode(), associated_data(known.workspace_id, sub_id, TOKEN_PURPOSE)
        )
        secret_sealed = None
        signature = definition.signature
        if signature is not None and signature.secret == "subscription":
            secret_sealed = self._keyring.encrypt(
                secrets.token_urlsafe(32).encode(),
                associated_data(known.workspace_id, sub_id, SECRET_PURPOSE),
            )
        async with self._pool.acquire() as conn:
            return await subscriptions.insert_subscription(
                conn,
                sub_id,
                known,
                definition.key,
                token_hash=token_digest(token),
                token_sealed=sealed,
                secret_sealed=secret_sealed,
                revision=definition.revision,
            )

    async def _adopt(
        self,
        known: KnownConnection,
        lookup: c.LookupSpec,
        revision: int,
        record: SubscriptionRecord,
    ) -> bool:
        """Find a subscription an earlier attempt made (by our URL) and keep it; True if found."""
        answer = await self._app.call(known.workspace_id, known.id, "GET", lookup.path)
        items = search(lookup.items_path, answer.data) or []
        url = self.webhook_url(record)
        for item in items if isinstance(items, list) else []:
            if (
                isinstance(item, dict)
                and item.get(lookup.url_field) == url
                and item.get(lookup.id_field) is not None
            ):
                async with self._pool.acquire() as conn:
                    await subscriptions.set_subscription(
                        conn,
                        record,
                        "active",
                        external_id=str(item[lookup.id_field]),
                        revision=revision,
                    )
                log.info("subscription_adopted", subscription_id=str(record.id))
                return True
        return False

    async def _subscribe_at_app(
        self, known: KnownConnection, definition: AppEventTypeRecord, record: SubscriptionRecord
    ) -> None:
        spec = definition.subscribe
        values = {"webhookUrl": self.webhook_url(record), "connectionId": str(known.id)}
        if record.secret_sealed:
            aad = associated_data(record.workspace_id, record.id, SECRET_PURPOSE)
            values["webhookSecret"] = self._keyring.decrypt(record.secret_sealed, aad).decode()
        try:
            answer = await self._app.call(
                known.workspace_id,
                known.id,
                spec.method,
                fill(spec.path, values),
                fill(spec.body, values),
            )
            external = search(spec.id_path, answer.data)
            if external is None or isinstance(external, dict | list):
                raise StepFailure(
                    f"no subscription id at {spec.id_path!r} in the app's answer", transient=False
                )
        except StepFailure as exc:
            async with self._pool.acquire() as conn:
                await subscriptions.set_subscription(
                    conn, record, "subscribing" if exc.transient else "failed", error=exc.message
                )
            raise
        async with self._pool.acquire() as conn:
            await subscriptions.set_subscription(
                conn, record, "active", external_id=str(external), revision=definition.revision
            )

    async def unsubscribe(self, known: KnownConnection, key: str) -> None:
        """Remove the connection's subscription to ``key`` at the app (gone already is fine)."""
        async with self._pool.acquire() as conn:
            definition = await definitions.select_app_event_type(conn, known.workspace_id, key)
            current = await subscriptions.live_subscription(conn, known.workspace_id, known.id, key)
        if current is None:
            return
        await self._remove(known, definition, current)

    async def _remove(
        self,
        known: KnownConnection,
        definition: AppEventTypeRecord | None,
        record: SubscriptionRecord,
    ) -> None:
        spec = definition.unsubscribe if definition else None
        if spec is not None and record.external_id:
            path = spec.path.replace("{subscriptionId}", quote(record.external_id, safe=""))
            try:
                await self._app.call(
                    known.workspace_id,
                    known.id,
                    spec.method,
                    path,
                    ok_statuses=frozenset({404, 410}),
                )
            except StepFailure as exc:
                async with self._pool.acquire() as conn:
                    await subscriptions.set_subscription(
                        conn, record, record.status, error=exc.message
                    )
                raise
        async with self._pool.acquire() as conn:
            await subscriptions.set_subscription(conn, record, "unsubscribed")

    async def data_source(
        self, known: KnownConnection, key: str, instance_id: UUID | None = None
    ) -> None:
        """Fetch the connection's field schema and initial state for a data source."""
        async with self._pool.acquire() as conn:
            definition = await definitions.select_data_source(conn, known.workspace_id, key)
        if definition is None:
            raise StepFailure(f"data source {key} no longer exists", transient=False)
        try:
            schema, state = await self._fetch(known, definition)
        except StepFailure as exc:
            if not exc.transient:
                await self._save(known, definition, instance_id, "failed", None, None, exc.message)
            raise
        await self._save(known, definition, instance_id, "ready", schema, state, None)

    async def _fetch(
        self, known: KnownConnection, definition: DataSourceRecord
    ) -> tuple[dict[str, Any] | None, Any]:
        schema: dict[str, Any] | None = None
        state: Any = None
        if definition.fields is not None:
            fields = definition.fields
            answer = await self._app.call(known.workspace_id, known.id, "GET", fields.path)
            schema = fields_schema(search(fields.items_path, answer.data))
        if definition.initial_state is not None:
            initial = definition.initial_state
            answer = await self._app.call(known.workspace_id, known.id, "GET", initial.path)
            state = search(initial.state_path, answer.data)
        return schema, state

    async def _save(
        self,
        known: KnownConnection,
        definition: DataSourceRecord,
        instance_id: UUID | None,
        status: c.DataSourceInstanceStatus,
        schema: dict[str, Any] | None,
        state: Any,
        error: str | None,
    ) -> None:
        values = DataSourceInstanceWrite(
            id=instance_id or uuid4(),
            workspace_id=known.workspace_id,
            connection_id=known.id,
            customer_id=known.customer_id,
            data_source_key=definition.key,
            status=status,
            fields_schema=schema,
            state=state,
            last_error=error,
            revision=definition.revision,
        )
        async with self._pool.acquire() as conn, conn.transaction():
            saved = await upsert_data_source_instance(conn, values)
            await field_mapping_deploy.follow(conn, saved)  # the field mappings built on it
