"""Hot reads the gateway answers from replies it keeps: ``GET /customers/me`` here (credentials
in tests/connections/test_credentials_cache.py), and :class:`KeptReplies` itself.

Identity's own request counts (``$SRV.STATS``) show which reads reached it; every change
of the customer must show in the very next read through the replica that made it, and in
other replicas once the change's event reaches them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import aiohttp
import pytest

from libs.common.contracts import identity
from libs.common.metrics import METRICS
from services.gateway.kept_replies import KeptReplies, connection_object, customer_object
from tests.conftest import (
    Stack,
    WorkspaceFactory,
    WorkspaceHandle,
    another_gateway,
    bearer,
    eventually,
    served,
)
from tests.gateway.test_local_verification import _get, _token

ME = identity.CUSTOMERS_ME


@pytest.fixture
async def other_gateway(stack: Stack) -> AsyncIterator[str]:
    """Another gateway replica on the session's NATS, with caches of its own."""
    async with another_gateway(stack.infra) as (_, url):
        yield url


async def test_kept_replies_customer_hot_reads_skip_identity(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    claims = {"id": "me-1", "name": "Mia", "fields": {"plan": "pro"}}
    token = _token(workspace, claims)
    before = await served(stack, ME)
    status, first = await _get(http, stack.gateway_url, token)
    assert status == 200, first
    assert (first["id"], first["name"], first["fields"]) == ("me-1", "Mia", {"plan": "pro"})
    assert await served(stack, ME) == before + 1
    registry = stack.runners[-1].app[METRICS].registry
    labels = {"route": "/customers/me", "result": "hit"}
    hits = registry.get_sample_value("tether_kept_replies_total", labels) or 0
    for fresh in (token, _token(workspace, claims), token):  # hot token, fresh same claims
        assert await _get(http, stack.gateway_url, fresh) == (200, first)
    assert await served(stack, ME) == before + 1  # not one call more
    assert registry.get_sample_value("tether_kept_replies_total", labels) == hits + 3


async def test_kept_replies_customer_a_change_shows_in_the_next_read(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    token = _token(workspace, {"id": "me-2", "name": "Before"})
    assert (await _get(http, stack.gateway_url, token))[1]["name"] == "Before"
    admin = bearer(await workspace.admin_token())
    async with http.patch(
        workspace.url("/customers/me-2"), json={"fields": {"seats": 3}}, headers=admin
    ) as resp:
        assert resp.status == 200, await resp.text()
    status, me = await _get(http, stack.gateway_url, token)  # same replica: at once
    assert (status, me["fields"]) == (200, {"seats": 3})
    renamed = _token(workspace, {"id": "me-2", "name": "After"})  # new claims: at once too
    status, me = await _get(http, stack.gateway_url, renamed)
    assert (status, me["name"], me["fields"]) == (200, "After", {"seats": 3})
    async with http.put(
        workspace.url("/users/me-2"), json={"name": "Put", "fields": {}}, headers=admin
    ) as resp:
        assert resp.status == 200, await resp.text()
    status, me = await _get(http, stack.gateway_url, token)
    assert (status, me["name"], me["fields"]) == (200, "Put", {})


async def test_kept_replies_customer_other_replicas_follow_the_event(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession, other_gateway: str
) -> None:
    token = _token(workspace, {"id": "me-3"})
    assert (await _get(http, stack.gateway_url, token))[0] == 200
    assert (await _get(http, other_gateway, token))[1]["name"] is None  # kept there now
    admin = bearer(await workspace.admin_token())
    async with http.patch(
        workspace.url("/customers/me-3"), json={"name": "Renamed"}, headers=admin
    ) as resp:
        assert resp.status == 200, await resp.text()

    async def followed() -> bool:
        _, me = await _get(http, other_gateway, token)
        return bool(me["name"] == "Renamed")

    await eventually(followed, timeout=10)
    async with http.delete(workspace.url("/customers/me-3"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()

    async def refused() -> bool:
        status, body = await _get(http, other_gateway, token)
        return (status, body.get("error", {}).get("code")) == (403, "customer_archived")

    await eventually(refused, timeout=10)


async def test_kept_replies_customer_bad_input_and_callers_who_must_not_see_it(
    stack: Stack,
    workspace: WorkspaceHandle,
    make_workspace: WorkspaceFactory,
    http: aiohttp.ClientSession,
) -> None:
    mine = _token(workspace, {"id": "me-4", "name": "Mine"})
    assert (await _get(http, stack.gateway_url, mine))[1]["name"] == "Mine"  # kept now
    neighbour = _token(workspace, {"id": "me-5", "name": "Neighbour"})
    assert (await _get(http, stack.gateway_url, neighbour))[1]["id"] == "me-5"
    other = await make_workspace()
    same_id = _token(other, {"id": "me-4", "name": "Elsewhere"})
    status, me = await _get(http, stack.gateway_url, same_id)
    assert (status, me["id"], me["name"]) == (200, "me-4", "Elsewhere")
    async with http.get(stack.gateway_url + "/customers/me?x=1", headers=bearer(mine)) as resp:
        assert resp.status == 422, await resp.text()  # asked of identity, which refuses it
    admin = bearer(await workspace.admin_token())
    async with http.get(stack.gateway_url + "/customers/me", headers=admin) as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (403, "customer_required")
    async with http.get(stack.gateway_url + "/customers/me") as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (401, "token_missing")


def test_kept_replies_sealed_per_caller_and_dropped() -> None:
    """What is kept is sealed, answered only to the caller who read it, and dropped whole."""
    kept = KeptReplies(size=10, ttl=60)
    ws, other_ws = uuid4(), uuid4()
    body = b'{"values":{"access_token":"tok-plain-123"}}'
    obj = connection_object(uuid4())
    kept.keep(ws, obj, ("admin", None), body, 30, since=kept.generation, secret=True)
    assert kept.get(ws, obj, ("admin", None)) == body
    assert b"tok-plain-123" not in repr(list(kept._entries._entries.values())).encode()  # sealed
    assert kept.get(ws, obj, ("customer", "c-1")) is None  # another caller asks the service
    assert kept.get(other_ws, obj, ("admin", None)) is None  # another workspace too
    since = kept.generation
    kept.drop(ws, obj)
    assert kept.get(ws, obj, ("admin", None)) is None
    kept.keep(ws, obj, ("admin", None), body, 30, since=since, secret=True)  # read before drop
    assert kept.get(ws, obj, ("admin", None)) is None
    kept.keep(ws, obj, ("admin", None), body, 0, since=kept.generation, secret=True)  # 0 s
    assert kept.get(ws, obj, ("admin", None)) is None
    me = customer_object("c-1")
    kept.keep(ws, me, ("customer", "c-1"), b"{}", 30, since=kept.generation, secret=False)
    kept.keep(other_ws, me, ("customer", "c-1"), b"{}", 30, since=kept.generation, secret=False)
    kept.drop_workspace(ws)
    assert kept.get(ws, me, ("customer", "c-1")) is None
    assert kept.get(other_ws, me, ("customer", "c-1")) == b"{}"


async def test_kept_replies_customer_archived_here_is_refused_at_once(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """The replica that archives a customer refuses its hot token before the event arrives."""
    token = _token(workspace, {"id": "me-6"})
    for _ in range(2):  # verified and kept
        assert (await _get(http, stack.gateway_url, token))[0] == 200
    admin = bearer(await workspace.admin_token())
    async with http.delete(workspace.url("/customers/me-6"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()
    status, body = await _get(http, stack.gateway_url, token)  # no waiting for the event
    assert (status, body["error"]["code"]) == (403, "customer_archived")
    async with http.post(workspace.url("/customers/me-6/restore"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()
    status, me = await _get(http, stack.gateway_url, token)
    assert (status, me["archived"]) == (200, False)
