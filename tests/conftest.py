"""Session infrastructure: real PostgreSQL and NATS, every service and the gateway in-process.

PostgreSQL and NATS are throw-away embedded servers on free ports, unless the
environment names real ones (``TETHER_DATABASE_URL``, ``TETHER_NATS_URL``); then a fresh
database is created in that server for the session. Each test gets its own workspace,
so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from libs.common.bus import Bus, connect
from libs.common.config import (
    SERVICES,
    BusSettings,
    CryptoSettings,
    DatabaseSettings,
    GatewaySettings,
    LogSettings,
    RuntimeSettings,
)
from libs.common.contracts import identity
from libs.common.contracts.base import Context, Operation
from libs.common.crypto import generate_master_key
from libs.common.infra import EmbeddedNats, EmbeddedPostgres, free_port
from libs.common.logging import configure_logging
from libs.common.runtime import ServiceSettings

SYSTEM = Context(principal="system", request_id="test")


@dataclass(frozen=True)
class Infra:
    """Where the session's PostgreSQL and NATS are."""

    database_url: str
    nats_url: str
    master_keys: str


async def create_database(server_url: str, prefix: str = "tether_test") -> str:
    """Create an empty database on the server of ``server_url`` and return its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """Start (or borrow) PostgreSQL and NATS for the whole session."""
    configure_logging("test", LogSettings(log_level="info", log_format="json"), cache=False)
    base = tmp_path_factory.mktemp("infra")
    pg = nats = None
    server_url = os.environ.get("TETHER_DATABASE_URL")
    if not server_url:
        pg = EmbeddedPostgres(base / "pg", durable=False)
        server_url = pg.start()
    nats_url = os.environ.get("TETHER_NATS_URL")
    if not nats_url:
        nats = EmbeddedNats(base / "nats")
        nats_url = nats.start()
    try:
        database_url = asyncio.run(create_database(server_url))
        yield Infra(database_url, nats_url, generate_master_key("test1"))
    finally:
        if nats:
            nats.stop()
        if pg:
            pg.stop()


def service_settings(infra: Infra, **runtime: Any) -> ServiceSettings:
    """Return settings for an in-process service against the session's infrastructure."""
    return ServiceSettings(
        db=DatabaseSettings(database_url=infra.database_url, db_pool_max=10),
        bus=BusSettings(nats_url=infra.nats_url),
        log=LogSettings(log_level="info", log_format="json"),
        runtime=RuntimeSettings(outbox_sweep_interval=0.2, shutdown_grace=2.0, **runtime),
    )


def build_service(
    name: str, infra: Infra, public_url: str = "http://127.0.0.1:8080"
) -> web.Application:
    """Build one back-end service's app the way its ``__main__`` does."""
    settings = service_settings(infra)
    if name == "connections":
        from services.connections.app import create_app as connections_app
        from services.connections.settings import ConnectionsOptions, ConnectionsSettings

        return connections_app(
            ConnectionsSettings(
                service=settings,
                crypto=CryptoSettings(master_keys=infra.master_keys),
                options=ConnectionsOptions(
                    public_url=public_url,
                    refresh_poll_interval=0.1,
                    refresh_backoff_base=0.2,
                    refresh_max_failures=3,
                    http_timeout=5,
                ),
            )
        )
    if name == "instances":
        from services.instances.app import create_app as instances_app
        from services.instances.settings import InstancesOptions, InstancesSettings

        return instances_app(
            InstancesSettings(
                service=settings,
                crypto=CryptoSettings(master_keys=infra.master_keys),
                options=InstancesOptions(
                    public_url=public_url,
                    deploy_poll_interval=0.1,
                    deploy_workers=4,
                    step_backoff_base=0.1,
                    step_backoff_cap=1.0,
                    step_max_attempts=4,
                    step_lease=10,
                    app_call_timeout=10,
                ),
            )
        )
    if name == "notifications":
        from services.notifications.app import create_app as notifications_app
        from services.notifications.settings import NotificationsOptions, NotificationsSettings

        return notifications_app(
            NotificationsSettings(
                service=settings,
                crypto=CryptoSettings(master_keys=infra.master_keys),
                options=NotificationsOptions(
                    allow_private_urls=True,
                    delivery_workers=8,
                    endpoint_concurrency=4,
                    delivery_schedule=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
                    delivery_poll_interval=0.1,
                    delivery_timeout=3.0,
                    delivery_lease=10.0,
                ),
            )
        )
    if name == "flows":
        from services.flows.app import create_app as flows_app
        from services.flows.settings import FlowsOptions, FlowsSettings

        return flows_app(
            FlowsSettings(
                service=settings,
                options=FlowsOptions(
                    allow_private_urls=True, run_lease=5.0, run_poll_interval=0.1, run_workers=8
                ),
            )
        )
    if name == "identity":
        from services.identity.app import create_app as identity_app
        from services.identity.settings import IdentitySettings

        return identity_app(
            IdentitySettings(service=settings, crypto=CryptoSettings(master_keys=infra.master_keys))
        )
    module = __import__(f"services.{name}.app", fromlist=["create_app"])
    app: web.Application = module.create_app(settings)
    return app


