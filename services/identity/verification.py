"""Verify and mint access tokens: pure functions (no I/O, no clock but the one passed in)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import jwt
from jwt.algorithms import get_default_algorithms

from libs.common.contracts.identity import PublicKey, WorkspaceSettings
from libs.common.errors import Unauthenticated

if TYPE_CHECKING:  # defined by PyJWT only when `cryptography` is installed (it is a dependency)
    from jwt.algorithms import AllowedPublicKeys

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})


@dataclass(frozen=True)
class WorkspaceKeys:
    """What verifying a workspace's tokens needs: secrets in clear, keys loaded (memory only)."""

    workspace_id: UUID
    workspace_key: str
    settings: WorkspaceSettings
    secrets: tuple[str, ...]
    public_keys: tuple[tuple[PublicKey, AllowedPublicKeys], ...] = field(default=())
    previous_secret_expires_at: datetime | None = None

    def allowed_algorithms(self) -> frozenset[str]:
        """Return the workspace's allow-list (default: HS256 plus its public keys' algs)."""
        if self.settings.allowed_algorithms is not None:
            return frozenset(self.settings.allowed_algorithms)
        return frozenset({"HS256", *(pk.alg for pk, _ in self.public_keys)})


def load_public_keys(keys: list[PublicKey]) -> tuple[tuple[PublicKey, AllowedPublicKeys], ...]:
    """Parse PEM public keys once, with the algorithm object each is declared for."""
    algorithms = get_default_algorithms()
    return tuple((pk, algorithms[pk.alg].prepare_key(pk.pem)) for pk in keys)


@dataclass(frozen=True)
class Claims:
    """The parts of a verified token that Tether uses."""

    admin: bool
    customer_id: str | None
    name: str | None
    fields: dict[str, Any] | None
    expires_at: datetime
    trusted_until: datetime | None = None


def _fail(code: str, message: str) -> Unauthenticated:
    return Unauthenticated(message, code=code)


@dataclass(frozen=True)
class Unverified:
    """A token's header and issuer, read before its signature is checked (to pick keys)."""

    header: dict[str, Any]
    issuer: str


