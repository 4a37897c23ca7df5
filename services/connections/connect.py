"""The Connect UI: single-use sessions, the page (OAuth redirect or a form), the OAuth callback.

Every failure ends on a clear page and a clear result for the opener, and stores nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from uuid import uuid4

import structlog

from libs.common.contracts import connections as c
from libs.common.crypto import associated_data
from libs.common.db import Conn
from libs.common.errors import InvalidInput, NotFound, TetherError
from services.connections import oauth, pages
from services.connections.establish import Connector
from services.connections.outbound import Outbound
from services.connections.secrets import client_credentials
from services.connections.store import connections, integrations, sessions
from services.connections.store.integrations import IntegrationRecord
from services.connections.store.sessions import SessionRecord
from services.connections.vault import form_problems, oauth_values

log = structlog.get_logger(__name__)

PKCE_PURPOSE = "pkce-verifier"
EXPIRED = "This link has expired or was already used. Start connecting again from the app."


class Obtained(NamedTuple):
    """Credentials just obtained: their values, their lifetime if told, whether they renew."""

    values: dict[str, Any]
    expires_in: int | None
    renewable: bool


Obtain = Callable[[], Awaitable[Obtained]]
"""How a page gets its credentials: a code exchange, a client grant, or the form's values."""


def digest(token: str) -> bytes:
    """Return the stored form of a page token or OAuth state (never the value itself)."""
    return hashlib.sha256(token.encode()).digest()


async def _integration_of(conn: Conn, session: SessionRecord | None) -> IntegrationRecord | None:
    """Return the integration a session connects an account of (None without a session)."""
    if session is None:
        return None
    return await integrations.select_integration(
        conn, session.workspace_id, session.integration_key
    )


