"""deploy/nats/tether.conf: each service may use only its own subjects, its calls, its events."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NatsClient

from libs.common.config import SERVICES
from libs.common.contracts.base import EVENTS_STREAM
from libs.common.infra import free_port, nats_server_binary
from libs.common.outbox import MAX_DELIVERIES_ADVISORY
from services.gateway.routes import ROUTES
from tests.conftest import ROOT
from tests.contract.calls import calls, consumes

CONF = ROOT / "deploy" / "nats" / "tether.conf"
PASSWORD = "test-password"


def _allows(user: str) -> tuple[set[str], set[str]]:
    """Return (publish, subscribe) allow lists of ``user`` as the config file states them."""
    block = re.search(r"user: " + user + r"\b(.*?)allow_responses", CONF.read_text(), re.S)
    assert block, f"no user {user} in {CONF}"
    pub = re.search(r"publish: \{ allow: \[(.*?)\] \}", block.group(1))
    sub = re.search(r"subscribe: \{ allow: \[(.*?)\] \}", block.group(1))
    assert pub
    assert sub
    return set(re.findall(r'"([^"]+)"', pub.group(1))), set(re.findall(r'"([^"]+)"', sub.group(1)))


@pytest.mark.parametrize("service", SERVICES)
def test_nats_permissions_match_the_code(service: str) -> None:
    publish, subscribe = _allows(service)
    assert calls(service) <= publish, calls(service) - publish
    assert f"tether.evt.{service}.>" in publish
    assert f"tether.{service}.>" in subscribe
    assert consumes(service) <= subscribe
    others = [s for s in SERVICES if s != service]
    for other in others:
        assert f"tether.{other}.>" not in subscribe
        assert f"tether.evt.{other}.>" not in publish
        assert not [p for p in publish if p.startswith(f"tether.evt.{other}.")]
    own_queue = f"tether.inbound.{service}.>"  # its own TETHER_INBOUND work (instances)
    assert publish - calls(service) <= {f"tether.evt.{service}.>", own_queue, "$JS.API.>"}, (
        "more than it needs"
    )


def test_nats_gateway_may_call_only_routed_subjects() -> None:
    publish, subscribe = _allows("gateway")
    routed = (
        {r.op.subject for r in ROUTES}
        | calls("gateway")  # token verification and its keys
        | {f"tether.{s}.system.ping" for s in SERVICES}
        | {f"tether.{s}.system.status" for s in SERVICES}  # GET /system/status
        | {f"$SRV.{k}.{s}" for k in ("INFO", "STATS") for s in SERVICES}  # its replicas
    )
    assert publish == routed
    assert consumes("gateway") <= subscribe
    assert not [s for s in publish if "mint" in s or "create_code" in s or "workspaces.create" in s]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run nats-server with the deploy configuration (port and storage moved)."""
    port = free_port()
    store = tmp_path_factory.mktemp("nats-perm")
    conf = store / "tether.conf"  # the deploy file, with this machine's port and storage
    conf.write_text(
        CONF.read_text()
        .replace("port: 4222", f"port: {port}\nhost: 127.0.0.1")
        .replace("http_port: 8222", "")
        .replace('store_dir: "/data/jetstream"', f'store_dir: "{store / "js"}"')
    )
    env = {
        **os.environ,
        **{
            f"TETHER_NATS_PASSWORD_{u.upper()}": PASSWORD
            for u in [*SERVICES, "gateway", "operator"]
        },
    }
    proc = subprocess.Popen(
        [str(nats_server_binary()), "-c", str(conf)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # wait until it listens
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def _as(url: str, user: str, errors: list[str]) -> NatsClient:
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    for _ in range(50):
        try:
            return await nats.connect(
                url, user=user, password=PASSWORD, error_cb=on_error, allow_reconnect=False
            )
        except (OSError, nats.errors.NoServersError):
            await asyncio.sleep(0.1)  # the server is still starting
    raise AssertionError("nats-server did not start")


async def test_nats_service_cannot_use_another_services_subjects(server: str) -> None:
    errors: list[str] = []
    nc = await _as(server, "identity", errors)
    try:
        await nc.subscribe("tether.identity.customers.get")
        await nc.publish("tether.evt.identity.customer.created", b"{}")
        await nc.flush()
        assert errors == []
        await nc.subscribe("tether.connections.credentials.get")  # would steal credentials requests
        await nc.flush()
        await nc.publish("tether.evt.connections.connection.created", b"{}")  # would forge an event
        await nc.flush()
        await nc.publish("tether.connections.credentials.get", b"{}")  # identity never calls this
        await nc.flush()
        for _ in range(50):
            if len(errors) >= 3:
                break
            await asyncio.sleep(0.05)  # violations arrive asynchronously
        assert len(errors) == 3, errors
        assert all("permissions violation" in e.lower() for e in errors), errors
    finally:
        await nc.close()


async def test_nats_gateway_cannot_mint_tokens(server: str) -> None:
    errors: list[str] = []
    nc = await _as(server, "gateway", errors)
    try:
        await nc.publish("tether.identity.tokens.mint", b"{}")
        await nc.flush()
        for _ in range(50):
            if errors:
                break
            await asyncio.sleep(0.05)  # violations arrive asynchronously
        assert errors
        assert "permissions violation" in errors[0].lower()
    finally:
        await nc.close()


def test_conf_file_exists() -> None:
    assert Path(CONF).exists()


def test_nats_services_hear_jetstream_give_up_on_their_consumers() -> None:
    """Each durable's max-deliveries advisory is allowed: it becomes a dead letter."""
    checked = 0
    for service in SERVICES:
        _, subscribe = _allows(service)
        for path in sorted((ROOT / "services" / service).rglob("*.py")):
            for durable in re.findall(r'^DURABLE = "([^"]+)"', path.read_text(), re.M):
                advisory = f"{MAX_DELIVERIES_ADVISORY}.{EVENTS_STREAM}.{durable}"
                assert advisory in subscribe, f"{service} ({path.name}): {advisory}"
                checked += 1
    assert checked
