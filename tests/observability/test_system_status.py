"""``GET /system/status`` and ``tether status --system``: every service, its replicas, the
checks of the caller's workspace only, and a stopped service reported down (200, not 5xx)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from libs.common.bus import Bus, connect
from libs.common.config import SERVICES
from libs.common.contracts import identity
from libs.common.contracts.system import (
    ConsumerLag,
    DeadLetterCount,
    JobQueue,
    OutboxBacklog,
    StatusCheck,
    SystemStatus,
)
from libs.common.dead_letters import Failure, record_failure
from libs.common.infra import EmbeddedNats
from libs.common.runtime import tether_version
from libs.common.system_status import (
    CONSUMER_PENDING_LIMIT,
    JOB_LAG_LIMIT,
    OUTBOX_LAG_LIMIT,
    problems_of,
)
from tests.conftest import (
    ROOT,
    SYSTEM,
    Infra,
    Stack,
    WorkspaceFactory,
    WorkspaceHandle,
    bearer,
    build_service,
    create_database,
    eventually,
    expire_token,
    run_cli,
    start_gateway,
)
from tests.connections.conftest import Fake, oauth_spec
from tests.fakes.oauth_provider import FakeProvider

CHECKS = {
    "identity": [],
    "connections": ["connections_in_error", "token_expiry"],
    "instances": ["deployments_in_error", "action_runs_failed", "sync_passes_failed"],
    "flows": ["runs_failed", "runs_stuck"],
    "notifications": ["endpoints_disabled", "endpoints_failing", "deliveries_failed"],
}


async def _status(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], query: str = ""
) -> tuple[int, Any]:
    async with http.get(f"{url}/system/status{query}", headers=headers) as resp:
        return resp.status, await resp.json()


async def _admin_status(http: aiohttp.ClientSession, ws: WorkspaceHandle) -> dict[str, Any]:
    status, body = await _status(http, ws.stack.gateway_url, bearer(await ws.admin_token()))
    assert status == 200, body
    SystemStatus.model_validate(body)  # the document is what the contract says
    return dict(body)


async def test_system_status_lists_every_service_with_replicas_and_versions(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    doc = await _admin_status(http, workspace)
    assert doc["workspaceId"] == workspace.id
    assert list(doc["services"]) == list(SERVICES)
    assert doc["ok"] == (doc["problems"] == [])
    for name, service in doc["services"].items():
        assert service["error"] is None, (name, service)
        status = service["status"]
        assert status["service"] == name
        assert len(service["replicas"]) >= 1
        assert status["instance"] in {r["id"] for r in service["replicas"]}
        assert service["versions"] == [tether_version()]
        assert status["version"] == tether_version()
        assert status["outbox"]["pending"] >= 0
        assert status["deadLetters"] == {"givenUp": 0, "retrying": 0}  # a fresh workspace
        checks = {c["key"]: c for c in status["checks"]}
        assert list(checks) == CHECKS[name]
        assert all(c["ok"] and c["count"] == 0 and c["sample"] == [] for c in checks.values())
        if name in ("instances", "flows", "notifications"):  # their durables, as JetStream has them
            assert status["consumers"], name
            assert all(c["consumer"].startswith(f"{name}-") for c in status["consumers"])
        if name == "instances":  # the inbound webhooks' work queue is a stream of its own
            assert "instances-inbound-webhooks" in {c["consumer"] for c in status["consumers"]}
    # Some replica describes its requests (nats.micro's $SRV.STATS): identity served tokens.
    assert any(r.get("requests") for r in doc["services"]["identity"]["replicas"])


async def test_system_status_is_in_the_openapi_document(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.get(stack.gateway_url + "/openapi.json") as resp:
        doc = await resp.json()
    op = doc["paths"]["/system/status"]["get"]
    assert op["x-tether-auth"] == "admin"
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SystemStatus"
    }
    assert "ServiceOverview" in doc["components"]["schemas"]
    assert "Error" in doc["components"]["schemas"]  # the routes' components are all still there
    assert "/customers" in doc["paths"]


async def test_system_status_refuses_customers_and_unknown_parameters(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    url = workspace.stack.gateway_url
    status, body = await _status(http, url, bearer(await workspace.customer_token("c-1")))
    assert (status, body["error"]["code"]) == (403, "admin_required")
    status, body = await _status(http, url, {})
    assert (status, body["error"]["code"]) == (401, "token_missing")
    admin = bearer(await workspace.admin_token())
    status, body = await _status(http, url, admin, "?window=5")
    assert status == 422, body
    assert [d["field"] for d in body["error"]["details"]] == ["window"]
    status, body = await _status(http, url, admin, "?ctx=%7B%7D")
    assert (status, body["error"]["details"]) == (422, [{"field": "ctx"}])
    async with http.post(f"{url}/system/status", headers=admin, json={}) as resp:
        assert resp.status == 405


@pytest.fixture
async def oauth(workspace: WorkspaceHandle, http: aiohttp.ClientSession) -> AsyncIterator[Fake]:
    """A workspace with an OAuth integration ``fake`` at a fake provider (as tests/connections)."""
    async with FakeProvider(client_id="fake-client", client_secret="fake-secret-123") as provider:
        admin = bearer(await workspace.admin_token())
        async with http.post(
            workspace.url("/integrations"),
            json={"key": "fake", **oauth_spec(provider)},
            headers=admin,
        ) as resp:
            assert resp.status == 201, await resp.text()
        yield Fake(workspace, provider, http, admin)


def _check(doc: dict[str, Any], service: str, key: str) -> dict[str, Any]:
    checks = doc["services"][service]["status"]["checks"]
    return dict(next(c for c in checks if c["key"] == key))


async def test_system_status_shows_a_connection_in_error_to_its_workspace_only(
    oauth: Fake, stack: Stack, make_workspace: WorkspaceFactory, http: aiohttp.ClientSession
) -> None:
    other = await make_workspace()
    connection_id = await oauth.connect("flaky")
    mine = await _admin_status(http, oauth.ws)
    expiry = _check(mine, "connections", "token_expiry")
    assert expiry["ok"]
    soonest = datetime.fromisoformat(expiry["at"])
    assert datetime.now(UTC) < soonest < datetime.now(UTC) + timedelta(days=1)
    assert _check(await _admin_status(http, other), "connections", "token_expiry")["at"] is None

    # Renewals fail until the refresher gives up: the connection goes to `error`.
    oauth.provider.token_failures = [500] * 50
    await expire_token(stack, connection_id)

    async def in_error() -> bool:
        doc = await _admin_status(http, oauth.ws)
        return bool(_check(doc, "connections", "connections_in_error")["count"])

    await eventually(in_error, timeout=20)
    mine = await _admin_status(http, oauth.ws)
    check = _check(mine, "connections", "connections_in_error")
    assert (check["ok"], check["count"], check["sample"]) == (False, 1, [connection_id])
    assert check["summary"] == "1 connection in error"
    assert "connections: 1 connection in error" in mine["problems"]
    assert mine["ok"] is False
    assert mine["services"]["connections"]["ok"] is False

    theirs = await _admin_status(http, other)
    check = _check(theirs, "connections", "connections_in_error")
    assert (check["ok"], check["count"], check["sample"]) == (True, 0, [])
    assert not [p for p in theirs["problems"] if p.startswith("connections: ")]
    text = json.dumps(theirs)
    assert connection_id not in text
    assert oauth.ws.id not in text


async def test_system_status_counts_dead_letters_of_its_workspace_only(
    stack: Stack, make_workspace: WorkspaceFactory, http: aiohttp.ClientSession
) -> None:
    mine, theirs = await make_workspace(), await make_workspace()
    failure = Failure(
        consumer="flows-status-test",
        stream_seq=secrets.randbits(48),
        subject="tether.evt.instances.app_event.received",
        data=b"{}",
        deliveries=5,
        error="boom",
        workspace_id=UUID(mine.id),
    )
    pool = await stack.pool("flows")
    try:
        async with pool.acquire() as conn:
            await record_failure(conn, failure, gave_up=True)
        doc = await _admin_status(http, mine)
        assert doc["services"]["flows"]["status"]["deadLetters"] == {"givenUp": 1, "retrying": 0}
        sentence = "flows: 1 event of this workspace given up (dead letters: `tether dead-letters`)"
        assert sentence in doc["problems"]
        other = await _admin_status(http, theirs)
        assert other["services"]["flows"]["status"]["deadLetters"] == {"givenUp": 0, "retrying": 0}
        assert sentence not in other["problems"]
    finally:
        await pool.execute(
            "DELETE FROM dead_letters WHERE consumer = $1 AND stream_seq = $2",
            failure.consumer,
            failure.stream_seq,
        )
        await pool.close()


def test_system_status_words_what_is_past_its_limits() -> None:
    outbox = OutboxBacklog(pending=17, lag_seconds=OUTBOX_LAG_LIMIT + 12)
    consumers = [
        ConsumerLag(
            consumer="flows-a", pending=CONSUMER_PENDING_LIMIT + 1, ack_pending=0, redelivered=0
        ),
        ConsumerLag(consumer="flows-b", pending=3, ack_pending=1, redelivered=2),
    ]
    jobs = [
        JobQueue(queue="runs", due=120, running=8, lag_seconds=JOB_LAG_LIMIT + 15),
        JobQueue(queue="quiet", due=1, running=0, lag_seconds=1.0),
    ]
    check = StatusCheck(
        key="runs_failed", ok=False, count=3, summary="3 runs failed in the last 24 h"
    )
    found = problems_of(outbox, consumers, jobs, DeadLetterCount(given_up=0, retrying=4), [check])
    assert found == [
        "outbox lag 42 s (17 events waiting to be published)",
        f"consumer flows-a: {CONSUMER_PENDING_LIMIT + 1} events waiting to be delivered",
        "consumer flows-b: 2 events being redelivered (a handler keeps failing or timing out)",
        "job queue runs: the oldest due job has waited 75 s (120 due)",
        "3 runs failed in the last 24 h",
    ]
    calm = OutboxBacklog(pending=2, lag_seconds=0.5)
    assert (
        problems_of(calm, consumers[1:1], jobs[1:], DeadLetterCount(given_up=0, retrying=0), [])
        == []
    )


def test_system_status_finds_every_durable_consumer_by_its_service_prefix() -> None:
    """Each service's durables are named ``<service>-…``: that is how its status finds them."""
    found = 0
    for service in SERVICES:
        for path in (ROOT / "services" / service).rglob("*.py"):
            for durable in re.findall(r'^DURABLE = "([^"]+)"', path.read_text(), re.M):
                assert durable.startswith(f"{service}-"), (path, durable)
                found += 1
    assert found


