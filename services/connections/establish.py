"""Store a new or renewed connection once its credentials proved themselves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from libs.common.bus import Bus
from libs.common.contracts import connections as c
from libs.common.errors import InvalidInput, NotFound
from services.connections.customers import ensure_customer
from services.connections.outbound import Outbound
from services.connections.probe import run_test
from services.connections.refresh import emit_change
from services.connections.store import connections
from services.connections.store.connections import ConnectionRecord, NewConnection
from services.connections.store.integrations import IntegrationRecord
from services.connections.vault import Schedule, schedule, seal


class CredentialsRefused(InvalidInput):
    """The app refused the credentials in the test request."""

    default_code = "credentials_refused"


class Connector:
    """Create connections (or reconnect existing ones, keeping their id)."""

    def __init__(self, out: Outbound, bus: Bus) -> None:
        self._pool, self._keyring, self._http, self._options = out
        self._bus = bus

    async def ensure_customer(self, workspace_id: UUID, customer_id: str) -> None:
        """Make sure the customer exists in identity (created on first sight; archived refused)."""
        await ensure_customer(self._bus, workspace_id, customer_id)

    def plan(
        self, integration: IntegrationRecord, expires_in: int | None, renewable: bool
    ) -> Schedule:
        """Schedule renewal for fresh credentials of ``integration``."""
        auth = integration.auth
        default = (
            auth.default_token_lifetime
            if isinstance(auth, c.OAuth2Auth | c.ClientCredentialsAuth)
            else None
        )
        return schedule(
            datetime.now(UTC),
            self._options,
            expires_in=expires_in,
            default_lifetime=default,
            renewable=renewable,
        )

    async def establish(
        self,
        *,
        workspace_id: UUID,
        customer_id: str,
        integration: IntegrationRecord,
        values: dict[str, Any],
        expires_in: int | None,
        renewable: bool,
        connection_id: UUID | None = None,
        allow_multiple: bool = False,
        name: str | None = None,
    ) -> tuple[ConnectionRecord, bool]:
        """Test the credentials, make sure the customer exists, store; return (connection, created).

        The customer is made sure of after the test, so refused credentials create nothing,
        and on every path, so a customer archived since the session began gets nothing new.
        Renewal is scheduled from when the credentials arrived (``expires_in`` counts from
        then), before the test request takes its time.
        """
        plan = self.plan(integration, expires_in, renewable)
        outcome = await run_test(
            self._http,
            integration.api,
            integration.test,
            values,
            timeout=self._options.http_timeout,
        )
        if not outcome.ok:
            raise CredentialsRefused(outcome.error or "the app refused the credentials")
        await self.ensure_customer(workspace_id, customer_id)
        account_name = (outcome.account or {}).get("name")
        display = name or (
            f"{integration.name} ({account_name})" if account_name else integration.name
        )
        async with self._pool.acquire() as conn, conn.transaction():
            await connections.lock_customer_integration(
                conn, workspace_id, customer_id, integration.key
            )
            target: ConnectionRecord | None = None
            if connection_id is not None:
                target = await connections.select_connection(
                    conn, workspace_id, connection_id, for_update=True
                )
                if (
                    target is None
                    or target.customer_id != customer_id
                    or target.integration_key != integration.key
                    or target.state == "archived"
                ):
                    raise NotFound("the connection to reconnect was not found")
            elif not allow_multiple:
                target = await connections.find_live_connection(
                    conn, workspace_id, customer_id, integration.key
                )
            new_id = target.id if target else uuid4()
            new = NewConnection(
                id=new_id,
                workspace_id=workspace_id,
                customer_id=customer_id,
                integration_key=integration.key,
                name=display,
                credentials_sealed=seal(self._keyring, workspace_id, new_id, values),
                account=outcome.account,
                expires_at=plan.expires_at,
                refresh_due_at=plan.refresh_due_at,
                check_due_at=plan.check_due_at,
            )
            if target is not None:
                record = await connections.replace_credentials(conn, new)
                await emit_change(conn, c.CONNECTION_RECONNECTED, record)
                return record, False
            record = await connections.insert_connection(conn, new)
            await emit_change(conn, c.CONNECTION_CREATED, record)
            return record, True
