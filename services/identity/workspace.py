"""Answer operations on the caller's workspace: read, update, rotate the secret, test token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from libs.common.contracts import identity as c
from libs.common.crypto import Keyring
from libs.common.errors import InvalidInput, invalid_from_validation
from libs.common.outbox import emit
from services.identity import store, verification
from services.identity.customers import Customers
from services.identity.directory import WorkspaceDirectory, secret_aad
from services.identity.fields import TEST_CUSTOMER, check_schema, require_valid
from services.identity.workspaces import DEFAULT_TEST_CUSTOMER, ensure_test_customer, new_secret

TEST_TOKEN_TTL = 3600


class Workspace:
    """Handlers of the caller's own workspace (``tether.identity.workspace.*``, admins)."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        keyring: Keyring,
        directory: WorkspaceDirectory,
        customers: Customers,
    ) -> None:
        self._pool = pool
        self._keyring = keyring
        self._directory = directory
        self._customers = customers

    async def get(self, req: c.WorkspaceGetRequest) -> c.Workspace:
        """Return the caller's workspace (admins)."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            record = await store.get_workspace(conn, workspace_id)
        return c.Workspace.model_validate(record, from_attributes=True)

    async def update(self, req: c.WorkspaceUpdateRequest) -> c.Workspace:
        """Change name, settings (merged key by key) or public keys; tokens re-verify after.

        A settings member sent as null goes back to its default (JSON Merge Patch); a new
        test customer is created with the settings, in the same transaction.
        """
        workspace_id = req.ctx.admin_workspace()
        if req.public_keys is not None:
            _check_public_keys(req.public_keys)
        async with self._pool.acquire() as conn, conn.transaction():
            current = await store.get_workspace(conn, workspace_id, for_update=True)
            settings: c.WorkspaceSettings | None = None
            changes = [k for k in ("name", "public_keys") if getattr(req, k) is not None]
            if req.settings is not None:
                named = req.settings.model_fields_set
                merged = _merge_settings(current.settings, req.settings)
                if merged.customer_fields_schema is not None:
                    check_schema(merged.customer_fields_schema)
                settings = merged
                changes += [f"settings.{k}" for k in sorted(named)]
                if "test_customer" in named:
                    await ensure_test_customer(self._customers, conn, workspace_id, merged)
            record = await store.update_workspace(
                conn, workspace_id, name=req.name, settings=settings, public_keys=req.public_keys
            )
            await emit(
                conn,
                c.WORKSPACE_UPDATED,
                c.WorkspaceEvent(workspace_id=workspace_id, changes=changes),
            )
        self._directory.forget(workspace_id)
        return c.Workspace.model_validate(record, from_attributes=True)

    async def rotate_secret(self, req: c.SecretRotateRequest) -> c.SecretRotated:
        """Replace the signing secret; the old one verifies for the workspace's grace period."""
        workspace_id = req.ctx.admin_workspace()
        secret = new_secret()
        sealed = self._keyring.encrypt(secret.encode(), secret_aad(workspace_id))
        async with self._pool.acquire() as conn, conn.transaction():
            current = await store.get_workspace(conn, workspace_id, for_update=True)
            record = await store.rotate_secret(
                conn, workspace_id, sealed, current.settings.secret_grace
            )
            await emit(
                conn,
                c.WORKSPACE_UPDATED,
                c.WorkspaceEvent(workspace_id=workspace_id, changes=["secret"]),
            )
        self._directory.forget(workspace_id)
        assert record.previous_secret_expires_at is not None
        return c.SecretRotated(
            secret=secret, previous_secret_expires_at=record.previous_secret_expires_at
        )

    async def test_customer_token(self, req: c.TestCustomerTokenRequest) -> c.TestCustomerToken:
        """Mint a one-hour token for the configured test customer, creating the customer if needed.

        The test customer's fields are checked against the current schema each time (they
        stand for what the workspace's backend would send); a failure names the setting.
        """
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            record = await store.get_workspace(conn, workspace_id)
        keys = await self._directory.get(record.key)
        assert keys is not None
        test = record.settings.test_customer or DEFAULT_TEST_CUSTOMER
        schema = record.settings.customer_fields_schema
        require_valid(schema, test.fields, TEST_CUSTOMER)
        now = datetime.now(UTC)
        token, expires_at = verification.mint(
            record.key,
            keys.secrets[0],
            now=now,
            ttl=TEST_TOKEN_TTL,
            customer_id=test.id,
            name=test.name,
            fields=test.fields,
        )
        await self._customers.sync(
            workspace_id, schema, test.id, test.name, test.fields, TEST_CUSTOMER
        )
        customer = await self._customers.get(c.CustomerGetRequest(id=test.id, ctx=req.ctx))
        return c.TestCustomerToken(token=token, expires_at=expires_at, customer=customer)


def _merge_settings(
    current: c.WorkspaceSettings, patch: c.WorkspaceSettingsPatch
) -> c.WorkspaceSettings:
    """Apply a settings patch: members it names are replaced, a null one takes its default."""
    named = patch.model_fields_set
    given = patch.model_dump(include=named, exclude_none=True)
    try:
        return c.WorkspaceSettings.model_validate({**current.model_dump(exclude=named), **given})
    except ValidationError as exc:
        raise invalid_from_validation(exc, message="the settings are not valid") from exc


def _check_public_keys(keys: list[c.PublicKey]) -> None:
    """Refuse a public key that does not parse for its algorithm (or is a private key)."""
    for i, pk in enumerate(keys):
        if "PRIVATE KEY" in pk.pem:
            raise InvalidInput(
                "send the public key, never the private one",
                details=[{"field": f"publicKeys.{i}.pem"}],
            )
        try:
            verification.load_public_keys([pk])
        except Exception as exc:  # PyJWT raises several types for unparsable keys
            raise InvalidInput(
                f"publicKeys.{i} is not a valid {pk.alg} public key",
                details=[{"field": f"publicKeys.{i}.pem"}],
            ) from exc