async def test_system_status_cli_prints_the_overview(workspace: WorkspaceHandle) -> None:
    target = ["--gateway", workspace.stack.gateway_url, "--token", await workspace.admin_token()]
    code, out = await run_cli("status", "--system", "--json", *target)
    doc = json.loads(out)
    assert code == (0 if doc["ok"] else 1), out
    assert doc["workspaceId"] == workspace.id
    assert list(doc["services"]) == list(SERVICES)

    code, out = await run_cli("status", "--system", *target)
    assert code == (0 if doc["ok"] else 1), out
    lines = out.splitlines()
    assert f"workspace {workspace.id}" in lines[0]
    header = next(line for line in lines if line.startswith("service "))
    assert "replicas" in header
    assert "dead letters" in header
    for name in SERVICES:
        row = next(line for line in lines if line.startswith(f"{name} "))
        assert row.split()[2] != "0", row  # at least one replica
    assert any(line.split()[:2] == ["connections", "connections_in_error"] for line in lines)

    code, out = await run_cli(
        "status", "--system", "--gateway", workspace.stack.gateway_url, "--token", "nope"
    )
    assert code == 2
    assert "401" in out


@dataclass
class Isolated:
    """A NATS server and a database of its own, with identity, connections and a gateway."""

    infra: Infra
    bus: Bus
    gateway_url: str
    runners: dict[str, web.AppRunner]


