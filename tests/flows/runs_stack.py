"""A stack of its own for the run tests: flows runs with the options these tests need.

The session ``stack`` runs flows with the operator defaults; run tests need private URLs
allowed (the fake apps listen on loopback), short leases, a small queue limit and a quick
retention sweep. So they get a second stack: a fresh database on the session's PostgreSQL,
a NATS server of its own, identity, connections, instances and flows (with
:data:`RUN_OPTIONS`) in-process, and a gateway.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from libs.common.bus import Bus, connect
from libs.common.contracts import identity
from libs.common.infra import EmbeddedNats, free_port
from services.flows.app import create_app as flows_app
from services.flows.settings import FlowsOptions, FlowsSettings
from tests.conftest import (
    SYSTEM,
    AdminCalls,
    Infra,
    Stack,
    WorkspaceHandle,
    bearer,
    build_service,
    create_database,
    eventually,
    service_settings,
    start_gateway,
)
from tests.fakes.counting_app import CountingApp

RUN_OPTIONS = FlowsOptions(
    allow_private_urls=True,
    run_lease=3.0,
    run_poll_interval=0.1,
    run_queue_limit=12,
    run_workers=8,
    run_max_attempts=5,
    retry_inline_max=2.0,
    run_retention_interval=0.3,
    node_request_timeout=5.0,
    node_output_limit=20_000,
    max_nodes_per_run=50,
    run_max_seconds=4.0,
)
ENDED = ("completed", "failed", "stopped")


@pytest.fixture(scope="session")
async def runs_stack(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Run identity, connections, instances, flows (RUN_OPTIONS) and a gateway of their own."""
    nats = EmbeddedNats(tmp_path_factory.mktemp("runs-nats"))
    own = Infra(
        await create_database(infra.database_url, "tether_runs"), nats.start(), infra.master_keys
    )
    runners: list[web.AppRunner] = []
    port = free_port()
    try:
        apps = [
            build_service(name, own, public_url=f"http://127.0.0.1:{port}")
            for name in ("identity", "connections", "instances")
        ]
        apps.append(flows_app(FlowsSettings(service=service_settings(own), options=RUN_OPTIONS)))
        for app in apps:
            runner = web.AppRunner(app, handle_signals=False)
            await runner.setup()
            runners.append(runner)
        gateway, url = await start_gateway(own, port=port, max_body_bytes=64 * 1024)
        runners.append(gateway)
        nc = await connect(own.nats_url, "run-tests")
        try:
            yield Stack(own, url, Bus(nc), runners)
        finally:
            await nc.drain()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        nats.stop()


@dataclass
class RunsEnv(AdminCalls):
    """A fresh workspace on the runs stack, the ``counting`` integration at a counting app."""

    ws: WorkspaceHandle
    app: CountingApp
    http: aiohttp.ClientSession
    admin: dict[str, str]

    async def connect(self, customer_id: str) -> str:
        """Create a connection of ``customer_id`` to the counting app."""
        return await self.connection(customer_id, "counting", {"apiKey": "k"})

    async def instance(
        self,
        nodes: dict[str, Any],
        *,
        customer: str = "cust",
        trigger: dict[str, Any] | None = None,
        connection_id: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> str:
        """Create a flow of ``nodes`` and deploy it to a (new) connection; return the instance."""
        key = f"f-{secrets.token_hex(4)}"
        body: dict[str, Any] = {
            "key": key,
            "level": "universal",
            "name": key,
            "trigger": trigger or {"type": "api"},
            "nodes": nodes,
        }
        if parameters is not None:
            body["parameters"] = parameters
        status, flow = await self.request("POST", "/flows", body)
        assert status == 201, flow
        connection_id = connection_id or await self.connect(customer)
        status, instance = await self.request(
            "POST", "/flow-instances", {"flowId": flow["id"], "connectionId": connection_id}
        )
        assert status == 201, instance
        return str(instance["id"])

    async def start(
        self,
        instance_id: str,
        input: Any = None,
        headers: dict[str, str] | None = None,
        expect: int = 202,
    ) -> dict[str, Any]:
        """Start a run by the API; return the reply."""
        async with self.http.post(
            self.ws.url(f"/flow-instances/{instance_id}/run"),
            json={"input": input},
            headers={**self.admin, **(headers or {})},
        ) as resp:
            body = await resp.json()
            assert resp.status == expect, body
            return dict(body)

    async def run(self, run_id: str) -> dict[str, Any]:
        """Read a run."""
        status, run = await self.request("GET", f"/flow-runs/{run_id}")
        assert status == 200, run
        return dict(run)

    async def ended(self, run_id: str, timeout: float = 20) -> dict[str, Any]:
        """Wait until a run has ended; return it."""

        async def done() -> bool:
            return (await self.run(run_id))["state"] in ENDED

        await eventually(done, timeout=timeout)
        return await self.run(run_id)

    async def executions(self, run_id: str, key: str) -> list[dict[str, Any]]:
        """Return the executions of one node of a run."""
        status, page = await self.request("GET", f"/flow-runs/{run_id}/nodes/{key}")
        assert status == 200, page
        return list(page["items"])

    def url(self, path: str) -> str:
        """Return the counting app's URL of ``path``."""
        return self.app.url + path


@contextlib.asynccontextmanager
async def make_env(stack: Stack) -> AsyncIterator[RunsEnv]:
    """Yield a fresh workspace on ``stack`` with the counting integration at a counting app."""
    created = await stack.bus.call(
        identity.WORKSPACE_CREATE,
        identity.WorkspaceCreateRequest(name=f"runs-{secrets.token_hex(3)}", ctx=SYSTEM),
    )
    ws = WorkspaceHandle(str(created.id), created.key, created.secret, stack)
    async with CountingApp() as app, aiohttp.ClientSession() as http:
        env = RunsEnv(ws, app, http, bearer(await ws.admin_token()))
        status, body = await env.request("POST", "/integrations", app.integration())
        assert status == 201, body
        yield env


@pytest.fixture
async def runs_env(runs_stack: Stack) -> AsyncIterator[RunsEnv]:
    """A fresh workspace on the runs stack with the counting integration."""
    async with make_env(runs_stack) as env:
        yield env
