"""Operator actions over the bus and the database: migrate, bootstrap, workspaces, tokens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.common.bus import Bus, connect
from libs.common.config import SERVICES
from libs.common.contracts import identity
from libs.common.contracts.base import Context
from libs.common.db import migrate
from libs.common.errors import NotFound

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
SYSTEM = Context(principal="system", request_id="cli")


async def migrate_all(database_url: str) -> dict[str, list[str]]:
    """Apply every service's migrations; return what each applied."""
    return {
        name: await migrate(database_url, name, SERVICES_DIR / name / "migrations")
        for name in SERVICES
    }


async def create_workspace(nats_url: str, name: str) -> identity.WorkspaceCreated:
    """Create a workspace through identity."""
    nc = await connect(nats_url, "tether-cli")
    try:
        return await Bus(nc).call(
            identity.WORKSPACE_CREATE, identity.WorkspaceCreateRequest(name=name, ctx=SYSTEM)
        )
    finally:
        await nc.close()


async def mint_token(nats_url: str, request: identity.TokenMintRequest) -> identity.MintedToken:
    """Mint a development token through identity."""
    nc = await connect(nats_url, "tether-cli")
    try:
        return await Bus(nc).call(identity.TOKEN_MINT, request)
    finally:
        await nc.close()


@dataclass(frozen=True)
class Bootstrap:
    """The default workspace and fresh tokens for it."""

    workspace_key: str
    admin_token: str
    customer_token: str
    console_code: str


async def bootstrap(nats_url: str, key: str | None, customer_id: str) -> Bootstrap:
    """Create the default workspace unless ``key`` still names one; mint tokens for it."""
    nc = await connect(nats_url, "tether-cli")
    bus = Bus(nc)
    try:
        if key is not None:
            try:
                await bus.call(
                    identity.WORKSPACE_FIND, identity.WorkspaceFindRequest(key=key, ctx=SYSTEM)
                )
            except NotFound:
                key = None  # the database was reset; make a new default workspace
        if key is None:
            created = await bus.call(
                identity.WORKSPACE_CREATE,
                identity.WorkspaceCreateRequest(name="Default", ctx=SYSTEM),
            )
            key = created.key
        admin = await bus.call(
            identity.TOKEN_MINT,
            identity.TokenMintRequest(workspace_key=key, admin=True, ttl=24 * 3600, ctx=SYSTEM),
        )
        customer = await bus.call(
            identity.TOKEN_MINT,
            identity.TokenMintRequest(
                workspace_key=key,
                customer_id=customer_id,
                name="Test Customer",
                ttl=24 * 3600,
                ctx=SYSTEM,
            ),
        )
        code = await bus.call(
            identity.CONSOLE_CODE_CREATE,
            identity.ConsoleCodeCreateRequest(workspace_key=key, ctx=SYSTEM),
        )
        return Bootstrap(key, admin.token, customer.token, code.code)
    finally:
        await nc.close()


async def console_code(nats_url: str, workspace_key: str) -> identity.ConsoleCode:
    """Make a one-time console sign-in code."""
    nc = await connect(nats_url, "tether-cli")
    try:
        return await Bus(nc).call(
            identity.CONSOLE_CODE_CREATE,
            identity.ConsoleCodeCreateRequest(workspace_key=workspace_key, ctx=SYSTEM),
        )
    finally:
        await nc.close()