@dataclass
class Stack:
    """The running in-process stack."""

    infra: Infra
    gateway_url: str
    bus: Bus
    runners: list[web.AppRunner]

    async def pool(self, schema: str) -> asyncpg.Pool[Any]:
        """Return a pool on one service's schema (for assertions on stored data)."""
        from libs.common.db import create_pool

        return await create_pool(self.infra.database_url, schema, min_size=1, max_size=2)


async def served(stack: Stack, op: Operation[Any, Any]) -> int:
    """Return how many ``op`` requests the session's replica of its service has handled."""
    from libs.common.runtime import HOST

    host = stack.runners[SERVICES.index(op.service)].app[HOST]
    msg = await stack.bus.nc.request(f"$SRV.STATS.{op.service}.{host.instance_id}", b"", timeout=5)
    endpoints = json.loads(msg.data)["endpoints"]
    return int(next(e["num_requests"] for e in endpoints if e["subject"] == op.subject))


async def start_gateway(
    infra: Infra, routes: tuple[Any, ...] | None = None, port: int | None = None, **http: Any
) -> tuple[web.AppRunner, str]:
    """Start a gateway on a free port; return its runner and URL."""
    from services.gateway.app import GatewayConfig, create_app
    from services.gateway.routes import ROUTES

    port = port or free_port()
    config = GatewayConfig(
        http=GatewaySettings(gateway_port=port, **http),
        bus=BusSettings(nats_url=infra.nats_url),
        log=LogSettings(log_level="info"),
    )
    runner = web.AppRunner(create_app(config, routes or ROUTES), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@asynccontextmanager
async def another_gateway(infra: Infra, **http: Any) -> AsyncIterator[tuple[web.AppRunner, str]]:
    """Run another gateway replica on ``infra``'s NATS (caches of its own) for the block."""
    runner, url = await start_gateway(infra, **http)
    try:
        yield runner, url
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
async def stack(infra: Infra) -> AsyncIterator[Stack]:
    """Run every service and the gateway in this process for the session."""
    runners: list[web.AppRunner] = []
    port = free_port()
    for name in SERVICES:
        app = build_service(name, infra, public_url=f"http://127.0.0.1:{port}")
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        runners.append(runner)
    gateway, url = await start_gateway(infra, port=port, max_body_bytes=64 * 1024)
    runners.append(gateway)
    nc = await connect(infra.nats_url, "tests")
    try:
        yield Stack(infra, url, Bus(nc), runners)
    finally:
        await nc.drain()
        for runner in reversed(runners):
            await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for the test."""
    async with aiohttp.ClientSession() as session:
        yield session


@dataclass(frozen=True)
class WorkspaceHandle:
    """A fresh workspace for one test, with ways to get tokens for it."""

    id: str
    key: str
    secret: str
    stack: Stack

    async def admin_token(self) -> str:
        """Return an admin token."""
        return await self._mint(admin=True)

    async def customer_token(self, customer_id: str, **claims: Any) -> str:
        """Return a token for ``customer_id``."""
        return await self._mint(customer_id=customer_id, **claims)

    async def _mint(self, **kw: Any) -> str:
        minted = await self.stack.bus.call(
            identity.TOKEN_MINT, identity.TokenMintRequest(workspace_key=self.key, ctx=SYSTEM, **kw)
        )
        return minted.token

    def url(self, path: str) -> str:
        """Return the gateway URL of ``path``."""
        return self.stack.gateway_url + path


WorkspaceFactory = Callable[[], Awaitable[WorkspaceHandle]]


async def as_admin(
    http: aiohttp.ClientSession, ws: WorkspaceHandle, method: str, path: str, body: Any = None
) -> Any:
    """Call the gateway as ``ws``'s admin; assert it succeeded and return the JSON reply."""
    async with http.request(
        method, ws.url(path), json=body, headers=bearer(await ws.admin_token())
    ) as resp:
        assert resp.status < 300, await resp.text()
        return await resp.json()


class AdminCalls:
    """Call the gateway for one workspace as its admin (a base of the tests' env dataclasses)."""

    ws: WorkspaceHandle
    http: aiohttp.ClientSession
    admin: dict[str, str]

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Call the gateway (as the admin unless ``headers`` say otherwise)."""
        async with self.http.request(
            method, self.ws.url(path), json=body, headers=headers or self.admin
        ) as resp:
            return resp.status, await resp.json()

    async def connection(
        self, customer_id: str, integration_key: str, credentials: dict[str, Any]
    ) -> str:
        """Create a connection of ``customer_id`` by importing ``credentials``; return its id."""
        body = {
            "customerId": customer_id,
            "integrationKey": integration_key,
            "credentials": credentials,
            "allowMultiple": True,
        }
        status, created = await self.request("POST", "/connections", body)
        assert status == 201, created
        return str(created["id"])


@pytest.fixture
async def make_workspace(stack: Stack) -> WorkspaceFactory:
    """Return a factory of fresh workspaces."""

    async def make() -> WorkspaceHandle:
        created = await stack.bus.call(
            identity.WORKSPACE_CREATE,
            identity.WorkspaceCreateRequest(name=f"test-{secrets.token_hex(3)}", ctx=SYSTEM),
        )
        return WorkspaceHandle(str(created.id), created.key, created.secret, stack)

    return make


@pytest.fixture
async def workspace(make_workspace: WorkspaceFactory) -> WorkspaceHandle:
    """A fresh workspace for this test."""
    return await make_workspace()


async def customer_events(stack: Stack, ws: WorkspaceHandle, kind: str, customer_id: str) -> int:
    """Count identity's outbox events ``customer.<kind>`` about ``customer_id`` in ``ws``."""
    pool = await stack.pool("identity")
    try:
        return int(
            await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE workspace_id = $1 AND subject = $2"
                " AND payload->>'customerId' = $3",
                ws.id,
                f"tether.evt.identity.customer.{kind}",
                customer_id,
            )
        )
    finally:
        await pool.close()


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true, polling; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


ROOT = Path(__file__).resolve().parents[1]


async def run_cli(*argv: str) -> tuple[int, str]:
    """Run ``tether`` in its own process (it configures logging for the whole process)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "libs.cli",
        *argv,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def expire_token(stack: Stack, connection_id: str) -> None:
    """Make Tether's stored token of a connection due and expired (as time would)."""
    pool = await stack.pool("connections")
    try:
        await pool.execute(
            "UPDATE connections SET expires_at = now() - interval '1 second',"
            " refresh_due_at = now() - interval '1 second' WHERE id = $1",
            connection_id,
        )
    finally:
        await pool.close()
