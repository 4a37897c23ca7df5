"""Fixtures for the connections tests: a fake provider, integrations, connected accounts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.conftest import Stack, WorkspaceHandle, bearer
from tests.fakes.oauth_provider import FakeProvider

CONNECTION_ID = re.compile(r'"connectionId": "([0-9a-f-]{36})"')


@pytest.fixture
async def provider(capsys: pytest.CaptureFixture[str]) -> AsyncIterator[FakeProvider]:
    """A fake OAuth provider; afterwards, no token or client secret it issued was logged."""
    async with FakeProvider(
        client_id="fake-client", client_secret="fake-client-secret-123"
    ) as fake:
        yield fake
        logged = capsys.readouterr()
        leaked = [
            s
            for s in [fake.client_secret, *fake.issued_access_tokens, *fake.issued_refresh_tokens]
            if s in logged.err or s in logged.out
        ]
        assert not leaked, "a secret reached the logs"


@dataclass
class Fake:
    """A workspace with an OAuth integration pointing at the fake provider."""

    ws: WorkspaceHandle
    provider: FakeProvider
    http: aiohttp.ClientSession
    admin: dict[str, str]
    key: str = "fake"

    async def customer(self, customer_id: str) -> dict[str, str]:
        """Return Authorization headers for a customer."""
        return bearer(await self.ws.customer_token(customer_id))

    async def connect(self, customer_id: str, **session: Any) -> str:
        """Run the whole Connect UI OAuth round trip, following redirects; return the connection id."""
        page = await self.connect_page(customer_id, **session)
        match = CONNECTION_ID.search(page)
        assert match, page
        return match.group(1)

    async def connect_page(self, customer_id: str, **session: Any) -> str:
        """Run the round trip and return the final page's HTML."""
        url = await self.session_url(customer_id, **session)
        async with self.http.get(url) as resp:  # follows: Tether → provider → Tether callback
            return await resp.text()

    async def session_url(self, customer_id: str, **session: Any) -> str:
        """Start a connect session as the customer; return its page URL."""
        body = {"integrationKey": self.key, **session}
        async with self.http.post(
            self.ws.url("/connect-sessions"), json=body, headers=await self.customer(customer_id)
        ) as resp:
            assert resp.status == 201, await resp.text()
            return str((await resp.json())["url"])

    async def credentials(self, connection_id: str) -> dict[str, Any]:
        """Read a connection's credentials as the admin."""
        async with self.http.get(
            self.ws.url(f"/connections/{connection_id}/credentials"), headers=self.admin
        ) as resp:
            assert resp.status == 200, await resp.text()
            return dict(await resp.json())


def oauth_spec(provider: FakeProvider, **auth: Any) -> dict[str, Any]:
    """Return an integration body for the fake provider."""
    return {
        "name": "Fake App",
        "auth": {
            "type": "oauth2",
            "authorizeUrl": provider.authorize_url,
            "tokenUrl": provider.token_url,
            "scopes": ["read", "write"],
            "clientId": provider.client_id,
            **auth,
        },
        "clientSecret": provider.client_secret,
        "api": {"baseUrl": provider.api_base},
        "test": {"path": "/me", "accountIdField": "id", "accountNameField": "name"},
    }


@pytest.fixture
async def fake(
    stack: Stack, workspace: WorkspaceHandle, provider: FakeProvider, http: aiohttp.ClientSession
) -> Fake:
    """A workspace with the integration ``fake`` (OAuth2 + PKCE) at the fake provider."""
    admin = bearer(await workspace.admin_token())
    async with http.post(
        workspace.url("/integrations"), json={"key": "fake", **oauth_spec(provider)}, headers=admin
    ) as resp:
        assert resp.status == 201, await resp.text()
    return Fake(workspace, provider, http, admin)
