"""A fake external app: an OAuth2 provider (code + PKCE, refresh, client credentials) and its API.

Tests start one per test (``async with FakeProvider(...) as provider:``), point the code
under test at ``provider.authorize_url`` / ``provider.token_url`` / ``provider.api_base``,
turn the knobs (failures, delays, revocation, expiry) and read the counters and records.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import html
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web
from yarl import URL

from tests.fakes.server import LocalServer

_ELSEWHERE = "http://example.invalid/elsewhere"


@dataclass(frozen=True)
class _Grant:
    """What an authorization code was issued for."""

    redirect_uri: str
    code_challenge: str | None
    scope: str


def _error(status: int, error: str, headers: dict[str, str] | None = None) -> web.Response:
    """Build a JSON error answer in the OAuth2 shape."""
    return web.json_response({"error": error}, status=status, headers=headers)


def _failure_name(status: int) -> str:
    """Name the OAuth2-style error a queued failure status answers with."""
    if status == 429:
        return "rate_limited"
    if status == 401:
        return "invalid_client"
    return "invalid_request" if status < 500 else "server_error"


def _html_error(message: str) -> web.Response:
    """Build the 400 HTML page a provider shows when it cannot redirect back."""
    body = f"<!doctype html><html><body><h1>Error</h1><p>{html.escape(message)}</p></body></html>"
    return web.Response(status=400, text=body, content_type="text/html")


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """Decode an HTTP Basic ``Authorization`` header into (user, password), or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _s256(verifier: str) -> str:
    """Compute the PKCE S256 challenge of a code verifier."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class FakeProvider(LocalServer):
    """Serve an OAuth2 provider and a small JSON API on 127.0.0.1 with a free port."""

    def __init__(
        self,
        *,
        client_id: str = "cid",
        client_secret: str = "csecret",  # noqa: S107 - a throw-away test secret
        access_token_ttl: int | None = 3600,
        rotate_refresh_tokens: bool = True,
        include_refresh_token_on_refresh: bool = True,
        refresh_token_reuse_interval: float = 0,
    ) -> None:
        """Configure the fake; nothing listens until :meth:`start`."""
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        # Knobs tests may change at any time.
        self.access_token_ttl = access_token_ttl
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.include_refresh_token_on_refresh = include_refresh_token_on_refresh
        # Seconds a rotated-out refresh token still works (Auth0's "reuse interval", Okta's
        # grace period); 0: revoked the moment it is used, the strictest provider.
        self.refresh_token_reuse_interval = refresh_token_reuse_interval
        self.token_failures: list[int] = []
        self.token_delay: float = 0
        self.answer_delay: float = 0  # after granting: the new tokens exist, the answer is late
        self.revoked = False
        self.api_failures: list[int] = []
        self.retry_after = "1"
        self.auth_error: str | None = None
        self.account: dict[str, Any] = {
            "id": "acct-1",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
        }
        self.api_keys: set[str] = set()
        self.basic_users: dict[str, str] = {}
        # Counters and records tests read.
        self.token_calls = 0
        self.refresh_calls = 0
        self.code_exchanges = 0
        self.last_client_auth: str | None = None
        self.issued_access_tokens: list[str] = []
        self.issued_refresh_tokens: list[str] = []
        self.authorize_requests: list[dict[str, str]] = []
        self.api_requests: list[dict[str, Any]] = []
        # Internal state.
        self._codes: dict[str, _Grant] = {}
        self._access_expiry: dict[str, float | None] = {}
        self._refresh_scopes: dict[str, str] = {}
        self._retired: dict[str, tuple[str, float]] = {}  # rotated out: scope, usable until

    # -- lifecycle ---------------------------------------------------------------------------

    def build(self) -> web.Application:
        """Return the fake app's routes (served by :class:`LocalServer`)."""
        app = web.Application()
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token_answered_late)
        app.router.add_route("*", "/api/{tail:.*}", self._api)
        return app

    # -- helpers for tests -------------------------------------------------------------------

    @property
    def authorize_url(self) -> str:
        """Return the authorization endpoint."""
        return f"{self.url}/authorize"

    @property
    def token_url(self) -> str:
        """Return the token endpoint."""
        return f"{self.url}/token"

    @property
    def api_base(self) -> str:
        """Return the API base URL (no trailing slash)."""
        return f"{self.url}/api"

    def grant_refresh_token(self, scope: str = "read") -> str:
        """Issue a live refresh token without a browser round trip (benchmarks seed thousands)."""
        return self._new_refresh_token(scope)

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expired now."""
        past = time.monotonic() - 1
        self._access_expiry = dict.fromkeys(self._access_expiry, past)

    # -- /authorize --------------------------------------------------------------------------

    async def _authorize(self, request: web.Request) -> web.Response:
        """Answer the consent step at once: redirect back with a code (or an error)."""
        query = dict(request.query)
        self.authorize_requests.append(query)
        if query.get("client_id") != self.client_id:
            return _html_error("Unknown client_id.")
        if query.get("response_type") != "code":
            return _html_error("Unsupported response_type; only 'code' is supported.")
        redirect_uri = query.get("redirect_uri")
        if not redirect_uri:
            return _html_error("Missing redirect_uri.")
        params = {"state": query["state"]} if "state" in query else {}
        if self.auth_error is not None:
            params = {"error": self.auth_error, **params}
        else:
            code = secrets.token_urlsafe(24)
            challenge = query.get("code_challenge")
            self._codes[code] = _Grant(redirect_uri, challenge, query.get("scope", ""))
            params = {"code": code, **params}
        location = str(URL(redirect_uri).update_query(params))
        return web.Response(status=302, headers={"Location": location})

    # -- /token ------------------------------------------------------------------------------

    async def _token_answered_late(self, request: web.Request) -> web.Response:
        """Grant at once (rotating what it rotates), then hold the answer for ``answer_delay``."""
        response = await self._token(request)
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        return response

    async def _token(self, request: web.Request) -> web.Response:
        """Handle every grant after applying the delay and queued failures."""
        self.token_calls += 1
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if self.token_failures:
            status = self.token_failures.pop(0)
            return _error(status, _failure_name(status), self._retry(status))
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not self._client_authenticated(request, fields):
            return _error(401, "invalid_client", {"WWW-Authenticate": 'Basic realm="fake"'})
        grant_type = fields.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(fields)
        if grant_type == "refresh_token":
            return self._refresh(fields)
        if grant_type == "client_credentials":
            return self._token_response(fields.get("scope", ""), refresh_token=None)
        return _error(400, "unsupported_grant_type")

    def _client_authenticated(self, request: web.Request, fields: dict[str, str]) -> bool:
        """Check client_secret_basic (form-url-encoded parts) or client_secret_post."""
        basic = _basic_credentials(request.headers.get("Authorization", ""))
        if basic is not None:
            self.last_client_auth = "basic"
            client_id, secret = unquote_plus(basic[0]), unquote_plus(basic[1])
            return client_id == self.client_id and secret == self.client_secret
        self.last_client_auth = "post"
        return (
            fields.get("client_id") == self.client_id
            and fields.get("client_secret") == self.client_secret
        )

    def _exchange_code(self, fields: dict[str, str]) -> web.Response:
        """Trade a one-time code (checked against redirect_uri and PKCE) for tokens."""
        self.code_exchanges += 1
        grant = self._codes.pop(fields.get("code", ""), None)
        if grant is None or fields.get("redirect_uri") != grant.redirect_uri:
            return _error(400, "invalid_grant")
        if grant.code_challenge is not None:
            verifier = fields.get("code_verifier", "")
            if not verifier or _s256(verifier) != grant.code_challenge:
                return _error(400, "invalid_grant")
        return self._token_response(grant.scope, refresh_token=self._new_refresh_token(grant.scope))

    def _refresh(self, fields: dict[str, str]) -> web.Response:
        """Trade a live refresh token for a new access token (and maybe a new refresh token)."""
        self.refresh_calls += 1
        old = fields.get("refresh_token", "")
        scope = self._refresh_scopes.get(old)
        retired = self._retired.get(old)
        if scope is None and retired is not None and time.monotonic() < retired[1]:
            scope = retired[0]  # within the reuse interval: answered as if still current
        if scope is None or self.revoked:
            return _error(400, "invalid_grant")
        if not self.include_refresh_token_on_refresh:
            # No refresh token in the answer: the old one stays the one to use.
            return self._token_response(scope, refresh_token=None)
        refresh_token = old
        if self.rotate_refresh_tokens:
            if (
                self._refresh_scopes.pop(old, None) is not None
                and self.refresh_token_reuse_interval
            ):
                self._retired[old] = (scope, time.monotonic() + self.refresh_token_reuse_interval)
            refresh_token = self._new_refresh_token(scope)
        return self._token_response(scope, refresh_token=refresh_token)

    def _new_refresh_token(self, scope: str) -> str:
        """Issue and remember a refresh token."""
        token = "rt_" + secrets.token_urlsafe(24)
        self._refresh_scopes[token] = scope
        self.issued_refresh_tokens.append(token)
        return token

    def _token_response(self, scope: str, *, refresh_token: str | None) -> web.Response:
        """Issue an access token and build the JSON token answer."""
        access_token = "at_" + secrets.token_urlsafe(24)
        ttl = self.access_token_ttl
        self._access_expiry[access_token] = None if ttl is None else time.monotonic() + ttl
        self.issued_access_tokens.append(access_token)
        body: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer"}
        if ttl is not None:
            body["expires_in"] = ttl
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        body["scope"] = scope
        return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # -- /api --------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        """Record the request, authenticate it, apply queued failures, then route it."""
        body = await request.read()
        self.api_requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body,
            }
        )
        if not self._api_authenticated(request):
            return _error(
                401, "invalid_token", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        if self.api_failures:
            status = self.api_failures.pop(0)
            return _error(status, _failure_name(status), self._retry(status))
        if request.method == "GET" and request.path == "/api/me":
            return web.json_response(self.account)
        if request.method == "GET" and request.path == "/api/redirect-out":
            return web.Response(status=302, headers={"Location": _ELSEWHERE})
        return self._echo(request, body)

    def _api_authenticated(self, request: web.Request) -> bool:
        """Accept a live bearer token, an API key (header or query) or a Basic user."""
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return self._access_token_valid(token.strip())
        basic = _basic_credentials(authorization)
        if basic is not None:
            user, password = basic
            return user in self.basic_users and self.basic_users[user] == password
        key = request.headers.get("X-Api-Key") or request.query.get("api_key")
        return key is not None and key in self.api_keys

    def _access_token_valid(self, token: str) -> bool:
        """Tell whether an access token was issued here and has not expired."""
        if token not in self._access_expiry:
            return False
        expiry = self._access_expiry[token]
        return expiry is None or time.monotonic() < expiry

    def _retry(self, status: int) -> dict[str, str] | None:
        """Return the Retry-After header for a 429, else nothing."""
        return {"Retry-After": self.retry_after} if status == 429 else None

    @staticmethod
    def _echo(request: web.Request, body: bytes) -> web.Response:
        """Answer with what was asked, so tests can see what the client sent."""
        echo = {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "body": body.decode("utf-8", errors="replace"),
            "headers": {k.lower(): v for k, v in request.headers.items()},
        }
        return web.json_response(echo, headers={"X-Fake": "yes"})
