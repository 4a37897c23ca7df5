"""Another customer's or workspace's connection is 404 on every route; nothing is stored in clear."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import Stack, WorkspaceFactory, bearer
from tests.connections.conftest import Fake

ROUTES = [
    ("GET", "/connections/{id}"),
    ("DELETE", "/connections/{id}"),
    ("POST", "/connections/{id}/refresh"),
    ("POST", "/connections/{id}/test"),
    ("GET", "/connections/{id}/credentials"),
    ("GET", "/connections/{id}/proxy/me"),
    ("POST", "/connections/{id}/proxy/things"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_connection_routes_hide_other_customers_and_workspaces(
    fake: Fake,
    make_workspace: WorkspaceFactory,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
) -> None:
    connection_id = await fake.connect("owner")
    url = path.format(id=connection_id)
    other_ws = await make_workspace()
    async with http.request(
        method, other_ws.url(url), headers=bearer(await other_ws.admin_token())
    ) as resp:
        assert resp.status == 404, await resp.text()
    expected = 403 if url.endswith("/credentials") else 404  # credentials are admin-only anyway
    async with http.request(
        method, fake.ws.url(url), headers=await fake.customer("intruder")
    ) as resp:
        assert resp.status == expected, await resp.text()
    async with http.request(method, fake.ws.url(url), headers=await fake.customer("owner")) as resp:
        assert resp.status == (403 if url.endswith("/credentials") else 200), await resp.text()


async def test_connection_list_is_scoped(
    fake: Fake, make_workspace: WorkspaceFactory, http: aiohttp.ClientSession
) -> None:
    await fake.connect("a")
    await fake.connect("b")
    async with http.get(fake.ws.url("/connections"), headers=await fake.customer("a")) as resp:
        assert [c["customerId"] for c in (await resp.json())["items"]] == ["a"]
    async with http.get(
        fake.ws.url("/connections?customerId=b"), headers=await fake.customer("a")
    ) as resp:
        assert (await resp.json())["items"] == []
    async with http.get(
        fake.ws.url("/connections?customerId=b&integrationKey=fake&state=connected"),
        headers=fake.admin,
    ) as resp:
        assert [c["customerId"] for c in (await resp.json())["items"]] == ["b"]
    other = await make_workspace()
    async with http.get(
        other.url("/connections"), headers=bearer(await other.admin_token())
    ) as resp:
        assert (await resp.json())["items"] == []
    for bad in ("state=gone", "limit=0", "cursor=!!"):
        async with http.get(fake.ws.url(f"/connections?{bad}"), headers=fake.admin) as resp:
            assert resp.status == 422, bad


async def test_archive_and_test_routes(fake: Fake, http: aiohttp.ClientSession) -> None:
    connection_id = await fake.connect("t")
    async with http.post(
        fake.ws.url(f"/connections/{connection_id}/test"), headers=fake.admin
    ) as resp:
        body = await resp.json()
    assert (body["ok"], body["status"]) == (True, 200)
    async with http.delete(
        fake.ws.url(f"/connections/{connection_id}"), headers=fake.admin
    ) as resp:
        assert (await resp.json())["state"] == "archived"
    async with http.get(
        fake.ws.url(f"/connections/{connection_id}/credentials"), headers=fake.admin
    ) as resp:
        assert resp.status == 404
    async with http.get(fake.ws.url("/connections"), headers=fake.admin) as resp:
        assert (await resp.json())["items"] == []


async def test_no_token_or_secret_in_clear_in_the_database(fake: Fake, stack: Stack) -> None:
    connection_id = await fake.connect("enc")
    async with fake.http.post(
        fake.ws.url(f"/connections/{connection_id}/refresh"), headers=fake.admin
    ) as resp:
        assert resp.status == 200
    pool = await stack.pool("connections")
    try:
        tables = [
            r["tablename"]
            for r in await pool.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'connections'"
            )
        ]
        rows = [
            dict(r)
            for table in tables
            for r in await pool.fetch(f"SELECT * FROM connections.{table}")
        ]
    finally:
        await pool.close()
    secrets = [
        fake.provider.client_secret,
        *fake.provider.issued_access_tokens,
        *fake.provider.issued_refresh_tokens,
    ]
    assert len(secrets) >= 5
    dump = str(rows)
    assert not [s for s in secrets if s in dump]
