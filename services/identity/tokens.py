"""Answer token operations: verify and hand out verification keys (services), mint (operators).

Verifying is authentication in two named steps (the gateway's route table describes
where it sits in a request): :meth:`Tokens.authenticate` checks the token and reads its
claims, a pure read; :meth:`Tokens.register_customer` then keeps the customer the token
names in step with it, the one write on the way in (created on first sight, name and
fields applied when they changed; a known customer with nothing new costs no query).

The rules are :mod:`libs.common.token_rules`, shared with the gateway: it verifies tokens
itself with the keys :meth:`Tokens.verification_keys` gives it, and calls
:meth:`Tokens.verify` only when a customer's claims are new to it (so that
:meth:`Tokens.register_customer` runs exactly when it may have something to do).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr

from libs.common import token_rules
from libs.common.contracts import identity as c
from libs.common.errors import InvalidInput, NotFound
from libs.common.token_rules import Claims, WorkspaceKeys
from services.identity import verification
from services.identity.customers import Customers
from services.identity.directory import WorkspaceDirectory


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
        return token_rules.verified_token(keys, claims)

    async def _keys(self, workspace_key: str) -> WorkspaceKeys | None:
        """Return the keys of the workspace ``workspace_key`` names, if there is one."""
        if not token_rules.issuer_can_exist(workspace_key):
            return None
        return await self._directory.get(workspace_key)

    async def authenticate(self, token: str) -> tuple[WorkspaceKeys, Claims]:
        """Check a token against its workspace's keys; return the keys and what it says."""
        unverified = token_rules.peek(token)
        keys = await self._keys(unverified.issuer)
        if keys is None:
            raise token_rules.unknown_issuer()
        now = datetime.now(UTC)
        return keys, token_rules.verify(token, unverified.header, keys, now, unverified.payload)

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

    async def verification_keys(self, req: c.VerificationKeysRequest) -> c.VerificationKeys:
        """Return the keys that verify a workspace's tokens, secrets included (services only).

        The same keys :meth:`authenticate` uses at this moment: the previous secret only
        while its grace lasts. 404 when no workspace has the key.
        """
        req.ctx.require_system()
        keys = await self._keys(req.workspace_key)
        if keys is None:
            raise NotFound("no workspace has this key", code="workspace_not_found")
        return c.VerificationKeys(
            workspace_id=keys.workspace_id,
            workspace_key=keys.workspace_key,
            settings=keys.settings,
            secrets=[SecretStr(secret) for secret in keys.secrets],
            public_keys=[pk for pk, _ in keys.public_keys],
            previous_secret_expires_at=keys.previous_secret_expires_at,
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
