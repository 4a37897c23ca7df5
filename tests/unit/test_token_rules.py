"""The HMAC fast path decides exactly as PyJWT: the same claims and key, or it steps aside."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from libs.common import token_rules
from libs.common.contracts.identity import WorkspaceSettings
from libs.common.errors import Unauthenticated

SECRET = "s" * 64  # long enough for HS512 (PyJWT warns about shorter HMAC keys)
PREVIOUS = "p" * 64
WORKSPACE = "ws_rules"
HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
NOW = datetime(2041, 6, 1, tzinfo=UTC)
KEYS = token_rules.WorkspaceKeys(
    workspace_id=UUID(int=7),
    workspace_key=WORKSPACE,
    settings=WorkspaceSettings(allowed_algorithms=["HS256", "HS384", "HS512"]),
    secrets=(SECRET, PREVIOUS),
    previous_secret_expires_at=NOW,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(alg: str, header_part: str, payload_part: str, key: str) -> str:
    signing_input = f"{header_part}.{payload_part}".encode()
    return _b64(hmac.digest(key.encode(), signing_input, HASHES[alg]))


def _token(header: dict[str, Any], payload: dict[str, Any], key: str = SECRET) -> str:
    h, p = _b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode())
    return f"{h}.{p}.{_sign(header['alg'], h, p, key)}"


def _pyjwt(token: str, alg: str) -> tuple[dict[str, Any], int] | str:
    """Return what PyJWT decides: the claims and the secret's index, or the refusal's code."""
    try:
        return token_rules._pyjwt_decode(token, alg, list(KEYS.secrets), WORKSPACE, 0)
    except Unauthenticated as exc:
        return exc.code


def _fast(token: str) -> tuple[dict[str, Any], int] | None:
    unverified = token_rules.peek(token)
    alg = unverified.header["alg"]
    return token_rules.hmac_decode(token, unverified.header, KEYS, alg, unverified.payload)


EXP = int(NOW.timestamp()) + 600
ORDINARY = {"iss": WORKSPACE, "exp": EXP, "id": "c-1", "fields": {"a": [1, 2.5, None]}}


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize(("key", "index"), [(SECRET, 0), (PREVIOUS, 1)])
@pytest.mark.parametrize(
    "extra", [{}, {"typ": "JWT"}, {"kid": "k1"}, {"typ": "JWT", "cty": "x", "x5u": "y"}]
)
def test_hmac_decode_takes_ordinary_tokens_as_pyjwt_does(
    alg: str, key: str, index: int, extra: dict[str, Any]
) -> None:
    for payload in (ORDINARY, {**ORDINARY, "sub": "s", "jti": "j", "aud": 5}):
        token = _token({"alg": alg, **extra}, payload, key)
        fast = _fast(token)
        assert fast is not None  # ordinary: decided without PyJWT
        assert fast == _pyjwt(token, alg) == (payload, index)


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        ({"kid": 5}, {}),
        ({"crit": ["b64"], "b64": False}, {}),
        ({"crit": []}, {}),
        ({}, {"sub": 42}),
        ({}, {"jti": 42}),
        ({}, {"iss": "someone-else"}),
        ({}, {"exp": None}),
    ],
)
def test_hmac_decode_leaves_the_unusual_to_pyjwt(
    header: dict[str, Any], payload: dict[str, Any]
) -> None:
    token = _token({"alg": "HS256", **header}, {**ORDINARY, **payload})
    assert _fast(token) is None
    assert isinstance(_pyjwt(token, "HS256"), str)  # and PyJWT refuses each of them


def test_hmac_decode_leaves_an_unknown_secret_to_pyjwt() -> None:
    token = _token({"alg": "HS256"}, ORDINARY, "x" * 64)
    assert _fast(token) is None
    assert _pyjwt(token, "HS256") == "token_signature"


def test_hmac_decode_refuses_segments_pyjwt_would_not_decode() -> None:
    h = _b64(json.dumps({"alg": "HS256"}).encode())
    # A payload whose encoding's last character has unused bits (length 2 or 3 mod 4).
    p = next(
        encoded
        for n in range(3)
        if len(encoded := _b64(json.dumps({**ORDINARY, "n": "x" * n}).encode())) % 4 in (2, 3)
    )
    stray = (
        p[:-1] + token_rules._BASE64URL_ALPHABET[token_rules._BASE64URL_ALPHABET.index(p[-1]) | 1]
    )
    for payload_part in (p + "=" * (-len(p) % 4), stray):
        token = f"{h}.{payload_part}.{_sign('HS256', h, payload_part, SECRET)}"
        assert _fast(token) is None, payload_part


def test_hmac_decode_is_used_by_verify() -> None:
    """verify() answers ordinary tokens through the fast path, with PyJWT's claims."""
    token = _token({"alg": "HS256"}, {**ORDINARY, "iat": EXP - 600})
    claims = token_rules.verify(token, token_rules.peek(token).header, KEYS, NOW)
    assert (claims.customer_id, claims.fields) == ("c-1", {"a": [1, 2.5, None]})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)
