"""Access tokens through the gateway: every rejection has its own code; standard JWTs verify."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.conftest import WorkspaceFactory, WorkspaceHandle, bearer, eventually


def _hs(
    ws: WorkspaceHandle, claims: dict[str, Any], *, secret: str | None = None, alg: str = "HS256"
) -> str:
    now = int(time.time())
    return jwt.encode(
        {"iss": ws.key, "iat": now, "exp": now + 600, **claims}, secret or ws.secret, algorithm=alg
    )


async def _status(
    http: aiohttp.ClientSession, ws: WorkspaceHandle, token: str, path: str = "/customers/me"
) -> tuple[int, str]:
    async with http.get(ws.url(path), headers=bearer(token)) as resp:
        body = await resp.json()
        return resp.status, body.get("error", {}).get("code", "")


async def test_token_standard_hs256_customer_token_verifies(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    token = _hs(workspace, {"id": "u-1", "name": "Ada"})
    async with http.get(workspace.url("/customers/me"), headers=bearer(token)) as resp:
        assert resp.status == 200, await resp.text()
        me = await resp.json()
    assert (me["id"], me["name"]) == ("u-1", "Ada")
    sub_token = _hs(workspace, {"sub": "u-2"})  # sub stands in for a missing id
    async with http.get(workspace.url("/customers/me"), headers=bearer(sub_token)) as resp:
        assert (await resp.json())["id"] == "u-2"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("bad_signature", "token_signature"),
        ("expired", "token_expired"),
        ("not_yet_valid", "token_not_yet_valid"),
        ("unknown_issuer", "token_unknown_issuer"),
        ("alg_none", "token_algorithm"),
        ("alg_not_allowed", "token_algorithm"),
        ("no_exp", "token_claims"),
        ("too_long", "token_lifetime"),
        ("no_customer_id", "token_claims"),
        ("garbled", "token_malformed"),
    ],
)
async def test_token_rejections_have_distinct_codes(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, case: str, code: str
) -> None:
    now = int(time.time())
    tokens: dict[str, Callable[[], str]] = {
        "bad_signature": lambda: _hs(
            workspace, {"id": "u"}, secret="not-the-secret-but-long-enough-000000"
        ),
        "expired": lambda: _hs(workspace, {"id": "u", "iat": now - 3600, "exp": now - 600}),
        "not_yet_valid": lambda: _hs(workspace, {"id": "u", "nbf": now + 600, "exp": now + 1200}),
        "unknown_issuer": lambda: jwt.encode(
            {"iss": "ws_nobody", "id": "u", "exp": now + 60}, "x" * 32, algorithm="HS256"
        ),
        "alg_none": lambda: jwt.encode(
            {"iss": workspace.key, "id": "u", "exp": now + 60}, "", algorithm="none"
        ),
        "alg_not_allowed": lambda: _hs(workspace, {"id": "u"}, secret="x" * 64, alg="HS512"),
        "no_exp": lambda: jwt.encode(
            {"iss": workspace.key, "id": "u"}, workspace.secret, algorithm="HS256"
        ),
        "too_long": lambda: _hs(workspace, {"id": "u", "exp": now + 10 * 24 * 3600}),
        "no_customer_id": lambda: _hs(workspace, {"name": "nobody"}),
        "garbled": lambda: "abc.def.ghi",
    }
    status, got = await _status(http, workspace, tokens[case]())
    assert (status, got) == (401, code)


async def test_token_leeway_accepts_slightly_expired(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    now = int(time.time())
    status, _ = await _status(
        http, workspace, _hs(workspace, {"id": "u", "iat": now - 100, "exp": now - 10})
    )
    assert status == 200


def _keypairs() -> list[tuple[str, Any]]:
    return [
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate()),
    ]


def _pem(private: Any) -> str:
    return str(
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


async def test_token_public_key_algorithms_verify_and_confusion_is_refused(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = bearer(await workspace.admin_token())
    pairs = _keypairs()
    keys = [{"kid": alg.lower(), "alg": alg, "pem": _pem(priv)} for alg, priv in pairs]
    async with http.patch(
        workspace.url("/workspace"), json={"publicKeys": keys}, headers=admin
    ) as resp:
        assert resp.status == 200, await resp.text()
    now = int(time.time())
    for alg, priv in pairs:
        token = jwt.encode(
            {"iss": workspace.key, "id": f"pk-{alg}", "exp": now + 300},
            priv,
            algorithm=alg,
            headers={"kid": alg.lower()},
        )

        async def accepted(token: str = token) -> bool:  # the settings change reaches every cache
            return (await _status(http, workspace, token))[0] == 200

        await eventually(accepted, timeout=5)
    # HS256 signed with the public key as the HMAC secret (algorithm confusion) is refused.
    rsa_pem = keys[0]["pem"]
    forged = jwt.api_jws.PyJWS()
    # What an attacker's library does: sign HS256 with whatever key it is given.
    forged._algorithms["HS256"].prepare_key = lambda key: key  # type: ignore[method-assign]
    body = {"iss": workspace.key, "id": "evil", "exp": now + 300}
    confused = forged.encode(
        jwt.utils.force_bytes(__import__("json").dumps(body)), rsa_pem.encode(), algorithm="HS256"
    )
    assert (await _status(http, workspace, confused)) == (401, "token_signature")


async def test_token_private_key_is_refused_as_public_key(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = priv.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    admin = bearer(await workspace.admin_token())
    async with http.patch(
        workspace.url("/workspace"),
        json={"publicKeys": [{"alg": "RS256", "pem": pem}]},
        headers=admin,
    ) as resp:
        assert resp.status == 422
        assert (await resp.json())["error"]["details"][0]["field"] == "publicKeys.0.pem"


async def test_token_secret_rotation_grace(
    make_workspace: WorkspaceFactory, http: aiohttp.ClientSession
) -> None:
    ws = await make_workspace()
    admin = bearer(await ws.admin_token())
    old_token = _hs(ws, {"id": "u-rot"})
    assert (await _status(http, ws, old_token))[0] == 200
    async with http.post(ws.url("/workspace/secret/rotate"), headers=admin) as resp:
        assert resp.status == 200, await resp.text()
        new_secret = (await resp.json())["secret"]
    assert new_secret != ws.secret
    # Inside the grace period (default 24 h) both secrets verify.
    assert (await _status(http, ws, old_token))[0] == 200
    assert (await _status(http, ws, _hs(ws, {"id": "u-new"}, secret=new_secret)))[0] == 200
    # With a one-second grace, the old secret stops verifying once it is over.
    async with http.patch(
        ws.url("/workspace"), json={"settings": {"secretGrace": 1}}, headers=admin
    ) as resp:
        assert resp.status == 200
    async with http.post(ws.url("/workspace/secret/rotate"), headers=admin) as resp:
        newest = (await resp.json())["secret"]
    assert (await _status(http, ws, _hs(ws, {"id": "u-newest"}, secret=newest)))[0] == 200
    previous = _hs(ws, {"id": "u-prev"}, secret=new_secret)

    async def refused() -> bool:
        return await _status(http, ws, previous) == (401, "token_signature")

    await eventually(refused, timeout=10)
    old_again = _hs(ws, {"id": "u-old"})  # two rotations ago: gone at once
    assert await _status(http, ws, old_again) == (401, "token_signature")
