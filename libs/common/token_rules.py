"""Verify access tokens: the rules, written once for identity and the gateway alike.

Pure functions (no I/O, no clock but the one passed in). Whoever verifies — identity's
``tokens.verify`` or the gateway on its own with keys fetched from identity — reads a
token with :func:`peek`, picks the workspace's :class:`WorkspaceKeys` by its issuer (or
refuses it with :func:`unknown_issuer`), then calls :func:`verify`. Every refusal is an
``Unauthenticated`` with a ``token_*`` code, so both give the same answer to the same token
with the same keys.

PyJWT decides every signature, except that an ordinary HMAC token is checked by
:func:`hmac_decode` with PyJWT's own checks and none of its per-call overhead; it accepts
only what PyJWT would accept, with the same claims, and leaves everything else (every
refusal included) to PyJWT (``tests/unit/test_token_rules.py`` compares the two).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from uuid import UUID

import jwt
from jwt.algorithms import get_default_algorithms

from libs.common.contracts.identity import PublicKey, VerifiedToken, WorkspaceSettings
from libs.common.errors import Unauthenticated

if TYPE_CHECKING:  # defined by PyJWT only when `cryptography` is installed (it is a dependency)
    from jwt.algorithms import AllowedPublicKeys

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})


@dataclass(frozen=True)
class WorkspaceKeys:
    """What verifying a workspace's tokens needs: secrets in clear, keys loaded (memory only).

    The secrets never show in a ``repr`` (a log line or a traceback with locals).
    """

    workspace_id: UUID
    workspace_key: str
    settings: WorkspaceSettings
    secrets: tuple[str, ...] = field(repr=False)
    public_keys: tuple[tuple[PublicKey, AllowedPublicKeys], ...] = field(default=())
    previous_secret_expires_at: datetime | None = None

    @cached_property
    def prepared_secrets(self) -> tuple[bytes, ...] | None:
        """Return the secrets as PyJWT's HMAC takes them (None if it refuses one as a key)."""
        algorithm = get_default_algorithms()["HS256"]  # every HS* prepares keys alike
        try:
            return tuple(algorithm.prepare_key(secret) for secret in self.secrets)
        except jwt.InvalidKeyError:
            return None

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


def unknown_issuer() -> Unauthenticated:
    """Return the refusal of a token whose ``iss`` names no workspace."""
    return _fail("token_unknown_issuer", "no workspace has this token's issuer")


def issuer_can_exist(issuer: str) -> bool:
    """Tell whether ``issuer`` could be a workspace key at all, before anyone looks it up.

    A workspace key is PostgreSQL text: UTF-8 without NUL. Anything else (a lone surrogate
    or a NUL escaped in the token's JSON) names no workspace, and looking it up would only
    fail in the database driver.
    """
    if "\x00" in issuer:
        return False
    try:
        issuer.encode()
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class Unverified:
    """A token's header, issuer and payload, read before its signature is checked."""

    header: dict[str, Any]
    issuer: str
    payload: dict[str, Any] = field(repr=False)


