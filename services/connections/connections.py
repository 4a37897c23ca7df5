"""Answer connection operations: list, read, create from credentials, archive, refresh, test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from libs.common.contracts import connections as c
from libs.common.contracts.base import Context
from libs.common.db import Conn
from libs.common.errors import InvalidInput, NotFound
from libs.common.paging import keyset_page, uuid_after
from services.connections.establish import Connector
from services.connections.outbound import Outbound
from services.connections.probe import TestOutcome, run_test
from services.connections.refresh import Refresher, emit_change
from services.connections.store import connections, integrations
from services.connections.store.connections import ConnectionRecord
from services.connections.store.integrations import IntegrationRecord
from services.connections.vault import form_problems, unseal


def connection_reply(record: ConnectionRecord) -> c.Connection:
    """Return the connection as the API shows it (its fields by name: never the credentials)."""
    return c.Connection.model_validate(record, from_attributes=True)


class Connections:
    """Connection handlers."""

    def __init__(self, out: Outbound, refresher: Refresher, connector: Connector) -> None:
        self._pool, self._keyring, self._http, self._options = out
        self._refresher = refresher
        self._connector = connector

    async def visible(self, ctx: Context, connection_id: UUID) -> ConnectionRecord:
        """Return a connection the caller may see: a customer only their own (else 404)."""
        workspace_id = ctx.workspace()
        async with self._pool.acquire() as conn:
            record = await connections.select_connection(conn, workspace_id, connection_id)
        if record is None or not ctx.sees(record.customer_id):
            raise NotFound("connection not found")
        return record

    async def list(self, req: c.ConnectionListRequest) -> c.ConnectionPage:
        """List connections: a customer's own, or the workspace's filtered."""
        workspace_id = req.ctx.workspace()
        customer_id, visible = req.ctx.customer_filter(req.customer_id)
        if not visible:
            return c.ConnectionPage(items=[], cursor=None)
        async with self._pool.acquire() as conn:
            rows = await connections.list_connections(
                conn,
                workspace_id,
                customer_id=customer_id,
                integration_key=req.integration_key,
                state=req.state,
                after=uuid_after(req.cursor),
                limit=req.limit + 1,
            )
        page, cursor = keyset_page(rows, req.limit, lambda r: (r.id,))
        return c.ConnectionPage(items=[connection_reply(r) for r in page], cursor=cursor)

    async def get(self, req: c.ConnectionGetRequest) -> c.Connection:
        """Read one connection."""
        return connection_reply(await self.visible(req.ctx, req.id))

    async def create(self, req: c.ConnectionCreateRequest) -> c.Connection:
        """Create a connection from credentials held elsewhere (migrations)."""
        workspace_id = req.ctx.admin_workspace()
        integration = await self._integration(workspace_id, req.integration_key)
        values, expires_in = _imported(integration, req.credentials)
        renewable = isinstance(integration.auth, c.ClientCredentialsAuth) or bool(
            values.get("refresh_token")
        )
        record, _ = await self._connector.establish(
            workspace_id=workspace_id,
            customer_id=req.customer_id,
            integration=integration,
            values=values,
            expires_in=expires_in,
            renewable=renewable,
            allow_multiple=req.allow_multiple,
            name=req.name,
        )
        return connection_reply(record)

    async def archive(self, req: c.ConnectionArchiveRequest) -> c.Connection:
        """Archive a connection (its instances are taken down by the instances service)."""
        record = await self.visible(req.ctx, req.id)
        async with self._pool.acquire() as conn, conn.transaction():
            changed = await connections.set_state(conn, record.workspace_id, record.id, "archived")
            if changed is not None:
                await emit_change(conn, c.CONNECTION_ARCHIVED, changed)
        return connection_reply(changed or record)

    async def refresh(self, req: c.ConnectionRefreshRequest) -> c.Connection:
        """Renew the token now (concurrent calls share one renewal)."""
        record = await self.visible(req.ctx, req.id)
        if record.state == "archived":
            raise NotFound("connection not found")
        renewed = await self._refresher.renew(record.workspace_id, record.id, record.version)
        return connection_reply(renewed)

    async def test(self, req: c.ConnectionTestRequest) -> c.ConnectionTestResult:
        """Run the test request; a 401 after a fresh renewal means the app disconnected us."""
        record = await self.visible(req.ctx, req.id)
        outcome = await self.check(record)
        async with self._pool.acquire() as conn:
            latest = await connections.select_connection(conn, record.workspace_id, record.id)
        assert latest is not None
        return c.ConnectionTestResult(
            ok=outcome.ok,
            status=outcome.status,
            error=outcome.error,
            connection=connection_reply(latest),
        )

    async def check(self, record: ConnectionRecord) -> TestOutcome:
        """Test a connection's credentials, renewing once on 401; disconnect when still refused."""
        integration = await self._integration(record.workspace_id, record.integration_key)
        record, values = await self._refresher.current(record.workspace_id, record.id)
        outcome = await run_test(self._http, integration.api, integration.test, values)
        if outcome.status == 401 and isinstance(
            integration.auth, c.OAuth2Auth | c.ClientCredentialsAuth
        ):
            renewed = await self._refresher.renew(record.workspace_id, record.id, record.version)
            if renewed.state == "connected":
                outcome = await run_test(
                    self._http, integration.api, integration.test, unseal(self._keyring, renewed)
                )
        if outcome.status == 401:
            await self.disconnect(record, "the app refused the credentials (401)")
        return outcome

    async def disconnect(self, record: ConnectionRecord, reason: str) -> None:
        """Mark a connection disconnected (once) and say so."""
        async with self._pool.acquire() as conn, conn.transaction():
            changed = await connections.set_state(
                conn, record.workspace_id, record.id, "disconnected", reason
            )
            if changed is not None:
                await emit_change(conn, c.CONNECTION_DISCONNECTED, changed, reason="unauthorized")

    async def _integration(self, workspace_id: UUID, key: str) -> IntegrationRecord:
        async with self._pool.acquire() as conn:
            return await integration_of(conn, workspace_id, key)


