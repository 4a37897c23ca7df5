"""Answer token operations: verify (for the gateway) and mint (for operators)."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.contracts import identity as c
from libs.common.errors import InvalidInput, NotFound, Unauthenticated
from services.identity import tokens
from services.identity.customers import Customers
from services.identity.directory import WorkspaceDirectory


class Access:
    """Token handlers."""

    def __init__(self, directory: WorkspaceDirectory, customers: Customers) -> None:
        self._directory = directory
        self._customers = customers

    async def verify(self, req: c.TokenVerifyRequest) -> c.VerifiedToken:
        """Verify a token, create or update the customer it names, return its principal."""
        unverified = tokens.peek(req.token)
        keys = await self._directory.get(unverified.issuer)
        if keys is None:
            raise Unauthenticated(
                "no workspace has this token's issuer", code="token_unknown_issuer"
            )
        claims = tokens.verify(req.token, unverified.header, keys, datetime.now(UTC))
        if not claims.admin:
            await self._customers.sync_from_token(
                keys.workspace_id, keys.settings.customer_fields_schema, claims
            )
        return c.VerifiedToken(
            workspace_id=keys.workspace_id,
            workspace_key=keys.workspace_key,
            principal="admin" if claims.admin else "customer",
            customer_id=claims.customer_id,
            expires_at=claims.expires_at,
            cache_until=claims.trusted_until,
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
        token, expires_at = tokens.mint(
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