MISSING = object()


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(MISSING), values)


def _mostly(usual: Any, *others: Any) -> st.SearchStrategy[Any]:
    """Draw ``usual`` three times in four, else one of ``others``."""
    return st.sampled_from([usual, usual, usual, *others])


@st.composite
def tokens(draw: st.DrawFn) -> tuple[str, str]:
    """Draw a token whose header, claims, encoding and key vary where PyJWT is strict."""
    alg = draw(st.sampled_from(sorted(HASHES)))
    header: dict[str, Any] = {"alg": alg}
    for name in draw(_mostly((), ("kid",), ("crit",), ("b64",), ("typ", "cty"), ("kid", "b64"))):
        header[name] = draw(JSON | st.just(["b64"]))
    payload: dict[str, Any] = {}
    choices = {
        "iss": _mostly(WORKSPACE, "other", 5, None, MISSING),
        "exp": _mostly(EXP, 1.5, None, "soon", MISSING),
        "sub": _mostly(MISSING, "s", 5, None),
        "jti": _mostly(MISSING, "j", 5, [1]),
        "aud": _maybe(JSON),
        "id": _maybe(JSON),
    }
    for name, values in choices.items():
        value = draw(values)
        if value is not MISSING:
            payload[name] = value
    h, p = _b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode())
    mangle = draw(_mostly("none", "pad", "stray", "junk"))
    where = draw(st.sampled_from(["header", "payload", "signature"]))
    if where != "signature":
        if where == "header":
            h = _mangled(h, mangle)
        else:
            p = _mangled(p, mangle)
    key = draw(st.sampled_from([SECRET, PREVIOUS, SECRET, PREVIOUS, "w" * 64]))
    s = _sign(alg, h, p, key)
    if where == "signature":
        s = _mangled(s, mangle)
    return f"{h}.{p}.{s}", alg


def _mangled(segment: str, how: str) -> str:
    alphabet = token_rules._BASE64URL_ALPHABET
    if how == "pad":
        return segment + "=" * (-len(segment) % 4 or 1)
    if how == "stray" and len(segment) % 4 in (2, 3):
        return segment[:-1] + alphabet[alphabet.index(segment[-1]) | 1]
    if how == "junk":
        return segment[:1] + "!" + segment[1:]
    return segment


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens())
def test_hmac_decode_never_disagrees_with_pyjwt(drawn: tuple[str, str]) -> None:
    """Whatever the fast path decides, PyJWT decides the same (else it left it to PyJWT)."""
    token, alg = drawn
    try:
        token_rules.peek(token)
    except Unauthenticated:
        assume(False)  # refused before any key is used, by both
    fast = _fast(token)
    if fast is not None:
        assert fast == _pyjwt(token, alg)
