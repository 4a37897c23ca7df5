"""What app-event types and data sources share: checks, the secret seal, delete, fan-out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar
from uuid import UUID

import asyncpg
import jmespath
import jmespath.exceptions

from libs.common.contracts import instances as c
from libs.common.contracts.base import Context
from libs.common.crypto import Keyring, associated_data
from libs.common.db import Conn
from libs.common.errors import InvalidInput, NotFound
from services.instances import lifecycle
from services.instances.settings import InstancesOptions
from services.instances.store import connections, definitions
from services.instances.store.definitions import ElementTable

STATIC_SECRET_PURPOSE = "app-event-static-secret"


def check_paths(expressions: dict[str, str | None]) -> None:
    """Refuse a JMESPath expression that does not compile, naming its field."""
    for field, expression in expressions.items():
        if expression is None:
            continue
        try:
            jmespath.compile(expression)
        except jmespath.exceptions.JMESPathError as exc:
            raise InvalidInput(
                f"{field} is not a valid JMESPath expression: {exc}", details=[{"field": field}]
            ) from exc


def seal_static_secret(
    keyring: Keyring, workspace_id: UUID, key: str, secret: str | None
) -> str | None:
    """Return an app-event type's static signing secret sealed to its row (None: none)."""
    if not secret:
        return None
    return keyring.encrypt(
        secret.encode(), associated_data(workspace_id, key, STATIC_SECRET_PURPOSE)
    )


async def delete(
    pool: asyncpg.Pool[asyncpg.Record], table: ElementTable, ctx: Context, key: str
) -> c.Deleted:
    """Delete a definition (admins only); the next deployment removes what it made."""
    workspace_id = ctx.admin_workspace()
    async with pool.acquire() as conn:
        if not await definitions.delete_element(conn, table, workspace_id, key):
            raise NotFound(f"{key} not found")
    return c.Deleted(deleted=True)


async def fan_out(
    pool: asyncpg.Pool[asyncpg.Record],
    workspace_id: UUID,
    integration_key: str,
    reason: str,
    options: InstancesOptions,
) -> c.FanOut:
    """Start a deployment for every connected connection of an integration (one transaction)."""
    async with pool.acquire() as conn, conn.transaction():
        connected = await connections.list_connected(conn, workspace_id, integration_key)
        for known in connected:
            await lifecycle.start(conn, known, reason, options=options)
    return c.FanOut(deployments=len(connected), integration_key=integration_key)


class Definition(Protocol):
    """What a redeploy needs of a definition: the integration it belongs to."""

    @property
    def integration_key(self) -> str: ...


D = TypeVar("D")


async def find(
    pool: asyncpg.Pool[asyncpg.Record],
    ctx: Context,
    key: str,
    select: Callable[[Conn, UUID, str], Awaitable[D | None]],
    noun: str,
) -> D:
    """Return a definition of the caller's workspace (admins only); raise ``NotFound`` naming it."""
    workspace_id = ctx.admin_workspace()
    async with pool.acquire() as conn:
        record = await select(conn, workspace_id, key)
    if record is None:
        raise NotFound(f"{noun} {key} not found")
    return record


async def redeploy(
    pool: asyncpg.Pool[asyncpg.Record],
    ctx: Context,
    key: str,
    select: Callable[[Conn, UUID, str], Awaitable[Definition | None]],
    options: InstancesOptions,
    noun: str,
) -> c.FanOut:
    """Redeploy every connected connection of a definition's integration (admins only)."""
    record = await find(pool, ctx, key, select, noun)
    return await fan_out(
        pool, ctx.admin_workspace(), record.integration_key, f"definition:{key}", options
    )
