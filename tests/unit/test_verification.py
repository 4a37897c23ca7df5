"""Token verification at an injected clock: times, leeway, lifetime, keys, claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
import pytest

from libs.common.contracts.identity import WorkspaceSettings
from libs.common.errors import Unauthenticated
from services.identity.verification import Claims, WorkspaceKeys, peek, verify

# Far from the real clock on both sides: a check that read the real time would fail.
FUTURE = datetime(2041, 6, 1, 12, 0, tzinfo=UTC)
PAST = datetime(2003, 6, 1, 12, 0, tzinfo=UTC)
SECRET = "s" * 64  # long enough for every HMAC algorithm (PyJWT warns otherwise)
PREVIOUS = "p" * 64
WORKSPACE = "ws_unit"


def keys(
    *, leeway: int = 0, lifetime: int = 3600, grace_until: datetime | None = None
) -> WorkspaceKeys:
    """Return a workspace's keys: the current secret, then the previous one."""
    return WorkspaceKeys(
        workspace_id=UUID(int=1),
        workspace_key=WORKSPACE,
        settings=WorkspaceSettings(clock_leeway=leeway, max_token_lifetime=lifetime),
        secrets=(SECRET, PREVIOUS),
        previous_secret_expires_at=grace_until,
    )


def token(now: datetime, secret: str = SECRET, alg: str = "HS256", **claims: Any) -> str:
    """Sign a customer token issued at ``now`` for ten minutes, with ``claims`` over that."""
    body: dict[str, Any] = {
        "iss": WORKSPACE,
        "id": "cust-1",
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + 600,
    }
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm=alg)


def check(raw: str, now: datetime, workspace: WorkspaceKeys | None = None) -> Claims:
    """Verify ``raw`` at ``now``."""
    return verify(raw, peek(raw).header, workspace or keys(), now)


def refused(raw: str, now: datetime, workspace: WorkspaceKeys | None = None) -> str:
    """Return the code ``raw`` is refused with at ``now``."""
    with pytest.raises(Unauthenticated) as caught:
        check(raw, now, workspace)
    return caught.value.code


@pytest.mark.parametrize("now", [PAST, FUTURE])
def test_verify_uses_the_given_clock(now: datetime) -> None:
    """A token fresh at the injected time verifies, however far that is from the real one."""
    claims = check(token(now), now)
    assert claims.customer_id == "cust-1"
    assert claims.expires_at == now + timedelta(seconds=600)
    assert claims.trusted_until is None


def test_verify_expired_at_the_given_clock() -> None:
    raw = token(PAST)
    assert refused(raw, PAST + timedelta(hours=1)) == "token_expired"


def test_verify_exp_exactly_now_is_expired() -> None:
    exp = int(FUTURE.timestamp())
    assert refused(token(FUTURE - timedelta(seconds=60), exp=exp), FUTURE) == "token_expired"


def test_verify_exp_one_second_ahead_is_valid() -> None:
    exp = int(FUTURE.timestamp()) + 1
    assert check(token(FUTURE - timedelta(seconds=60), exp=exp), FUTURE).customer_id == "cust-1"


@pytest.mark.parametrize(
    ("expired_for", "code"),
    [(0, None), (29, None), (30, "token_expired"), (31, "token_expired")],
)
def test_verify_leeway_on_exp(expired_for: int, code: str | None) -> None:
    """Within the leeway an expired token still passes; at the leeway's end it does not."""
    exp = int(FUTURE.timestamp()) - expired_for
    raw = token(FUTURE - timedelta(seconds=600), exp=exp)
    if code is None:
        assert check(raw, FUTURE, keys(leeway=30)).customer_id == "cust-1"
    else:
        assert refused(raw, FUTURE, keys(leeway=30)) == code


@pytest.mark.parametrize("claim", ["iat", "nbf"])
@pytest.mark.parametrize(
    ("ahead", "leeway", "code"),
    [(0, 0, None), (1, 0, "token_not_yet_valid"), (30, 30, None), (31, 30, "token_not_yet_valid")],
)
def test_verify_leeway_on_iat_and_nbf(
    claim: str, ahead: int, leeway: int, code: str | None
) -> None:
    """A token from a clock running ahead is accepted within the leeway only."""
    start = int(FUTURE.timestamp()) + ahead
    times: dict[str, Any] = {claim: start, "exp": start + 600}
    raw = token(FUTURE, **times)
    if code is None:
        assert check(raw, FUTURE, keys(leeway=leeway)).customer_id == "cust-1"
    else:
        assert refused(raw, FUTURE, keys(leeway=leeway)) == code


@pytest.mark.parametrize(
    ("claim", "value", "code"),
    [
        ("exp", "soon", "token_malformed"),
        ("nbf", "soon", "token_malformed"),
        ("iat", "soon", "token_claims"),
    ],
)
def test_verify_refuses_times_that_are_not_numbers(claim: str, value: str, code: str) -> None:
    assert refused(token(FUTURE, **{claim: value}), FUTURE) == code


