"""Authenticate callers: the gateway verifies tokens itself and asks identity only about news.

A bearer token goes through three levels, cheapest first (``routes.py`` shows where this
sits in a request):

1. :class:`TokenCache`: a token verified before (by its SHA-256) costs nothing.
2. The shared rules (:mod:`libs.common.token_rules`) with the workspace's keys, kept in
   the gateway (:mod:`services.gateway.token_keys`): signature, algorithm, times and
   claims are checked here. That settles an admin token, and a customer token whose
   name and fields identity already holds (:mod:`services.gateway.known_customers`).
3. Identity's ``tokens.verify``, for a customer token whose claims are new to this
   replica (the customer's first token, or a changed name or fields): identity verifies
   it again and registers the customer (creates it, applies the change, refuses an
   archived one). One call per token, shared by concurrent first requests.

Every refusal is the one identity would give: the rules are the same code, and when the
kept keys refuse a token they are fetched again before the refusal stands (a rotation,
new public keys or new settings may not have reached this replica yet). What the kept
keys accept stands until ``workspace.updated`` drops them, the same window in which a
verified token stays in :class:`TokenCache`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from aiohttp import web

from libs.common import token_rules
from libs.common.bus import Bus
from libs.common.cache import TtlCache
from libs.common.contracts import identity
from libs.common.contracts.base import Context
from libs.common.errors import Forbidden, TetherError, Unauthenticated
from libs.common.singleflight import SingleFlight
from libs.common.token_rules import Claims, Unverified, WorkspaceKeys
from services.gateway.kept_replies import KeptReplies, customer_object
from services.gateway.known_customers import KnownCustomers, claims_digest
from services.gateway.retry import idempotent
from services.gateway.token_keys import VerificationKeyCache

VerifyResult = Literal["cache_hit", "verified", "rejected"]
"""How a token check ended: known already, verified now, or refused (4xx)."""


class TokenCache:
    """Verified tokens by SHA-256 of the token (never the token), until min(exp, ttl)."""

    def __init__(self, size: int, ttl: float) -> None:
        self._entries: TtlCache[bytes, identity.VerifiedToken] = TtlCache(size, ttl)

    def get(self, digest: bytes) -> identity.VerifiedToken | None:
        """Return a cached verification that has not expired."""
        return self._entries.get(digest)

    @property
    def generation(self) -> int:
        """Return the drop count to read before asking identity (see :meth:`put`)."""
        return self._entries.generation

    def put(
        self, digest: bytes, verified: identity.VerifiedToken, *, since: int | None = None
    ) -> None:
        """Remember a verification until the token (or the secret it used) stops being valid.

        Not when a workspace or customer was dropped since ``since`` (the verification may
        predate the change the drop was for).
        """
        until = verified.expires_at
        if verified.cache_until is not None:
            until = min(until, verified.cache_until)
        self._entries.put(digest, verified, until.timestamp() - time.time(), since=since)

    def drop_workspace(self, workspace_id: UUID) -> None:
        """Forget every token of a workspace (its secret or settings changed)."""
        self._entries.drop_where(lambda v: v.workspace_id == workspace_id)

    def drop_customer(self, workspace_id: UUID, customer_id: str) -> None:
        """Forget every token of one customer (archived)."""
        self._entries.drop_where(
            lambda v: v.workspace_id == workspace_id and v.customer_id == customer_id
        )

    def __len__(self) -> int:
        return len(self._entries)


def bearer_token(request: web.Request) -> str | None:
    """Return the bearer token of the Authorization header, if any.

    The HTTP server admits header fields far longer than any token (see ``create_app``), so
    that an oversized one is refused here, in our error envelope, rather than by aiohttp's
    parser, whose plain-text answer quotes the start of the field. Nothing is ever echoed.
    """
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated(
            "the Authorization header must be 'Bearer <token>'", code="token_malformed"
        )
    if len(token) > identity.TOKEN_MAX_LENGTH:
        raise Unauthenticated(
            f"the access token is longer than {identity.TOKEN_MAX_LENGTH} characters",
            code="token_too_long",
        )
    if not token.isascii():  # a JWT is base64url and dots; other bytes arrive as surrogates
        raise Unauthenticated("the access token is not a JWT", code="token_malformed")
    return token


class Authenticator:
    """Turn a request's bearer token into the caller's context."""

    def __init__(
        self,
        bus: Bus,
        cache: TokenCache,
        keys: VerificationKeyCache,
        customers: KnownCustomers,
        kept: KeptReplies,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self._observe = observe
        self._bus = bus
        self.cache = cache
        self.keys = keys
        self.customers = customers
        self.kept = kept
        self._registering: SingleFlight[bytes, identity.VerifiedToken] = SingleFlight()
        self._headers: dict[str, dict[str, Any]] = {}  # parsed header segments (peek's memo)
        self.results: dict[VerifyResult, int] = {"cache_hit": 0, "verified": 0, "rejected": 0}

    def _settled(self, result: VerifyResult) -> None:
        """Count how a token check ended: the one place that knows (metrics go here).

        A check that could not finish (identity unreachable: 503/504) is none of these.
        """
        self.results[result] += 1
        if self._observe is not None:
            self._observe(result)

    async def verify(self, token: str, request_id: str) -> identity.VerifiedToken:
        """Return the token's principal, verifying it here and asking identity only about news."""
        digest = hashlib.sha256(token.encode()).digest()
        verified = self.cache.get(digest)
        if verified is not None:
            self._settled("cache_hit")
            return verified
        try:
            verified = await self._verify_uncached(token, digest, request_id)
        except TetherError as exc:
            if exc.status < 500:
                self._settled("rejected")
            raise
        self._settled("verified")
        return verified

    async def _verify_uncached(
        self, token: str, digest: bytes, request_id: str
    ) -> identity.VerifiedToken:
        since = self.cache.generation  # a drop meanwhile: use the answer, do not keep it
        keys, claims = await self._authenticate(
            token, token_rules.peek(token, self._headers), request_id
        )
        if claims.admin:
            verified = token_rules.verified_token(keys, claims)
        else:
            customer_id = claims.customer_id
            assert customer_id is not None  # a customer token always names one
            seen = claims_digest(claims)
            if self.customers.known(keys.workspace_id, customer_id, seen):
                verified = token_rules.verified_token(keys, claims)
            else:
                verified = await self._registering.run(
                    digest, lambda: self._register(token, customer_id, seen, request_id)
                )
        self.cache.put(digest, verified, since=since)
        return verified

    async def _authenticate(
        self, token: str, unverified: Unverified, request_id: str
    ) -> tuple[WorkspaceKeys, Claims]:
        """Check the token with its workspace's keys: kept ones, or fresh ones to refuse it."""
        header, payload = unverified.header, unverified.payload
        keys = self.keys.cached(unverified.issuer)
        if keys is not None:
            try:
                return keys, token_rules.verify(token, header, keys, datetime.now(UTC), payload)
            except Unauthenticated:
                pass  # the kept keys may predate a change: only fresh ones may refuse it
        keys = await self.keys.fetch(unverified.issuer, request_id)
        return keys, token_rules.verify(token, header, keys, datetime.now(UTC), payload)

    async def _register(
        self, token: str, customer_id: str, seen: bytes, request_id: str
    ) -> identity.VerifiedToken:
        """Have identity verify the token and register its customer; remember the claims."""
        since = self.customers.generation
        request = identity.TokenVerifyRequest(token=token, ctx=Context(request_id=request_id))
        answer = await idempotent(lambda: self._bus.call(identity.TOKEN_VERIFY, request))
        self.customers.remember(answer.workspace_id, customer_id, seen, since=since)
        self.kept.drop(answer.workspace_id, customer_object(customer_id))  # may have changed
        return answer

    def drop_workspace(self, workspace_id: UUID) -> None:
        """Forget all a workspace's tokens, keys and customers (``workspace.updated``)."""
        self.cache.drop_workspace(workspace_id)
        self.keys.drop_workspace(workspace_id)
        self.customers.drop_workspace(workspace_id)
        self.kept.drop_workspace(workspace_id)

    def drop_customer(self, workspace_id: UUID, customer_id: str) -> None:
        """Forget a customer's tokens and claims (``customer.archived``: refuse what comes)."""
        self.cache.drop_customer(workspace_id, customer_id)
        self.customer_changed(workspace_id, customer_id)

    def customer_changed(self, workspace_id: UUID, customer_id: str) -> None:
        """Forget a customer's claims and record (``customer.updated|restored``).

        The next token applies its own claims again, and the next read asks identity.
        """
        self.customers.drop_customer(workspace_id, customer_id)
        self.kept.drop(workspace_id, customer_object(customer_id))

    async def context(self, request: web.Request, need: str, request_id: str) -> Context:
        """Return the caller's context, refusing a caller the route does not admit."""
        token = bearer_token(request)
        if need == "public":
            return Context(request_id=request_id)
        if token is None:
            raise Unauthenticated(
                "this route needs an access token (Authorization: Bearer …)", code="token_missing"
            )
        verified = await self.verify(token, request_id)
        if need == "admin" and verified.principal != "admin":
            raise Forbidden("this route needs an admin token", code="admin_required")
        if need == "customer" and verified.principal != "customer":
            raise Forbidden("this route needs a customer token", code="customer_required")
        return Context(
            workspace_id=verified.workspace_id,
            principal=verified.principal,
            customer_id=verified.customer_id,
            request_id=request_id,
        )