def _segment(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise _fail("token_malformed", f"the access token's {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise _fail("token_malformed", f"the access token's {what} is not an object")
    return value


HEADER_MEMO_SIZE = 256
"""Parsed header segments a caller's memo holds before it starts afresh (see :func:`peek`)."""


def peek(token: str, headers: dict[str, dict[str, Any]] | None = None) -> Unverified:
    """Read a token's header and ``iss`` without trusting them; refuse what is not a JWT.

    PyJWT would parse the token twice (header, then decode); its parsing is most of a
    verification's cost, so the header is read here once and PyJWT decodes once.
    ``headers`` memoises parsed header segments for a caller that reads many tokens (the
    tokens of one workspace share one header, byte for byte); what it holds is never
    changed by anyone, and it starts afresh past :data:`HEADER_MEMO_SIZE` entries.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise _fail("token_malformed", "the access token is not a JWT")
    header = headers.get(parts[0]) if headers is not None else None
    if header is None:
        header = _segment(parts[0], "header")
        if headers is not None:
            if len(headers) >= HEADER_MEMO_SIZE:
                headers.clear()
            headers[parts[0]] = header
    payload = _segment(parts[1], "payload")
    iss = payload.get("iss")
    if not isinstance(iss, str) or not iss:
        raise _fail("token_claims", "the access token has no iss (the workspace key)")
    return Unverified(header, iss, payload)


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


def _refusal(exc: jwt.InvalidTokenError | jwt.InvalidKeyError) -> Unauthenticated:
    """Return the refusal for PyJWT's error (or one :func:`_check_times` raises as PyJWT would)."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return _fail("token_expired", "the access token has expired")
    if isinstance(exc, jwt.ImmatureSignatureError):
        return _fail("token_not_yet_valid", "the access token is not valid yet")
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return _fail("token_claims", f"the access token has no {exc.claim} claim")
    if isinstance(exc, jwt.InvalidKeyError):
        return _fail("token_algorithm", "the token's algorithm does not fit the key")
    if isinstance(exc, jwt.DecodeError):
        return _fail("token_malformed", "the access token cannot be decoded")
    return _fail("token_claims", f"the access token's claims are not valid: {exc}")


def verify(
    token: str,
    header: dict[str, Any],
    keys: WorkspaceKeys,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> Claims:
    """Check signature, algorithm, times and claims; return what the token says.

    ``header`` (and ``payload``, which saves reading it again) are :func:`peek`'s.
    """
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
    decoded = hmac_decode(token, header, keys, alg, payload) if alg in HMAC_ALGORITHMS else None
    if decoded is None:
        decoded = _pyjwt_decode(token, alg, candidates, keys.workspace_key, leeway)
    claims, used = decoded
    try:
        _check_times(claims, now.timestamp(), leeway)
    except jwt.InvalidTokenError as exc:
        raise _refusal(exc) from exc
    result = _claims(claims, keys.settings, now)
    if (
        alg in HMAC_ALGORITHMS and used > 0
    ):  # verified by the previous secret: only until its grace ends
        return replace(result, trusted_until=keys.previous_secret_expires_at)
    return result


def _pyjwt_decode(
    token: str,
    alg: str,
    candidates: list[str | AllowedPublicKeys],
    issuer: str,
    leeway: float,
) -> tuple[dict[str, Any], int]:
    """Return the claims PyJWT decodes with the first key that verifies, and that key's index."""
    for used, key in enumerate(candidates):
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                leeway=leeway,
                # The times are checked against ``now`` by the caller, not against PyJWT's clock.
                options={
                    "require": ["exp", "iss"],
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
                issuer=issuer,
            )
        except jwt.InvalidSignatureError:
            continue
        except (jwt.InvalidTokenError, jwt.InvalidKeyError) as exc:
            raise _refusal(exc) from exc
        return claims, used
    raise _fail("token_signature", "the access token's signature does not verify")


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
"""By constructor: ``hmac.digest`` looks a name up in OpenSSL on every call (twice as slow)."""


_BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_UNUSED_BITS = {0: 0, 2: 0b1111, 3: 0b11}  # by length % 4: bits of the last character left over


def _canonical(segment: str) -> bool:
    """Tell whether PyJWT takes ``segment`` as it is: unpadded base64url, no stray bits.

    PyJWT decodes and encodes again and refuses a segment that changes, which is exactly
    one whose last character carries bits beyond the data (or whose length is 1 mod 4).
    """
    unused = _UNUSED_BITS.get(len(segment) % 4)
    if unused is None or not _BASE64URL.fullmatch(segment):
        return False
    return not segment or not _BASE64URL_ALPHABET.index(segment[-1]) & unused


def _decoded(segment: str) -> bytes:
    """Decode a segment :func:`_canonical` accepted."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def hmac_decode(
    token: str,
    header: dict[str, Any],
    keys: WorkspaceKeys,
    alg: str,
    payload: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], int] | None:
    """Return what PyJWT would decode from an ordinary HMAC token, without PyJWT; else None.

    ``header`` and ``payload`` (read again when not given) are :func:`peek`'s.

    PyJWT's own code costs some 20 times the HMAC (it parses each key as PEM, DER and
    JSON on every call). A token is *ordinary* when every check PyJWT makes is one this
    function makes too: canonical unpadded base64url segments, no ``crit`` or ``b64``
    header, a text ``kid`` if any, a JSON object payload with ``exp``, ``iss`` equal to
    the workspace key, and text ``sub`` and ``jti`` if any. Then the claims and the index
    of the secret whose HMAC matches are exactly what :func:`_pyjwt_decode` returns.
    Anything else, or no secret matching, is None: PyJWT decides, with its exact refusal.
    """
    secrets = keys.prepared_secrets
    if secrets is None or "crit" in header or "b64" in header:
        return None
    if not isinstance(header.get("kid", ""), str):
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header_part, payload_part, signature_part = parts
    if not (_canonical(header_part) and _canonical(payload_part) and _canonical(signature_part)):
        return None
    signature = _decoded(signature_part)
    signing_input = f"{header_part}.{payload_part}".encode()
    digest = _HMAC_HASHES[alg]
    used = next(
        (
            i
            for i, secret in enumerate(secrets)
            if hmac.compare_digest(signature, hmac.digest(secret, signing_input, digest))
        ),
        None,
    )
    if used is None:
        return None
    claims: Any = payload
    if claims is None:
        try:
            claims = json.loads(_decoded(payload_part))
        except (ValueError, RecursionError):
            return None
    if not isinstance(claims, dict) or claims.get("exp") is None:
        return None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or issuer != keys.workspace_key:
        return None
    for text in ("sub", "jti"):
        if text in claims and not isinstance(claims[text], str):
            return None
    return claims, used


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


def verified_token(keys: WorkspaceKeys, claims: Claims) -> VerifiedToken:
    """Return who a verified token speaks for, as identity's ``tokens.verify`` answers it."""
    return VerifiedToken(
        workspace_id=keys.workspace_id,
        workspace_key=keys.workspace_key,
        principal="admin" if claims.admin else "customer",
        customer_id=claims.customer_id,
        expires_at=claims.expires_at,
        cache_until=claims.trusted_until,
    )
