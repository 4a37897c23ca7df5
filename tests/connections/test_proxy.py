"""The proxy: credentials injected, 401 renews once, 429 honoured, never leaves the app."""

from __future__ import annotations

from yarl import URL

from tests.conftest import Stack
from tests.connections.conftest import Fake


async def test_proxy_passes_request_and_answer_through(fake: Fake) -> None:
    connection_id = await fake.connect("p1")
    headers = {**fake.admin, "X-Custom": "yes", "Content-Type": "text/plain"}
    url = fake.ws.url(f"/connections/{connection_id}/proxy/things/42?limit=5&tag=a&tag=b")
    async with fake.http.post(url, data=b"hello", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        echo = await resp.json()
        assert resp.headers["X-Fake"] == "yes"
    assert echo["method"] == "POST"
    assert echo["path"] == "/api/things/42"
    assert echo["body"] == "hello"
    assert echo["headers"]["x-custom"] == "yes"
    sent = fake.provider.api_requests[-1]
    assert sent["query"]["limit"] == "5"
    # The app sees the connection's token, never the caller's Tether token.
    assert sent["headers"]["authorization"] == f"Bearer {fake.provider.issued_access_tokens[-1]}"
    assert fake.admin["Authorization"] not in str(sent["headers"])


async def test_proxy_401_renews_once_and_retries(fake: Fake) -> None:
    connection_id = await fake.connect("p2")
    fake.provider.expire_access_tokens()  # the app says 401 before Tether thinks it expired
    calls = fake.provider.token_calls
    async with fake.http.get(
        fake.ws.url(f"/connections/{connection_id}/proxy/me"), headers=fake.admin
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["id"] == "acct-1"
    assert fake.provider.token_calls - calls == 1


async def test_proxy_401_after_fresh_token_disconnects(fake: Fake, stack: Stack) -> None:
    connection_id = await fake.connect("p3")
    fake.provider.api_failures = [401, 401]
    async with fake.http.get(
        fake.ws.url(f"/connections/{connection_id}/proxy/me"), headers=fake.admin
    ) as resp:
        assert resp.status == 401
    async with fake.http.get(
        fake.ws.url(f"/connections/{connection_id}"), headers=fake.admin
    ) as resp:
        assert (await resp.json())["state"] == "disconnected"


async def test_proxy_honours_short_retry_after_only(fake: Fake) -> None:
    connection_id = await fake.connect("p4")
    fake.provider.api_failures = [429]
    fake.provider.retry_after = "1"
    async with fake.http.get(
        fake.ws.url(f"/connections/{connection_id}/proxy/me"), headers=fake.admin
    ) as resp:
        assert resp.status == 200
    fake.provider.api_failures = [429]
    fake.provider.retry_after = "120"  # longer than the bound: the caller gets the 429
    async with fake.http.get(
        fake.ws.url(f"/connections/{connection_id}/proxy/me"), headers=fake.admin
    ) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "120"


async def test_proxy_retry_after_429_uses_the_renewed_token(fake: Fake) -> None:
    """401 renews the token; the 429 that answers the retry is retried with the new token too."""
    connection_id = await fake.connect("p6")
    old = fake.provider.issued_access_tokens[-1]
    fake.provider.expire_access_tokens()  # 401: the app no longer takes the stored token
    fake.provider.api_failures = [429]  # then the renewed token's first call is rate limited
    fake.provider.retry_after = "0"
    before = len(fake.provider.api_requests)
    async with fake.http.get(
        fake.ws.url(f"/connections/{connection_id}/proxy/me"), headers=fake.admin
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["id"] == "acct-1"
    renewed = fake.provider.issued_access_tokens[-1]
    assert renewed != old
    sent = [r["headers"]["authorization"] for r in fake.provider.api_requests[before:]]
    assert sent == [f"Bearer {old}", f"Bearer {renewed}", f"Bearer {renewed}"]


async def test_proxy_refuses_targets_outside_the_api(fake: Fake) -> None:
    connection_id = await fake.connect("p5")
    before = len(fake.provider.api_requests)
    base = fake.ws.url(f"/connections/{connection_id}/proxy/")
    for path in (
        "%2e%2e/authorize",
        "a/%2e%2e/%2e%2e/token",
        "http://evil.example/x",
        "a%2f..%2f..%2ftoken",
    ):
        async with fake.http.get(URL(base + path, encoded=True), headers=fake.admin) as resp:
            assert resp.status == 422, path
            assert (await resp.json())["error"]["code"] == "proxy_path"
    async with fake.http.get(
        base + "redirect-out", headers=fake.admin, allow_redirects=False
    ) as resp:
        assert resp.status == 302  # passed back, never followed to the other host
    assert len(fake.provider.api_requests) == before + 1
