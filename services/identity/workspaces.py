"""Answer operators' workspace operations: create one, find one by key."""

from __future__ import annotations

import secrets
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from libs.common.contracts import identity as c
from libs.common.crypto import Keyring
from libs.common.db import Conn
from libs.common.errors import NotFound
from libs.common.outbox import emit
from services.identity import store
from services.identity.customers import Customers
from services.identity.directory import secret_aad
from services.identity.fields import TEST_CUSTOMER

DEFAULT_TEST_CUSTOMER = c.TestCustomer(id="test-customer", name="Test Customer")


def new_workspace_key() -> str:
    """Return a fresh public workspace key (goes in tokens' ``iss``)."""
    return f"ws_{secrets.token_urlsafe(12)}"


def new_secret() -> str:
    """Return a fresh HS256 signing secret (256 bits)."""
    return secrets.token_urlsafe(32)


async def ensure_test_customer(
    customers: Customers, conn: Conn, workspace_id: UUID, settings: c.WorkspaceSettings
) -> None:
    """Create the settings' test customer in the caller's transaction unless it exists."""
    test = settings.test_customer or DEFAULT_TEST_CUSTOMER
    schema = settings.customer_fields_schema
    await customers.create_in(
        conn, workspace_id, schema, test.id, test.name, test.fields, TEST_CUSTOMER
    )


class Workspaces:
    """Operators' workspace handlers (``tether.identity.workspaces.*``)."""

    def __init__(self, pool: asyncpg.Pool[Any], keyring: Keyring, customers: Customers) -> None:
        self._pool = pool
        self._keyring = keyring
        self._customers = customers

    async def create(self, req: c.WorkspaceCreateRequest) -> c.WorkspaceCreated:
        """Create a workspace with a new key and secret, and its test customer (operators only)."""
        req.ctx.require_system()
        workspace_id = uuid4()
        secret = new_secret()
        sealed = self._keyring.encrypt(secret.encode(), secret_aad(workspace_id))
        async with self._pool.acquire() as conn, conn.transaction():
            record = await store.insert_workspace(
                conn, workspace_id, new_workspace_key(), req.name, sealed
            )
            await emit(conn, c.WORKSPACE_CREATED, c.WorkspaceEvent(workspace_id=record.id))
            await ensure_test_customer(self._customers, conn, record.id, record.settings)
        return c.WorkspaceCreated(id=record.id, key=record.key, name=record.name, secret=secret)

    async def find(self, req: c.WorkspaceFindRequest) -> c.Workspace:
        """Return a workspace by key (operators only)."""
        req.ctx.require_system()
        async with self._pool.acquire() as conn:
            record = await store.select_workspace_by_key(conn, req.key)
        if record is None:
            raise NotFound(f"no workspace has the key {req.key}")
        return c.Workspace.model_validate(record, from_attributes=True)