@pytest.mark.parametrize(
    ("lifetime", "leeway", "code"),
    [(3600, 0, None), (3601, 0, "token_lifetime"), (3630, 30, None), (3631, 30, "token_lifetime")],
)
def test_verify_caps_the_lifetime(lifetime: int, leeway: int, code: str | None) -> None:
    """A token may live the workspace's maximum plus the leeway, not a second more."""
    iat = int(FUTURE.timestamp())
    raw = token(FUTURE, exp=iat + lifetime)
    if code is None:
        assert check(raw, FUTURE, keys(leeway=leeway, lifetime=3600)).customer_id == "cust-1"
    else:
        assert refused(raw, FUTURE, keys(leeway=leeway, lifetime=3600)) == code


def test_verify_lifetime_counts_from_nbf_without_iat() -> None:
    start = int(FUTURE.timestamp())
    raw = token(FUTURE, iat=None, nbf=start, exp=start + 3601)
    assert refused(raw, FUTURE, keys(lifetime=3600)) == "token_lifetime"


def test_verify_lifetime_counts_from_now_without_iat_or_nbf() -> None:
    now = int(FUTURE.timestamp())
    assert check(token(FUTURE, iat=None, exp=now + 3600), FUTURE, keys(lifetime=3600))
    assert refused(token(FUTURE, iat=None, exp=now + 3601), FUTURE, keys(lifetime=3600)) == (
        "token_lifetime"
    )


def test_verify_needs_exp() -> None:
    assert refused(token(FUTURE, exp=None), FUTURE) == "token_claims"


def test_verify_refuses_another_issuer() -> None:
    assert refused(token(FUTURE, iss="someone-else"), FUTURE) == "token_claims"


def test_verify_refuses_alg_none() -> None:
    raw = jwt.encode({"iss": WORKSPACE, "id": "c", "exp": 1}, "", algorithm="none")
    assert refused(raw, FUTURE) == "token_algorithm"


def test_verify_refuses_an_algorithm_not_allowed() -> None:
    assert refused(token(FUTURE, alg="HS512"), FUTURE) == "token_algorithm"


def test_verify_refuses_an_unknown_secret() -> None:
    assert refused(token(FUTURE, secret="x" * 64), FUTURE) == "token_signature"


def test_verify_previous_secret_is_trusted_until_its_grace_ends() -> None:
    grace = FUTURE + timedelta(hours=1)
    claims = check(token(FUTURE, secret=PREVIOUS), FUTURE, keys(grace_until=grace))
    assert claims.trusted_until == grace


def test_verify_expired_token_of_the_previous_secret_is_expired() -> None:
    """The signature is found first (the previous secret), then the time is checked."""
    raw = token(PAST, secret=PREVIOUS)
    assert refused(raw, PAST + timedelta(hours=1)) == "token_expired"


def test_verify_admin_token() -> None:
    claims = check(token(FUTURE, id=None, isAdmin=True), FUTURE)
    assert claims.admin is True
    assert claims.customer_id is None


@pytest.mark.parametrize(("claims", "customer_id"), [({"id": 42}, "42"), ({"sub": "c-9"}, "c-9")])
def test_verify_customer_id_from_id_or_sub(claims: dict[str, Any], customer_id: str) -> None:
    assert check(token(FUTURE, **{"id": None, **claims}), FUTURE).customer_id == customer_id


def test_verify_refuses_a_sub_that_is_not_text() -> None:
    assert refused(token(FUTURE, id=None, sub=42), FUTURE) == "token_claims"


@pytest.mark.parametrize("bad", [{"id": None}, {"id": ""}, {"id": True}, {"id": "x" * 257}])
def test_verify_refuses_a_customer_token_without_a_usable_id(bad: dict[str, Any]) -> None:
    assert refused(token(FUTURE, **bad), FUTURE) == "token_claims"


@pytest.mark.parametrize("bad", [{"name": 5}, {"fields": ["a"]}])
def test_verify_refuses_name_and_fields_of_the_wrong_type(bad: dict[str, Any]) -> None:
    assert refused(token(FUTURE, **bad), FUTURE) == "token_claims"


def test_verify_returns_name_and_fields() -> None:
    claims = check(token(FUTURE, name="Ada", fields={"plan": "pro"}), FUTURE)
    assert (claims.name, claims.fields) == ("Ada", {"plan": "pro"})


@pytest.mark.parametrize("raw", ["", "a.b", "a.b.c.d", "e30.bm90anNvbg.x", "W10.e30.x"])
def test_peek_refuses_what_is_not_a_jwt(raw: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        peek(raw)
    assert caught.value.code == "token_malformed"


def test_peek_needs_an_issuer() -> None:
    raw = jwt.encode({"id": "c", "exp": 1}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated) as caught:
        peek(raw)
    assert caught.value.code == "token_claims"
