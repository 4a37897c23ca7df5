"""Authenticate callers through identity, verifying each token once (bounded cache)."""

from __future__ import annotations

import hashlib
import time
from uuid import UUID

from aiohttp import web

from libs.common.bus import Bus
from libs.common.cache import TtlCache
from libs.common.contracts import identity
from libs.common.contracts.base import Context
from libs.common.errors import Forbidden, Unauthenticated
from libs.common.singleflight import SingleFlight
from services.gateway.retry import idempotent


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

    def __init__(self, bus: Bus, cache: TokenCache) -> None:
        self._bus = bus
        self.cache = cache
        self._verifying: SingleFlight[bytes, identity.VerifiedToken] = SingleFlight()

    async def verify(self, token: str, request_id: str) -> identity.VerifiedToken:
        """Return the token's principal, asking identity only on a cache miss.

        Concurrent first requests with the same token share one verification.
        """
        digest = hashlib.sha256(token.encode()).digest()
        verified = self.cache.get(digest)
        if verified is not None:
            return verified

        async def ask_identity() -> identity.VerifiedToken:
            since = self.cache.generation
            request = identity.TokenVerifyRequest(token=token, ctx=Context(request_id=request_id))
            answer = await idempotent(lambda: self._bus.call(identity.TOKEN_VERIFY, request))
            self.cache.put(digest, answer, since=since)
            return answer

        return await self._verifying.run(digest, ask_identity)

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
