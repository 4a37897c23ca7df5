"""The gateway verifies tokens itself: identity hears only of new customers and new claims.

Identity's own request counts (``$SRV.STATS`` of its running replica) show which tokens
reached it; the rules and refusals are the ones tests/identity/test_tokens.py holds.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from structlog.testing import capture_logs

from libs.common.contracts import identity
from services.gateway.auth import Authenticator
from services.gateway.keys import AUTHENTICATOR
from tests.conftest import (
    Stack,
    WorkspaceFactory,
    WorkspaceHandle,
    another_gateway,
    bearer,
    eventually,
    served,
)

VERIFY = identity.TOKEN_VERIFY
KEYS = identity.TOKEN_VERIFICATION_KEYS


def _token(
    ws: WorkspaceHandle,
    claims: dict[str, Any],
    *,
    key: Any = None,
    alg: str = "HS256",
    headers: dict[str, Any] | None = None,
) -> str:
    """Sign a token never seen before (its own ``jti``) for ten minutes."""
    now = int(time.time())
    body = {"iss": ws.key, "iat": now, "exp": now + 600, "jti": secrets.token_hex(8), **claims}
    return jwt.encode(body, key or ws.secret, algorithm=alg, headers=headers)


async def _get(
    http: aiohttp.ClientSession, base: str, token: str, path: str = "/customers/me"
) -> tuple[int, dict[str, Any]]:
    async with http.get(base + path, headers=bearer(token)) as resp:
        return resp.status, await resp.json()


async def _code(http: aiohttp.ClientSession, base: str, token: str) -> tuple[int, str]:
    status, body = await _get(http, base, token)
    return status, body.get("error", {}).get("code", "")


def authenticator(runner: web.AppRunner) -> Authenticator:
    """Return a running gateway's authenticator."""
    return runner.app[AUTHENTICATOR]


@pytest.fixture
async def second_gateway(stack: Stack) -> AsyncIterator[tuple[web.AppRunner, str]]:
    """Another gateway replica on the session's NATS, with caches of its own."""
    async with another_gateway(stack.infra) as running:
        yield running