class Connect:
    """Connect UI handlers."""

    def __init__(self, out: Outbound, connector: Connector) -> None:
        self._pool, self._keyring, self._http, self._options = out
        self._connector = connector

    @property
    def callback_url(self) -> str:
        """Return the redirect URI registered at providers."""
        return self._options.public_url.rstrip("/") + "/oauth/callback"

    async def create_session(self, req: c.ConnectSessionCreateRequest) -> c.ConnectSession:
        """Start a session for a customer (their token, or an admin naming them)."""
        ctx = req.ctx
        workspace_id = ctx.workspace()
        customer_id, visible = ctx.customer_filter(req.customer_id)  # a customer: their own
        if not visible:
            raise NotFound("customer not found")
        if not customer_id:
            raise InvalidInput("admins name the customer", details=[{"field": "customerId"}])
        async with self._pool.acquire() as conn:
            if (
                await integrations.select_integration(conn, workspace_id, req.integration_key)
                is None
            ):
                raise NotFound(f"integration {req.integration_key} not found")
            if req.connection_id is not None:
                target = await connections.select_connection(conn, workspace_id, req.connection_id)
                if (
                    target is None
                    or target.customer_id != customer_id
                    or target.state == "archived"
                ):
                    raise NotFound("connection not found")
                if target.integration_key != req.integration_key:
                    raise InvalidInput(
                        "the connection belongs to another integration",
                        details=[{"field": "connectionId"}],
                    )
        # Before the customer is sent anywhere: a new one is listed at once, and an archived
        # one hears no now rather than after the provider's consent screen.
        await self._connector.ensure_customer(workspace_id, customer_id)
        async with self._pool.acquire() as conn:
            token = secrets.token_urlsafe(32)
            session = SessionRecord(
                id=uuid4(),
                workspace_id=workspace_id,
                customer_id=customer_id,
                integration_key=req.integration_key,
                connection_id=req.connection_id,
                redirect_uri=req.redirect_uri,
                opener_origin=req.opener_origin,
                allow_multiple=req.allow_multiple,
                expires_at=datetime.now(UTC) + timedelta(seconds=self._options.connect_session_ttl),
                finished_at=None,
                code_verifier_sealed=None,
            )
            await sessions.insert_session(conn, session, digest(token))
        url = f"{self._options.public_url.rstrip('/')}/connect/{token}"
        return c.ConnectSession(id=session.id, url=url, expires_at=session.expires_at)

    async def page(self, req: c.ConnectPageRequest) -> c.WebResponse:
        """Open the session's page: redirect to the provider, or show / take the form."""
        async with self._pool.acquire() as conn:
            session = await sessions.open_session(conn, digest(req.token))
            integration = await _integration_of(conn, session)
        if session is None or integration is None:
            return pages.page("Link expired", f"<h1>Link expired</h1><p>{EXPIRED}</p>", status=404)
        auth = integration.auth
        if isinstance(auth, c.OAuth2Auth):
            return await self._start_oauth(session, integration, auth)
        form = self._form_of(auth)
        if form is None:  # client credentials held by the integration: nothing to ask
            return await self._finish(
                session, integration, lambda: self._client_grant(integration, None)
            )
        if req.form is None:
            return pages.form_page(integration.name, form)
        problems = form_problems(form, req.form)
        if problems:
            return pages.form_page(
                integration.name, form, error="; ".join(p["message"] for p in problems)
            )
        values: dict[str, Any] = dict(req.form)
        if isinstance(auth, c.ClientCredentialsAuth):
            return await self._finish(
                session, integration, lambda: self._client_grant(integration, values), form=form
            )
        return await self._finish(session, integration, lambda: _static(values), form=form)

    async def oauth_callback(self, req: c.OAuthCallbackRequest) -> c.WebResponse:
        """Finish an OAuth round trip: check the state once, exchange the code, store."""
        if not req.state:
            return pages.result_page(
                ok=False, message="The provider sent no state.", error="missing_state"
            )
        async with self._pool.acquire() as conn:
            session = await sessions.claim_by_state(conn, digest(req.state))
            integration = await _integration_of(conn, session)
        if session is None or integration is None or not isinstance(integration.auth, c.OAuth2Auth):
            return pages.result_page(ok=False, message=EXPIRED, error="invalid_state")
        if req.error or not req.code:
            reason = req.error or "missing_code"
            log.info("oauth_denied", integration=integration.key, reason=reason)
            return pages.result_page(
                ok=False,
                message=f"The app did not grant access ({reason}).",
                error=reason,
                redirect_uri=session.redirect_uri,
                opener_origin=session.opener_origin,
            )
        verifier = None
        if session.code_verifier_sealed:
            aad = associated_data(session.workspace_id, session.id, PKCE_PURPOSE)
            verifier = self._keyring.decrypt(session.code_verifier_sealed, aad).decode()
        auth = integration.auth
        code = req.code

        async def exchange() -> Obtained:
            client_id, client_secret = client_credentials(self._keyring, integration)
            form = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.callback_url,
            }
            if verifier:
                form["code_verifier"] = verifier
            answer = await oauth.token_request(
                self._http, auth, client_id, client_secret, form, timeout=self._options.http_timeout
            )
            return Obtained(
                oauth_values(answer), answer.expires_in, renewable=answer.refresh_token is not None
            )

        return (await self._complete(session, integration, exchange))[0]

    async def _start_oauth(
        self, session: SessionRecord, integration: IntegrationRecord, auth: c.OAuth2Auth
    ) -> c.WebResponse:
        try:
            client_id, _ = client_credentials(self._keyring, integration)
        except InvalidInput as exc:
            return pages.result_page(
                ok=False,
                message=exc.message,
                error=exc.code,
                redirect_uri=session.redirect_uri,
                opener_origin=session.opener_origin,
            )
        state = secrets.token_urlsafe(32)
        verifier, challenge = oauth.pkce_pair() if auth.pkce else (None, None)
        sealed = (
            self._keyring.encrypt(
                verifier.encode(), associated_data(session.workspace_id, session.id, PKCE_PURPOSE)
            )
            if verifier
            else None
        )
        async with self._pool.acquire() as conn:
            await sessions.set_oauth_state(conn, session, digest(state), sealed)
        return pages.redirect(
            oauth.authorize_url(auth, client_id, self.callback_url, state, challenge)
        )

    @staticmethod
    def _form_of(auth: c.AuthSpec) -> dict[str, Any] | None:
        if isinstance(auth, c.ApiKeyAuth | c.BasicAuth):
            return auth.form
        if isinstance(auth, c.ClientCredentialsAuth) and auth.per_connection:
            return {
                "type": "object",
                "properties": {
                    "client_id": {"type": "string", "title": "Client ID", "minLength": 1},
                    "client_secret": {"type": "string", "title": "Client secret", "minLength": 1},
                },
                "required": ["client_id", "client_secret"],
            }
        return None

    async def _client_grant(
        self, integration: IntegrationRecord, values: dict[str, Any] | None
    ) -> Obtained:
        auth = integration.auth
        assert isinstance(auth, c.ClientCredentialsAuth)
        client_id, client_secret = client_credentials(self._keyring, integration, values)
        form = {"grant_type": "client_credentials"}
        if auth.scopes:
            form["scope"] = auth.scope_separator.join(auth.scopes)
        answer = await oauth.token_request(
            self._http, auth, client_id, client_secret, form, timeout=self._options.http_timeout
        )
        return Obtained(oauth_values(answer, values), answer.expires_in, renewable=True)

    async def _finish(
        self,
        session: SessionRecord,
        integration: IntegrationRecord,
        obtain: Obtain,
        form: dict[str, Any] | None = None,
    ) -> c.WebResponse:
        """Use a form session once; let the customer try again when the app says no."""
        async with self._pool.acquire() as conn:
            if not await sessions.finish_session(conn, session):
                return pages.result_page(ok=False, message=EXPIRED, error="invalid_session")
        response, failure = await self._complete(session, integration, obtain)
        if failure is not None and form is not None:
            async with self._pool.acquire() as conn:
                await sessions.unfinish_session(conn, session)
            return pages.form_page(integration.name, form, error=failure)
        return response

    async def _complete(
        self, session: SessionRecord, integration: IntegrationRecord, obtain: Obtain
    ) -> tuple[c.WebResponse, str | None]:
        """Obtain credentials, test and store them; return the page and any failure message."""
        try:
            values, expires_in, renewable = await obtain()
            record, _ = await self._connector.establish(
                workspace_id=session.workspace_id,
                customer_id=session.customer_id,
                integration=integration,
                values=values,
                expires_in=expires_in,
                renewable=renewable,
                connection_id=session.connection_id,
                allow_multiple=session.allow_multiple,
            )
        except oauth.ProviderError as exc:
            log.info("connect_failed", integration=integration.key, error=exc.message)
            message = f"The app refused the connection: {exc.message}"
            failed = pages.result_page(
                ok=False,
                message=message,
                error="token_exchange_failed",
                redirect_uri=session.redirect_uri,
                opener_origin=session.opener_origin,
                status=502,
            )
            return failed, message
        except TetherError as exc:
            log.info("connect_failed", integration=integration.key, error=exc.message)
            failed = pages.result_page(
                ok=False,
                message=exc.message,
                error=exc.code,
                redirect_uri=session.redirect_uri,
                opener_origin=session.opener_origin,
                status=400,
            )
            return failed, exc.message
        done = pages.result_page(
            ok=True,
            message=f"{record.name} is connected.",
            connection_id=str(record.id),
            redirect_uri=session.redirect_uri,
            opener_origin=session.opener_origin,
        )
        return done, None


async def _static(values: dict[str, Any]) -> Obtained:
    return Obtained(values, expires_in=None, renewable=False)
