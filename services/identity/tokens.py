"""Answer token operations: verify (for the gateway) and mint (for operators).

Verifying is authentication in two named steps (the gateway's route table describes
where it sits in a request): :meth:`Tokens.authenticate` checks the token and reads its
claims, a pure read; :meth:`Tokens.register_customer` then keeps the customer the token
names in step with it, the one write on the way in (created on first sight, name and
fields applied when they changed; a known customer with nothing new costs no query).
The gateway caches a verified token, so both run once per token, not once per request.
"""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.contracts import identity as c
from libs.common.errors import InvalidInput, NotFound, Unauthenticated
from services.identity import verification
from services.identity.customers import Customers
from services.identity.directory import WorkspaceDirectory
from services.identity.verification import Claims, WorkspaceKeys


class Tokens:
    """Token handlers."""

    def __init__(self, directory: WorkspaceDirectory, customers: Customers) -> None:
        self._directory = directory
        self._customers = customers

    async def verify(self, req: c.TokenVerifyRequest) -> c.VerifiedToken:
        """Authenticate a token, register the customer it names, return its principal."""
        keys, claims = await self.authenticate(req.token)
        if not claims.admin:
            await self.register_customer(keys, claims)
        return c.VerifiedToken(
            workspace_id=keys.workspace_id,
            workspace_key=keys.workspace_key,
            principal="admin" if claims.admin else "customer",
            customer_id=claims.customer_id,
            expires_at=claims.expires_at,
            cache_until=claims.trusted_until,
        )

    async def authenticate(self, token: str) -> tuple[WorkspaceKeys, Claims]:
        """Check a token against its workspace's keys; return the keys and what it says."""
        unverified = verification.peek(token)
        keys = await self._directory.get(unverified.issuer)
        if keys is None:
            raise Unauthenticated(
                "no workspace has this token's issuer", code="token_unknown_issuer"
            )
        return keys, verification.verify(token, unverified.header, keys, datetime.now(UTC))

    async def register_customer(self, keys: WorkspaceKeys, claims: Claims) -> None:
        """Create the customer a verified token names, or apply its changed name and fields.

        An archived customer is refused (403 ``customer_archived``): their tokens stop working.
        """
        assert claims.customer_id is not None  # a customer token always names one
        await self._customers.sync(
            keys.workspace_id,
            keys.settings.customer_fields_schema,
            claims.customer_id,
            claims.name,
            claims.fields,
        )

    async def mint(self, req: c.TokenMintRequest) -> c.MintedToken:
        """Sign a development token with the workspace's current secret (operators only)."""
        req.ctx.require_system()
        keys = await self._directory.get(req.workspace_key)
        if keys is None:
            raise NotFound(f"no workspace has the key {req.workspace_key}")
        if not req.admin and not req.customer_id:
            raise InvalidInput(
                "a customer token needs a customer id", details=[{"field": "customerId"}]
            )
        token, expires_at = verification.mint(
            keys.workspace_key,
            keys.secrets[0],
            now=datetime.now(UTC),
            ttl=req.ttl,
            customer_id=req.customer_id,
            admin=req.admin,
            name=req.name,
            fields=req.fields,
        )
        return c.MintedToken(token=token, expires_at=expires_at)
