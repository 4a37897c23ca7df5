"""Self-test of the fake OAuth2 provider: it must behave like the real thing it stands in for."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.fakes.oauth_provider import FakeProvider

REDIRECT_URI = "http://127.0.0.1:1/callback?keep=1"


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    """Run a fake provider for one test."""
    async with FakeProvider(client_id="cid", client_secret="c s+cret") as fake:
        yield fake


async def _authorize(http: aiohttp.ClientSession, provider: FakeProvider, challenge: str) -> URL:
    """Walk the consent step and return where the provider redirected back to."""
    params = {
        "response_type": "code",
        "client_id": "cid",
        "redirect_uri": REDIRECT_URI,
        "state": "st-1",
        "scope": "read write",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    async with http.get(provider.authorize_url, params=params, allow_redirects=False) as resp:
        assert resp.status == 302
        return URL(resp.headers["Location"])


async def _tokens(http: aiohttp.ClientSession, provider: FakeProvider) -> dict[str, Any]:
    """Run the code + PKCE flow with client_secret_basic and return the token answer."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    back = await _authorize(http, provider, challenge)
    form = {
        "grant_type": "authorization_code",
        "code": back.query["code"],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    # RFC 6749 2.3.1: client_secret_basic sends form-url-encoded id and secret.
    auth = {"Authorization": aiohttp.encode_basic_auth("cid", "c+s%2Bcret")}
    async with http.post(provider.token_url, data=form, headers=auth) as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
    async with http.post(provider.token_url, data=form, headers=auth) as resp:
        assert resp.status == 400  # codes are single use
        assert await resp.json() == {"error": "invalid_grant"}
    return body


async def test_code_pkce_exchange_and_api(
    http: aiohttp.ClientSession, provider: FakeProvider
) -> None:
    """Exchange a code with PKCE and call the API with the access token."""
    tokens = await _tokens(http, provider)
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "read write"
    assert tokens["access_token"] in provider.issued_access_tokens
    assert tokens["refresh_token"] in provider.issued_refresh_tokens
    assert provider.last_client_auth == "basic"
    assert provider.code_exchanges == 2
    assert provider.authorize_requests[0]["state"] == "st-1"
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with http.get(f"{provider.api_base}/me", headers=headers) as resp:
        assert resp.status == 200
        assert await resp.json() == provider.account
    assert provider.api_requests[-1]["path"] == "/api/me"


async def test_redirect_keeps_query_and_reports_errors(
    http: aiohttp.ClientSession, provider: FakeProvider
) -> None:
    """Keep redirect_uri's own query and send auth errors back with the state."""
    back = await _authorize(http, provider, "x" * 43)
    assert back.query["keep"] == "1"
    assert back.query["state"] == "st-1"
    provider.auth_error = "access_denied"
    back = await _authorize(http, provider, "x" * 43)
    assert back.query["error"] == "access_denied"
    assert "code" not in back.query


async def test_refresh_rotation_invalidates_old_token(
    http: aiohttp.ClientSession, provider: FakeProvider
) -> None:
    """Rotate refresh tokens: the old one answers invalid_grant afterwards."""
    old = (await _tokens(http, provider))["refresh_token"]
    form = {
        "grant_type": "refresh_token",
        "refresh_token": old,
        "client_id": "cid",
        "client_secret": "c s+cret",
    }
    async with http.post(provider.token_url, data=form) as resp:
        assert resp.status == 200
        new = (await resp.json())["refresh_token"]
    assert new != old
    assert provider.last_client_auth == "post"
    async with http.post(provider.token_url, data=form) as resp:
        assert resp.status == 400
        assert await resp.json() == {"error": "invalid_grant"}
    assert provider.refresh_calls == 2


async def test_refresh_reuse_interval_keeps_a_rotated_token_working_for_a_while(
    http: aiohttp.ClientSession, provider: FakeProvider
) -> None:
    """With a reuse interval, a rotated-out token still works until the interval ends."""
    provider.refresh_token_reuse_interval = 60
    old = (await _tokens(http, provider))["refresh_token"]
    form = {
        "grant_type": "refresh_token",
        "refresh_token": old,
        "client_id": "cid",
        "client_secret": "c s+cret",
    }
    answers = []
    for _ in range(2):  # the second use is a client that lost the first answer
        async with http.post(provider.token_url, data=form) as resp:
            assert resp.status == 200
            answers.append((await resp.json())["refresh_token"])
    assert len({old, *answers}) == 3  # each use is answered with a new token
    provider.refresh_token_reuse_interval = 0
    provider._retired = {k: (s, 0.0) for k, (s, _) in provider._retired.items()}  # interval over
    async with http.post(provider.token_url, data=form) as resp:
        assert resp.status == 400


async def test_expired_token_and_rate_limit(
    http: aiohttp.ClientSession, provider: FakeProvider
) -> None:
    """Answer 429 with Retry-After from the queue, then echo, then 401 once expired."""
    headers = {"Authorization": f"Bearer {(await _tokens(http, provider))['access_token']}"}
    url = f"{provider.api_base}/things?x=1"
    provider.api_failures = [429]
    async with http.post(url, headers=headers, data=b"hi") as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1"
        assert await resp.json() == {"error": "rate_limited"}
    async with http.post(url, headers=headers, data=b"hi") as resp:
        assert resp.status == 200
        assert resp.headers["X-Fake"] == "yes"
        echo = await resp.json()
    assert (echo["method"], echo["path"], echo["query"], echo["body"]) == (
        "POST",
        "/api/things",
        {"x": "1"},
        "hi",
    )
    provider.expire_access_tokens()
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 401
        assert await resp.json() == {"error": "invalid_token"}
    assert len(provider.api_requests) == 3