@pytest.fixture
async def isolated(stack: Stack, tmp_path: Path) -> AsyncIterator[Isolated]:
    """Run some services apart from the session's, so that one can be stopped for real."""
    nats = EmbeddedNats(tmp_path / "nats")
    nats_url = await asyncio.to_thread(nats.start)
    infra = Infra(
        await create_database(stack.infra.database_url, "tether_status"),
        nats_url,
        stack.infra.master_keys,
    )
    runners: dict[str, web.AppRunner] = {}
    gateway: web.AppRunner | None = None
    nc = None
    try:
        for name in ("identity", "connections"):
            runner = web.AppRunner(build_service(name, infra), handle_signals=False)
            await runner.setup()
            runners[name] = runner
        gateway, url = await start_gateway(infra)
        nc = await connect(nats_url, "tests-status")
        yield Isolated(infra, Bus(nc), url, runners)
    finally:
        if nc is not None:
            await nc.drain()
        if gateway is not None:
            await gateway.cleanup()
        for runner in reversed(runners.values()):
            await runner.cleanup()
        await asyncio.to_thread(nats.stop)
        await _drop_database(stack.infra.database_url, infra.database_url)


async def _drop_database(server_url: str, database_url: str) -> None:
    """Drop the fixture's database (its pools are closed by then)."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database_url.rsplit("/", 1)[1]}"')
    finally:
        await conn.close()


async def test_system_status_reports_a_stopped_service_down(
    isolated: Isolated, http: aiohttp.ClientSession
) -> None:
    created = await isolated.bus.call(
        identity.WORKSPACE_CREATE, identity.WorkspaceCreateRequest(name="status", ctx=SYSTEM)
    )
    minted = await isolated.bus.call(
        identity.TOKEN_MINT,
        identity.TokenMintRequest(workspace_key=created.key, admin=True, ctx=SYSTEM),
    )
    admin = bearer(minted.token)

    status, doc = await _status(http, isolated.gateway_url, admin)
    assert status == 200, doc
    assert doc["ok"] is False
    running = {"identity", "connections"}
    for name, service in doc["services"].items():
        if name in running:
            assert service["status"] is not None, (name, service)
            assert len(service["replicas"]) == 1
        else:
            assert (service["ok"], service["status"], service["replicas"]) == (False, None, [])
            assert f"{name}: down (no replica is running)" in doc["problems"]

    await isolated.runners.pop("connections").cleanup()  # stop it, as a deploy would
    status, doc = await _status(http, isolated.gateway_url, admin)
    assert status == 200, doc
    connections = doc["services"]["connections"]
    assert (connections["ok"], connections["status"], connections["replicas"]) == (False, None, [])
    assert connections["error"] == "down (no replica is running)"
    assert "connections: down (no replica is running)" in doc["problems"]
    assert doc["services"]["identity"]["status"] is not None