async def test_local_verification_fresh_tokens_of_a_known_customer_skip_identity(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    gateway = stack.runners[-1]
    before = await served(stack, VERIFY)
    status, me = await _get(http, stack.gateway_url, _token(workspace, {"id": "k-1", "name": "Ka"}))
    assert status == 200, me
    assert (me["id"], me["name"]) == ("k-1", "Ka")  # identity created the customer
    assert await served(stack, VERIFY) == before + 1
    verified = authenticator(gateway).results["verified"]
    for _ in range(20):
        token = _token(workspace, {"id": "k-1", "name": "Ka"})
        status, me = await _get(http, stack.gateway_url, token)
        assert (status, me["id"]) == (200, "k-1")
    assert await served(stack, VERIFY) == before + 1  # not one call more
    assert authenticator(gateway).results["verified"] == verified + 20


async def test_local_verification_changed_claims_go_to_identity(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    claims: dict[str, Any] = {"id": "c-1", "name": "Old", "fields": {"plan": "free"}}
    assert (await _get(http, stack.gateway_url, _token(workspace, claims)))[0] == 200
    before = await served(stack, VERIFY)
    changed = {**claims, "fields": {"plan": "pro"}}
    status, me = await _get(http, stack.gateway_url, _token(workspace, changed))
    assert (status, me["fields"]) == (200, {"plan": "pro"})
    assert await served(stack, VERIFY) == before + 1
    renamed = {**changed, "name": "New"}
    status, me = await _get(http, stack.gateway_url, _token(workspace, renamed))
    assert (status, me["name"]) == (200, "New")
    assert await served(stack, VERIFY) == before + 2

    async def settled() -> bool:
        """The change's own ``customer.updated`` may make the gateway ask once more."""
        asked = await served(stack, VERIFY)
        assert (await _get(http, stack.gateway_url, _token(workspace, renamed)))[0] == 200
        return await served(stack, VERIFY) == asked

    await eventually(settled, timeout=10)
    asked = await served(stack, VERIFY)
    for _ in range(5):  # the newest claims are known now
        assert (await _get(http, stack.gateway_url, _token(workspace, renamed)))[0] == 200
    assert await served(stack, VERIFY) == asked


async def test_local_verification_an_admin_change_makes_the_next_token_apply_its_claims(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, stack: Stack
) -> None:
    """After ``customer.updated`` the gateway asks identity again, which re-applies the token's."""
    claims = {"id": "a-1", "name": "From token"}
    assert (await _get(http, stack.gateway_url, _token(workspace, claims)))[0] == 200
    admin = bearer(await workspace.admin_token())
    async with http.patch(
        workspace.url("/customers/a-1"), json={"name": "From admin"}, headers=admin
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["name"] == "From admin"

    async def reapplied() -> bool:
        status, me = await _get(http, stack.gateway_url, _token(workspace, claims))
        return status == 200 and me["name"] == "From token"

    await eventually(reapplied, timeout=10)


async def test_local_verification_archived_customer_fresh_tokens_are_refused(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, stack: Stack
) -> None:
    claims = {"id": "gone-1"}
    assert (await _get(http, stack.gateway_url, _token(workspace, claims)))[0] == 200
    assert (await _get(http, stack.gateway_url, _token(workspace, claims)))[0] == 200  # known
    admin = bearer(await workspace.admin_token())
    async with http.delete(workspace.url("/customers/gone-1"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()

    async def refused() -> bool:
        fresh = _token(workspace, claims)
        return await _code(http, stack.gateway_url, fresh) == (403, "customer_archived")

    await eventually(refused, timeout=10)
    async with http.post(workspace.url("/customers/gone-1/restore"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()
    status, _ = await _get(http, stack.gateway_url, _token(workspace, claims))
    assert status == 200  # identity was asked again, and says yes


async def test_local_verification_rotation_drops_keys_in_every_replica(
    stack: Stack,
    workspace: WorkspaceHandle,
    http: aiohttp.ClientSession,
    second_gateway: tuple[web.AppRunner, str],
) -> None:
    """With no grace, a secret rotated away is refused by both replicas once they hear of it."""
    other, other_url = second_gateway
    replicas = [(stack.runners[-1], stack.gateway_url), (other, other_url)]
    admin = bearer(await workspace.admin_token())
    async with http.patch(
        workspace.url("/workspace"), json={"settings": {"secretGrace": 0}}, headers=admin
    ) as resp:
        assert resp.status == 200, await resp.text()

    async def both_keep_the_new_settings() -> bool:
        for runner, url in replicas:
            assert (await _get(http, url, _token(workspace, {"id": "r-1"})))[0] == 200
            kept = authenticator(runner).keys.cached(workspace.key)
            if kept is None or kept.settings.secret_grace != 0:
                return False
        return True

    await eventually(both_keep_the_new_settings, timeout=10)
    async with http.post(workspace.url("/workspace/secret/rotate"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()
        new_secret = (await resp.json())["secret"]
    for _, url in replicas:

        async def old_secret_refused(url: str = url) -> bool:
            fresh = _token(workspace, {"id": "r-1"})  # a known customer, the removed secret
            return await _code(http, url, fresh) == (401, "token_signature")

        await eventually(old_secret_refused, timeout=10)
        fresh = _token(workspace, {"id": "r-1"}, key=new_secret)
        assert (await _get(http, url, fresh))[0] == 200


async def test_local_verification_new_secret_verifies_before_the_event_arrives(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, stack: Stack
) -> None:
    """Keys that refuse a token are fetched again first: a rotation is never a 401 window."""
    assert (await _get(http, stack.gateway_url, _token(workspace, {"id": "n-1"})))[0] == 200
    admin = bearer(await workspace.admin_token())
    async with http.post(workspace.url("/workspace/secret/rotate"), headers=admin) as resp:
        new_secret = (await resp.json())["secret"]
    fresh = _token(workspace, {"id": "n-1"}, key=new_secret)
    assert (await _get(http, stack.gateway_url, fresh))[0] == 200
    old = _token(workspace, {"id": "n-1"})  # inside the default grace: still good
    assert (await _get(http, stack.gateway_url, old))[0] == 200


def _keypairs() -> list[tuple[str, Any]]:
    return [
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate()),
    ]


def _pem(private: Any) -> str:
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return str(public.decode())


async def test_local_verification_public_key_algorithms_are_verified_in_the_gateway(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    pairs = _keypairs()
    keys = [{"kid": alg.lower(), "alg": alg, "pem": _pem(priv)} for alg, priv in pairs]
    admin = bearer(await workspace.admin_token())
    kept = authenticator(stack.runners[-1]).keys
    drops = kept.generation
    async with http.patch(
        workspace.url("/workspace"), json={"publicKeys": keys}, headers=admin
    ) as resp:
        assert resp.status == 200, await resp.text()

    async def heard() -> bool:  # workspace.updated: what the gateway kept is dropped
        return kept.generation > drops

    await eventually(heard, timeout=10)
    for alg, priv in pairs:
        kid = {"kid": alg.lower()}
        first = _token(workspace, {"id": f"pk-{alg}"}, key=priv, alg=alg, headers=kid)
        assert (await _get(http, stack.gateway_url, first))[0] == 200  # a new customer
        before = await served(stack, VERIFY)
        for claims in ({"id": f"pk-{alg}"}, {"isAdmin": True}):
            token = _token(workspace, claims, key=priv, alg=alg, headers=kid)
            path = "/customers/me" if "id" in claims else "/workspace"
            status, body = await _get(http, stack.gateway_url, token, path)
            assert status == 200, body
        assert await served(stack, VERIFY) == before
        stranger = dict(_keypairs())[alg]  # the same algorithm, a key the workspace never gave
        forged = _token(workspace, {"id": f"pk-{alg}"}, key=stranger, alg=alg, headers=kid)
        assert await _code(http, stack.gateway_url, forged) == (401, "token_signature")


async def test_local_verification_admin_tokens_never_reach_identity(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    first = _token(workspace, {"isAdmin": True})
    assert (await _get(http, stack.gateway_url, first, "/workspace"))[0] == 200
    before = await served(stack, VERIFY)
    for _ in range(5):
        status, body = await _get(
            http, stack.gateway_url, _token(workspace, {"isAdmin": True}), "/workspace"
        )
        assert (status, body["id"]) == (200, workspace.id)
    assert await served(stack, VERIFY) == before


async def test_local_verification_concurrent_misses_share_one_key_fetch(
    stack: Stack,
    workspace: WorkspaceHandle,
    http: aiohttp.ClientSession,
    second_gateway: tuple[web.AppRunner, str],
) -> None:
    runner, url = second_gateway
    assert authenticator(runner).keys.cached(workspace.key) is None
    before = await served(stack, KEYS)
    tokens = [_token(workspace, {"isAdmin": True}) for _ in range(20)]
    answers = await asyncio.gather(*(_get(http, url, t, "/workspace") for t in tokens))
    assert [status for status, _ in answers] == [200] * 20
    assert await served(stack, KEYS) == before + 1


async def test_local_verification_refuses_other_workspaces_and_bad_input(
    make_workspace: WorkspaceFactory, http: aiohttp.ClientSession, stack: Stack
) -> None:
    a, b = await make_workspace(), await make_workspace()
    assert (await _get(http, stack.gateway_url, _token(a, {"id": "x-1"})))[
        0
    ] == 200  # a's keys kept
    assert (await _get(http, stack.gateway_url, _token(b, {"id": "x-1"})))[
        0
    ] == 200  # b's keys kept
    cross = _token(a, {"id": "x-1"}, key=b.secret)  # a's issuer, b's secret
    assert await _code(http, stack.gateway_url, cross) == (401, "token_signature")
    cross_admin = _token(a, {"isAdmin": True}, key=b.secret)
    assert await _code(http, stack.gateway_url, cross_admin) == (401, "token_signature")
    now = int(time.time())
    odd_issuers = ["ws_\u0000nul", "ws_\ud800lone", "ws_" + "x" * 5000]
    for issuer in odd_issuers:  # names no workspace: refused, never a 500
        body = {"iss": issuer, "id": "x", "exp": now + 60}
        raw = jwt.encode(body, a.secret, algorithm="HS256")
        assert await _code(http, stack.gateway_url, raw) == (401, "token_unknown_issuer"), issuer
    deep = "e30." + jwt.utils.base64url_encode(b"[" * 12_000).decode() + ".x"  # < 16 KiB
    assert await _code(http, stack.gateway_url, deep) == (401, "token_malformed")


async def test_local_verification_keeps_secrets_out_of_logs_and_reprs(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    with capture_logs() as logs:
        assert (await _get(http, stack.gateway_url, _token(workspace, {"id": "s-1"})))[0] == 200
        bad = _token(workspace, {"id": "s-1"}, key="not-the-secret-but-long-enough-000000")
        assert (await _code(http, stack.gateway_url, bad))[0] == 401
    kept = authenticator(stack.runners[-1]).keys.cached(workspace.key)
    assert kept is not None
    assert kept.secrets == (workspace.secret,)
    assert workspace.secret not in repr(kept)
    assert logs  # the gateway did log its requests
    assert not [line for line in logs if workspace.secret in repr(line)]
