"""Renew OAuth tokens without races: one provider call per expiry, across every replica.

Two layers make a renewal single-flight:

* in a process, callers of one connection share one future;
* across processes, the renewal runs inside a transaction that holds the connection's row
  lock (``SELECT … FOR UPDATE``) and re-reads the row under it. A replica that waited for
  the lock finds the credentials already renewed and uses them. The write also checks the
  row's ``version``, so no update is lost and a stale refresh token is never sent.

Rotating refresh tokens: the new refresh token is committed in that same transaction,
before any caller sees the new access token. If the process dies after the provider
answered and before the commit, the new refresh token is lost and the old one is still
stored: providers that accept the previous refresh token for a while (many do) let the
next renewal succeed; strict providers answer ``invalid_grant`` and the connection goes
``disconnected`` (the customer reconnects, keeping the connection id). Nothing else can be
recovered: the provider is the only holder of the lost token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog

from libs.common.backoff import backoff_delay
from libs.common.contracts import connections as c
from libs.common.contracts.base import EventType
from libs.common.crypto import Keyring
from libs.common.db import Conn
from libs.common.errors import Conflict, NotFound, Unavailable
from libs.common.outbox import emit
from libs.common.singleflight import SingleFlight
from services.connections import oauth
from services.connections.metrics import ConnectionsMetrics
from services.connections.outbound import Outbound
from services.connections.secrets import client_credentials
from services.connections.store import connections, integrations
from services.connections.store.connections import ConnectionRecord
from services.connections.store.integrations import IntegrationRecord
from services.connections.vault import oauth_values, schedule, seal, unseal

log = structlog.get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def is_due(record: ConnectionRecord, now: datetime) -> bool:
    """Tell whether the credentials should be renewed now (and may be: not cooling down)."""
    if record.refresh_due_at is None or record.refresh_due_at > now:
        return False
    return record.cooldown_until is None or record.cooldown_until <= now


def may_be_kept(record: ConnectionRecord, now: datetime) -> bool:
    """Tell whether a cache may still hold this row's credentials at ``now``.

    Caches (connections' own, the gateway's kept replies) keep credentials only until
    their renewal is due or they expire, whichever is first: a renewal at or after that
    moment (every background renewal) has nobody to tell; an earlier one has.
    """
    moments = [m for m in (record.refresh_due_at, record.expires_at) if m is not None]
    return not moments or min(moments) > now


def is_expired(record: ConnectionRecord, now: datetime) -> bool:
    """Tell whether the stored access token is past its expiry."""
    return record.expires_at is not None and record.expires_at <= now


class Refresher:
    """Keep connections' credentials fresh, on demand and in the background."""

    def __init__(self, out: Outbound, metrics: ConnectionsMetrics | None = None) -> None:
        """Renew through ``out``; with ``metrics``, count each renewal's outcome."""
        self._pool, self._keyring, self._http, self._options = out
        self._renewing: SingleFlight[UUID, ConnectionRecord] = SingleFlight()
        self.metrics = metrics
        """Where renewals are counted (None: nowhere); an app may set it after building."""

    @property
    def keyring(self) -> Keyring:
        """Return the keyring credentials are sealed with."""
        return self._keyring

    async def current(
        self, workspace_id: UUID, connection_id: UUID, *, allow_archived: bool = False
    ) -> tuple[ConnectionRecord, dict[str, Any]]:
        """Return usable credentials, renewing them first when they are due.

        ``allow_archived`` lets system work (unsubscribing an archived connection's
        webhooks) use the last credentials it had.
        """
        async with self._pool.acquire() as conn:
            record = await connections.select_connection(conn, workspace_id, connection_id)
        if record is None:
            raise NotFound("connection not found")
        now = _now()
        if record.state == "connected" and is_due(record, now):
            record = await self._shared(
                record, lambda: self._renew(workspace_id, connection_id, None)
            )
        usable(record, _now(), allow_archived=allow_archived)
        return record, unseal(self._keyring, record)

    async def renew(
        self, workspace_id: UUID, connection_id: UUID, seen_version: int
    ) -> ConnectionRecord:
        """Renew now, unless someone renewed since ``seen_version`` (then use theirs)."""
        async with self._pool.acquire() as conn:
            record = await connections.select_connection(conn, workspace_id, connection_id)
        if record is None:
            raise NotFound("connection not found")
        if record.version != seen_version:
            return record
        return await self._shared(
            record, lambda: self._renew(workspace_id, connection_id, seen_version)
        )

    async def _shared(
        self, record: ConnectionRecord, work: Callable[[], Awaitable[ConnectionRecord]]
    ) -> ConnectionRecord:
        """Let concurrent callers in this process share one renewal of a connection."""
        return await self._renewing.run(record.id, work)

    async def _renew(
        self, workspace_id: UUID, connection_id: UUID, seen_version: int | None
    ) -> ConnectionRecord:
        async with self._pool.acquire() as conn, conn.transaction():
            record = await connections.select_connection(
                conn, workspace_id, connection_id, for_update=True
            )
            if record is None:
                raise NotFound("connection not found")
            # Background renewals are for connected rows only; an explicit renewal (a refresh
            # request, a 401 seen by the test request) also retries a connection in error.
            retry_error = record.state == "error" and seen_version is not None
            if record.state != "connected" and not retry_error:
                return record
            if seen_version is None and not is_due(record, _now()):
                return record  # another replica renewed while we waited for the lock
            if seen_version is not None and record.version != seen_version:
                return record
            return await self.renew_locked(conn, record)

    async def renew_locked(self, conn: Conn, record: ConnectionRecord) -> ConnectionRecord:
        """Renew a row this transaction has locked; record failures on it."""
        integration = await integrations.select_integration(
            conn, record.workspace_id, record.integration_key
        )
        if integration is None or not isinstance(
            integration.auth, c.OAuth2Auth | c.ClientCredentialsAuth
        ):
            return record
        values = unseal(self._keyring, record)
        try:
            answer = await self._ask_provider(integration, values)
        except oauth.ProviderError as exc:
            self._count("revoked" if exc.kind == "invalid_grant" else "failed")
            return await self._failed(conn, record, exc)
        if answer is None:
            return record
        now = _now()
        plan = schedule(
            now,
            self._options,
            expires_in=answer.expires_in,
            default_lifetime=integration.auth.default_token_lifetime,
            renewable=True,
        )
        new_values = oauth_values(answer, values)
        sealed = seal(self._keyring, record.workspace_id, record.id, new_values)
        updated = await connections.store_refresh(
            conn, record, sealed, plan.expires_at, plan.refresh_due_at, plan.check_due_at
        )
        if updated is None:  # cannot happen under the row lock; refuse to lose an update
            raise Conflict("the connection changed while it was being refreshed")
        if record.state == "error":  # it works again: say so to whoever heard it was in error
            await emit_change(conn, c.CONNECTION_RECONNECTED, updated, reason="refreshed")
        elif may_be_kept(record, now):  # renewed early (a 401, a refresh asked for): the
            # copies every replica and gateway may keep of the old credentials must go
            await emit_change(conn, c.CONNECTION_REFRESHED, updated)
        log.info("connection_refreshed", connection_id=str(record.id), version=updated.version)
        self._count("ok")
        return updated

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.refreshed(outcome)

    async def _ask_provider(
        self, integration: IntegrationRecord, values: dict[str, Any]
    ) -> oauth.TokenAnswer | None:
        auth = integration.auth
        assert isinstance(auth, c.OAuth2Auth | c.ClientCredentialsAuth)
        client_id, client_secret = client_credentials(self._keyring, integration, values)
        if isinstance(auth, c.ClientCredentialsAuth):
            form = {"grant_type": "client_credentials"}
            if auth.scopes:
                form["scope"] = auth.scope_separator.join(auth.scopes)
        else:
            refresh_token = values.get("refresh_token")
            if not refresh_token:
                return None  # nothing to renew with: the scheduled test request watches it
            form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await oauth.token_request(
            self._http, auth, client_id, client_secret, form, timeout=self._options.http_timeout
        )

    async def _failed(
        self, conn: Conn, record: ConnectionRecord, exc: oauth.ProviderError
    ) -> ConnectionRecord:
        """Record a failed renewal: invalid_grant disconnects; others back off, then 'error'."""
        if exc.kind == "invalid_grant":
            changed = await connections.set_state(
                conn, record.workspace_id, record.id, "disconnected", exc.message
            )
            if changed is not None:
                await emit_change(conn, c.CONNECTION_DISCONNECTED, changed, reason="invalid_grant")
                log.warning(
                    "connection_disconnected", connection_id=str(record.id), reason="invalid_grant"
                )
            return changed or record
        attempts = record.refresh_attempts + 1
        delay = backoff_delay(
            attempts,
            base=self._options.refresh_backoff_base,
            cap=self._options.refresh_backoff_cap,
        )
        cooldown = _now() + timedelta(seconds=delay)
        state: c.ConnectionState = (
            "error" if attempts >= self._options.refresh_max_failures else "connected"
        )
        updated = await connections.record_failure(
            conn,
            record,
            state=state,
            attempts=attempts,
            error=exc.message,
            cooldown_until=cooldown,
            refresh_due_at=cooldown,
        )
        if updated is not None and state == "error" and record.state != "error":
            await emit_change(conn, c.CONNECTION_ERROR, updated, reason="refresh_failed")
        log.warning(
            "connection_refresh_failed",
            connection_id=str(record.id),
            attempts=attempts,
            error=exc.message,
        )
        return updated or record


def usable(record: ConnectionRecord, now: datetime, *, allow_archived: bool = False) -> None:
    """Refuse credentials that cannot be used (disconnected, errored, expired and cooling)."""
    if record.state == "archived" and not allow_archived:
        raise NotFound("connection not found")
    if record.state == "disconnected":
        raise Conflict(
            "the provider refused this connection's credentials; reconnect it",
            code="connection_disconnected",
        )
    if is_expired(record, now):
        detail = (
            f" (next attempt after {record.cooldown_until.isoformat()})"
            if record.cooldown_until
            else ""
        )
        raise Unavailable(
            f"the access token expired and could not be renewed{detail}", code="refresh_failed"
        )


async def emit_change(
    conn: Conn,
    kind: EventType[c.ConnectionEvent],
    record: ConnectionRecord,
    reason: str | None = None,
) -> None:
    """Queue a connection event (ids only)."""
    await emit(
        conn,
        kind,
        c.ConnectionEvent(
            workspace_id=record.workspace_id,
            connection_id=record.id,
            customer_id=record.customer_id,
            integration_key=record.integration_key,
            reason=reason,
        ),
    )