def _segment(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except ValueError as exc:
        raise _fail("token_malformed", f"the access token's {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise _fail("token_malformed", f"the access token's {what} is not an object")
    return value


def peek(token: str) -> Unverified:
    """Read a token's header and ``iss`` without trusting them; refuse what is not a JWT.

    PyJWT would parse the token twice (header, then decode); its parsing is most of a
    verification's cost, so the header is read here once and PyJWT decodes once.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise _fail("token_malformed", "the access token is not a JWT")
    header, payload = _segment(parts[0], "header"), _segment(parts[1], "payload")
    iss = payload.get("iss")
    if not isinstance(iss, str) or not iss:
        raise _fail("token_claims", "the access token has no iss (the workspace key)")
    return Unverified(header, iss)


def _check_times(claims: dict[str, Any], now: float, leeway: float) -> None:
    """Check ``iat``, ``nbf`` and ``exp`` at ``now`` as PyJWT would (same errors, same bounds)."""
    for claim in ("iat", "nbf", "exp"):
        if claim not in claims:
            continue
        try:
            value = int(claims[claim])
        except (ValueError, TypeError, OverflowError):
            invalid = jwt.InvalidIssuedAtError if claim == "iat" else jwt.DecodeError
            raise invalid(f"the {claim} claim must be an integer") from None
        if claim == "exp" and value <= now - leeway:
            raise jwt.ExpiredSignatureError("Signature has expired")
        if claim != "exp" and value > now + leeway:
            raise jwt.ImmatureSignatureError(f"The token is not yet valid ({claim})")


def verify(token: str, header: dict[str, Any], keys: WorkspaceKeys, now: datetime) -> Claims:
    """Check signature, algorithm, times and claims; return what the token says."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise _fail("token_algorithm", "unsigned tokens (alg none) are refused")
    if alg not in keys.allowed_algorithms():
        raise _fail("token_algorithm", f"algorithm {alg} is not allowed for this workspace")
    if alg in HMAC_ALGORITHMS:
        candidates: list[str | AllowedPublicKeys] = list(keys.secrets)
    else:
        kid = header.get("kid")
        candidates = [
            key
            for pk, key in keys.public_keys
            if pk.alg == alg and (kid is None or pk.kid in (None, kid))
        ]
    if not candidates:
        raise _fail("token_signature", f"no key of this workspace verifies {alg}")
    leeway = keys.settings.clock_leeway
    claims: dict[str, Any] | None = None
    used = -1
    for used, key in enumerate(candidates):  # noqa: B007 - the index says which key verified
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                leeway=leeway,
                # The times are checked against ``now`` below, not against PyJWT's own clock.
                options={
                    "require": ["exp", "iss"],
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
                issuer=keys.workspace_key,
            )
            _check_times(claims, now.timestamp(), leeway)
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError as exc:
            raise _fail("token_expired", "the access token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise _fail("token_not_yet_valid", "the access token is not valid yet") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise _fail("token_claims", f"the access token has no {exc.claim} claim") from exc
        except jwt.InvalidKeyError as exc:
            raise _fail("token_algorithm", "the token's algorithm does not fit the key") from exc
        except jwt.DecodeError as exc:
            raise _fail("token_malformed", "the access token cannot be decoded") from exc
        except jwt.InvalidTokenError as exc:
            raise _fail("token_claims", f"the access token's claims are not valid: {exc}") from exc
    if claims is None:
        raise _fail("token_signature", "the access token's signature does not verify")
    result = _claims(claims, keys.settings, now)
    if (
        alg in HMAC_ALGORITHMS and used > 0
    ):  # verified by the previous secret: only until its grace ends
        return replace(result, trusted_until=keys.previous_secret_expires_at)
    return result


def _claims(claims: dict[str, Any], settings: WorkspaceSettings, now: datetime) -> Claims:
    exp = claims["exp"]
    if not isinstance(exp, int | float):
        raise _fail("token_claims", "exp must be a number")
    start = claims.get("iat", claims.get("nbf", now.timestamp()))
    if not isinstance(start, int | float):
        raise _fail("token_claims", "iat must be a number")
    if exp - start > settings.max_token_lifetime + settings.clock_leeway:
        raise _fail(
            "token_lifetime",
            f"the access token lives longer than the workspace's maximum of {settings.max_token_lifetime}s",
        )
    expires_at = datetime.fromtimestamp(exp, UTC)
    if claims.get("isAdmin") is True:
        return Claims(True, None, None, None, expires_at)
    raw_id = claims.get("id", claims.get("sub"))
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id) == "":
        raise _fail("token_claims", "a customer token needs an id (or sub) claim")
    customer_id = str(raw_id)
    if len(customer_id) > 256:
        raise _fail("token_claims", "the customer id is longer than 256 characters")
    name = claims.get("name")
    fields = claims.get("fields")
    if name is not None and not isinstance(name, str):
        raise _fail("token_claims", "name must be a string")
    if fields is not None and not isinstance(fields, dict):
        raise _fail("token_claims", "fields must be an object")
    return Claims(False, customer_id, name, fields, expires_at)


def mint(
    workspace_key: str,
    secret: str,
    *,
    now: datetime,
    ttl: int,
    customer_id: str | None = None,
    admin: bool = False,
    name: str | None = None,
    fields: dict[str, Any] | None = None,
) -> tuple[str, datetime]:
    """Sign an HS256 token for a customer or an admin; return it with its expiry."""
    expires_at = now + timedelta(seconds=ttl)
    claims: dict[str, Any] = {
        "iss": workspace_key,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    if admin:
        claims["isAdmin"] = True
    else:
        claims["id"] = customer_id
        if name is not None:
            claims["name"] = name
        if fields is not None:
            claims["fields"] = fields
    return jwt.encode(claims, secret, algorithm="HS256"), datetime.fromtimestamp(claims["exp"], UTC)