async def integration_of(conn: Conn, workspace_id: UUID, key: str) -> IntegrationRecord:
    """Return a workspace's integration, or 404 naming its key."""
    integration = await integrations.select_integration(conn, workspace_id, key)
    if integration is None:
        raise NotFound(f"integration {key} not found")
    return integration


def _imported(
    integration: IntegrationRecord, given: dict[str, Any]
) -> tuple[dict[str, Any], int | None]:
    """Check imported credentials against the integration's kind; return them and expires_in."""
    auth = integration.auth
    if isinstance(auth, c.OAuth2Auth | c.ClientCredentialsAuth):
        token = given.get("access_token") or given.get("accessToken")
        if not isinstance(token, str) or not token:
            raise InvalidInput(
                "credentials need access_token", details=[{"field": "credentials.access_token"}]
            )
        refresh = given.get("refresh_token") or given.get("refreshToken")
        expires_in = given.get("expires_in") or given.get("expiresIn")
        expires_at = given.get("expires_at") or given.get("expiresAt")
        if expires_in is None and expires_at is not None:
            try:
                moment = datetime.fromisoformat(str(expires_at))
            except ValueError as exc:
                raise InvalidInput(
                    "expires_at must be an ISO 8601 time",
                    details=[{"field": "credentials.expires_at"}],
                ) from exc
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            expires_in = max(0, int((moment - datetime.now(UTC)).total_seconds()))
        values = {
            "access_token": token,
            "refresh_token": refresh,
            "token_type": given.get("token_type", "Bearer"),
        }
        for keep in ("client_id", "client_secret"):
            if keep in given:
                values[keep] = given[keep]
        return values, int(expires_in) if expires_in is not None else None
    problems = form_problems(auth.form, given)
    if problems:
        raise InvalidInput(
            "credentials do not match the integration's form: "
            + ", ".join(p["message"] for p in problems),
            details=[{**p, "field": f"credentials.{p['field']}"} for p in problems],
        )
    return dict(given), None
