"""Master-key rotation under load: add, promote, re-seal, retire while the API is busy.

A stack of its own (its own NATS and database, its own keys) serves three workspaces
with 60 OAuth connections whose tokens the refresher renews every ~1.5 s, plus webhook
subscriptions. While readers fetch credentials, refreshes are forced, admin tokens are
signed with workspace secrets that keep being rotated, connections are created and
webhooks delivered, the services are rolled onto ``old,new``, then ``new,old`` (each new
replica answering before the old one stops), everything is re-sealed in small batches
through the operator subject, and the services are rolled onto ``new`` alone.

Afterwards every stored secret opens with the new key only, every token, credential and
webhook still works, and a trigger that saw every write of a credential or a workspace
secret proves nothing was reverted: each write either re-wrapped the value it replaced
(same ciphertext, new key id, same version: the re-seal) or stored a value never seen
on that row before.

Every wait is bounded (a step that does not finish fails with what it was doing), and the
load stops on any failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import asyncpg
import jwt
import pytest
from aiohttp import web

from libs.cli import keys as cli_keys
from libs.common.bus import Bus, connect
from libs.common.config import SERVICES
from libs.common.contracts import identity
from libs.common.contracts.base import Context
from libs.common.contracts.keys import SEALED_SERVICES, KeysStatusRequest, keys_operations
from libs.common.crypto import Keyring, generate_master_key
from libs.common.infra import EmbeddedNats, free_port
from libs.common.reseal import SealedColumn
from tests.conftest import (
    SYSTEM,
    Infra,
    bearer,
    build_service,
    create_database,
    eventually,
    start_gateway,
)
from tests.fakes.oauth_provider import FakeProvider
from tests.fakes.webhook_app import FakeWebhookApp
from tests.instances.conftest import app_event_type

pytestmark = pytest.mark.slow  # 10-40 s (its own stack, three rolls under load)

OLD, NEW = generate_master_key("old"), generate_master_key("new")
STEP_SECONDS = 30.0
"""The most one step may take: a replica starting or stopping, an HTTP or bus call."""
RESEAL_SECONDS = 60.0
"""The most the whole re-seal may take (it takes about a second)."""


@contextlib.asynccontextmanager
async def _within(seconds: float, what: str, said: list[str] | None = None) -> AsyncIterator[None]:
    """Fail with ``what`` (and the last lines ``said``) when the block overruns ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        last = f"; last: {said[-3:]}" if said else ""
        raise AssertionError(f"{what} did not finish within {seconds:.0f}s{last}") from exc


def _sealed(service: str) -> tuple[SealedColumn, ...]:
    module = __import__(f"services.{service}.sealed", fromlist=["SEALED"])
    return tuple(module.SEALED)


@dataclass
class Rotating:
    """An in-process stack whose services can be rolled onto other master keys."""

    infra: Infra
    runners: dict[str, web.AppRunner]
    gateway_url: str
    bus: Bus

    async def roll(self, keys: str) -> None:
        """Replace each keyed service: the new replica serves before the old one stops."""
        self.infra = replace(self.infra, master_keys=keys)
        for name in SEALED_SERVICES:
            runner = web.AppRunner(
                build_service(name, self.infra, public_url=self.gateway_url), handle_signals=False
            )
            async with _within(STEP_SECONDS, f"starting a new {name} replica ({keys})"):
                await runner.setup()
            old, self.runners[name] = self.runners[name], runner
            async with _within(STEP_SECONDS, f"stopping the old {name} replica ({keys})"):
                await old.cleanup()


@pytest.fixture
async def rotating(infra: Infra, tmp_path: Path) -> AsyncIterator[Rotating]:
    nats = EmbeddedNats(tmp_path / "nats")
    nats_url = await asyncio.to_thread(nats.start)
    own = Infra(await create_database(infra.database_url, "tether_rotation"), nats_url, OLD)
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    runners: dict[str, web.AppRunner] = {}
    nc = None
    try:
        for name in SERVICES:
            runner = web.AppRunner(
                build_service(name, own, public_url=gateway_url), handle_signals=False
            )
            await runner.setup()
            runners[name] = runner
        gateway, _ = await start_gateway(own, port=port, token_cache_size=0)
        runners["gateway"] = gateway
        nc = await connect(nats_url, "tests-rotation")
        yield Rotating(own, runners, gateway_url, Bus(nc, timeout=STEP_SECONDS))
    finally:
        try:
            async with _within(3 * STEP_SECONDS, "stopping the rotation stack"):
                if nc is not None:
                    await nc.drain()
                for runner in reversed(list(runners.values())):
                    await runner.cleanup()
        finally:
            await asyncio.to_thread(nats.stop)


@dataclass
class Ws:
    """A workspace as its backend knows it: key and the newest secret."""

    id: str
    key: str
    secret: str
    connections: list[str] = field(default_factory=list)

    def admin(self) -> dict[str, str]:
        """Sign a fresh admin token with the workspace secret."""
        claims = {"iss": self.key, "isAdmin": True, "exp": int(time.time()) + 600}
        return bearer(jwt.encode({**claims, "jti": secrets.token_hex(4)}, self.secret, "HS256"))


@dataclass
class Load:
    """Calls made while the keys change, and what did not go as expected."""

    http: aiohttp.ClientSession
    url: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    calls: int = 0
    failures: list[tuple[str, int, str]] = field(default_factory=list)

    async def call(self, method: str, path: str, ws: Ws, expect: int, body: Any = None) -> Any:
        async with self.http.request(
            method, self.url + path, json=body, headers=ws.admin()
        ) as resp:
            text = await resp.text()
            self.calls += 1
            if resp.status != expect:
                self.failures.append((f"{method} {path}", resp.status, text[:200]))
                return None
            return await resp.json() if text else None


async def test_key_rotation_under_load_loses_and_reverts_nothing(rotating: Rotating) -> None:
    r = rotating
    # The provider keeps refresh tokens: a replica stopped mid-renewal (as every roll stops
    # one) loses a rotated refresh token, which a strict provider turns into a disconnect
    # (refresh.py states that limit); the audit trigger proves nothing was reverted instead.
    async with FakeProvider(client_id="rot", client_secret="rot-secret", access_token_ttl=3,
                            rotate_refresh_tokens=False) as provider, \
            FakeWebhookApp(api_key="rot-key") as app, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=STEP_SECONDS)) as http:  # fmt: skip
        load = Load(http, r.gateway_url)
        spaces: list[Ws] = []
        for i in range(3):
            created = await r.bus.call(
                identity.WORKSPACE_CREATE,
                identity.WorkspaceCreateRequest(name=f"rot-{i}", ctx=SYSTEM),
            )
            ws = Ws(str(created.id), created.key, created.secret)
            spaces.append(ws)
            await load.call("POST", "/integrations", ws, 201, {
                "key": "fake", "name": "Fake", "auth": {"type": "oauth2", "authorizeUrl": provider.authorize_url,
                "tokenUrl": provider.token_url, "clientId": "rot"}, "clientSecret": "rot-secret",
                "api": {"baseUrl": provider.api_base},
            })  # fmt: skip
            for n in range(20):
                conn = await load.call("POST", "/connections", ws, 201, {
                    "customerId": f"c{n}", "integrationKey": "fake",
                    "credentials": {"access_token": f"seed-{n}", "refresh_token": provider.grant_refresh_token(), "expires_in": 3},
                })  # fmt: skip
                ws.connections.append(conn["id"])
        hooks = spaces[0]
        await load.call("POST", "/integrations", hooks, 201, app.integration())
        await load.call("POST", "/app-event-types", hooks, 201, app_event_type())
        await load.call("POST", "/app-event-types", hooks, 201, app_event_type(
            key="static-hook", integrationKey="elsewhere",
            signature={"header": "X-Sig", "secret": "static"}, staticSecret="static-secret-1",
        ))  # fmt: skip
        crm_ids: list[str] = []

        async def connect_crm() -> None:
            created = await load.call("POST", "/connections", hooks, 201, {
                "customerId": f"h{len(crm_ids)}", "integrationKey": "crm",
                "credentials": {"apiKey": "rot-key"}, "allowMultiple": True,
            })  # fmt: skip
            if created:
                crm_ids.append(created["id"])

        for _ in range(3):
            await connect_crm()
        await _audit_sealed_writes(r.infra.database_url)
        assert not load.failures, load.failures
        await eventually(lambda: _true(len(app.subscriptions) == 3), timeout=30)

        async def readers() -> None:
            while not load.stop.is_set():
                ws = random.choice(spaces)
                await load.call(
                    "GET", f"/connections/{random.choice(ws.connections)}/credentials", ws, 200
                )

        async def refreshes() -> None:
            while not load.stop.is_set():
                ws = random.choice(spaces)
                await load.call(
                    "POST", f"/connections/{random.choice(ws.connections)}/refresh", ws, 200
                )

        # One more workspace whose secret keeps changing (writes racing the re-seal); the
        # others' secrets sign every call (identity opens them, in each new replica).
        churn = await r.bus.call(
            identity.WORKSPACE_CREATE, identity.WorkspaceCreateRequest(name="churn", ctx=SYSTEM)
        )
        as_churn = Context(workspace_id=churn.id, principal="system", request_id="churn")
        churned: list[str] = [churn.secret]

        async def secret_rotations() -> None:
            while not load.stop.is_set():
                rotated = await r.bus.call(
                    identity.SECRET_ROTATE, identity.SecretRotateRequest(ctx=as_churn)
                )
                churned.append(rotated.secret)
                await asyncio.sleep(0.1)  # a rotation every so often, between the other calls

        async def connects_and_deliveries() -> None:
            while not load.stop.is_set():
                await connect_crm()
                if app.subscriptions:
                    sub = random.choice(list(app.subscriptions))
                    delivered = await app.deliver(http, sub, {"events": [{"id": uuid4().hex}]})
                    if delivered.status != 202:
                        load.failures.append(("deliver", delivered.status, delivered.body[:200]))
                await asyncio.sleep(0.3)  # a steady trickle of new connections and deployments

        load_mix = [*[readers] * 3, *[refreshes] * 2, secret_rotations, connects_and_deliveries]
        workers = [asyncio.create_task(_until_stopped(work, load.stop)) for work in load_mix]
        try:
            calls_before = load.calls
            refreshed_before = provider.refresh_calls
            rotation_started = time.monotonic()
            await r.roll(f"{OLD},{NEW}")  # 1: every replica opens the new key
            await r.roll(f"{NEW},{OLD}")  # 2: every replica seals under it
            progress: list[str] = []
            started, refreshed_at_reseal = time.monotonic(), provider.refresh_calls
            async with _within(RESEAL_SECONDS, "re-sealing", progress):
                finals = await cli_keys.reseal(
                    r.infra.nats_url, "new", 3, progress.append, pause=0.1
                )
            reseal_seconds = time.monotonic() - started
            refreshed_in_reseal = provider.refresh_calls - refreshed_at_reseal
            assert sum(cli_keys.remaining(f) for f in finals) == 0, progress
            assert all(f.failed == 0 for f in finals)
            await r.roll(NEW)  # 4: the old key is gone
            rotation_seconds = time.monotonic() - rotation_started
            refreshed_in_rotation = provider.refresh_calls - refreshed_before
            # …and renewals go on with the new key alone.
            renewed_by_then = provider.refresh_calls
            await eventually(lambda: _true(provider.refresh_calls > renewed_by_then + 20), 30)
        finally:
            load.stop.set()
            await _stopped(workers)
        during = load.calls - calls_before
        assert not load.failures, load.failures[:10]
        assert refreshed_in_rotation > 0  # credentials were being rewritten throughout

        # Everything is sealed under the new key, and opens with it alone.
        for service in SEALED_SERVICES:
            status = await r.bus.call(keys_operations(service)[0], KeysStatusRequest(ctx=SYSTEM))
            assert status.kids == ["new"]
            for counted in status.columns:
                assert set(counted.by_kid) <= {"new"}, (service, counted)
        only_new = Keyring.from_setting(NEW)
        db = await asyncpg.connect(r.infra.database_url)
        try:
            opened = 0
            for service in SEALED_SERVICES:
                for column in _sealed(service):
                    rows = await db.fetch(
                        f"SELECT * FROM {service}.{column.table} WHERE {column.column} IS NOT NULL"
                    )
                    for row in rows:
                        only_new.decrypt(row[column.column], column.aad(row))
                    opened += len(rows)
        finally:
            await db.close()

        # Every credential reads and renews with the new key alone.
        for ws in spaces:
            for connection_id in ws.connections:
                renewed = await load.call("POST", f"/connections/{connection_id}/refresh", ws, 200)
                assert renewed is not None
                assert renewed["state"] == "connected", renewed
                creds = await load.call("GET", f"/connections/{connection_id}/credentials", ws, 200)
                assert creds["values"]["refresh_token"].startswith("rt_")
            assert await load.call("GET", "/workspace", ws, 200)  # the secret verifies
        newest = Ws(str(churn.id), churn.key, churned[-1])

        async def newest_secret_verifies() -> bool:
            async with http.get(r.gateway_url + "/workspace", headers=newest.admin()) as resp:
                return resp.status == 200

        await eventually(newest_secret_verifies)  # once identity's cache has heard of it
        for connection_id in crm_ids:
            creds = await load.call("GET", f"/connections/{connection_id}/credentials", hooks, 200)
            assert creds["values"] == {"apiKey": "rot-key"}
        # A deployment step a stopping replica was running is retried once its lease ends.
        await eventually(lambda: _true(len(app.subscriptions) == len(crm_ids)), timeout=60)
        for sub in list(app.subscriptions):  # each webhook URL and secret still opens
            delivered = await app.deliver(http, sub, {"events": [{"id": uuid4().hex}]})
            assert delivered.status == 202, delivered
        assert not load.failures, load.failures[:10]
        rewraps, writes = await _check_audit(r.infra.database_url)
    print(
        f"key rotation: {rotation_seconds:.1f}s (3 rolls + re-seal), {during} API calls "
        f"meanwhile, 0 failed, {refreshed_in_rotation} token renewals; re-seal "
        f"{reseal_seconds:.2f}s in batches of 3 with {refreshed_in_reseal} renewals racing it; "
        f"{opened} values open with the new key alone; audited {rewraps} re-wraps and "
        f"{writes} live writes of credentials and secrets, none reverted"
    )


async def _true(value: bool) -> bool:
    return value


async def _until_stopped(work: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Run one load worker; its failure stops the others (and fails the test at the end)."""
    try:
        await work()
    finally:
        stop.set()


async def _stopped(workers: list[asyncio.Task[None]]) -> None:
    """Wait for the load workers to see ``stop``; re-raise the first one's failure."""
    _, pending = await asyncio.wait(workers, timeout=STEP_SECONDS + 5)  # a call in flight ends
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    assert not pending, f"{len(pending)} load workers were still busy {STEP_SECONDS + 5:.0f}s on"
    for task in workers:
        task.result()


AUDIT_SQL = """
CREATE TABLE public.sealed_audit (
    seq bigserial PRIMARY KEY, tbl text, id uuid, col text,
    old_kid text, new_kid text, old_data text, new_data text, old_version int, new_version int
);
CREATE FUNCTION public.audit_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    col text;
    before text;
    after text;
BEGIN
    FOREACH col IN ARRAY TG_ARGV LOOP
        EXECUTE format('SELECT ($1).%I, ($2).%I', col, col) INTO before, after USING OLD, NEW;
        IF before IS DISTINCT FROM after THEN
            INSERT INTO public.sealed_audit
                (tbl, id, col, old_kid, new_kid, old_data, new_data, old_version, new_version)
            VALUES (TG_TABLE_NAME, NEW.id, col,
                split_part(before, '.', 2), split_part(after, '.', 2),
                split_part(before, '.', 4), split_part(after, '.', 4),
                CASE WHEN TG_TABLE_NAME = 'connections' THEN (to_jsonb(OLD) ->> 'version')::int END,
                CASE WHEN TG_TABLE_NAME = 'connections' THEN (to_jsonb(NEW) ->> 'version')::int END);
        END IF;
    END LOOP;
    RETURN NEW;
END $$;
CREATE TRIGGER sealed_audit AFTER UPDATE ON connections.connections
    FOR EACH ROW EXECUTE FUNCTION public.audit_sealed('credentials_sealed');
CREATE TRIGGER sealed_audit AFTER UPDATE ON identity.workspaces
    FOR EACH ROW EXECUTE FUNCTION public.audit_sealed('secret_sealed', 'previous_secret_sealed');
"""


async def _audit_sealed_writes(database_url: str) -> None:
    """Record every change of a credential or a workspace secret (a test-only trigger)."""
    db = await asyncpg.connect(database_url)
    try:
        await db.execute(AUDIT_SQL)
    finally:
        await db.close()


async def _check_audit(database_url: str) -> tuple[int, int]:
    """Prove no write reverted a value; return (re-wraps, other writes)."""
    db = await asyncpg.connect(database_url)
    try:
        rows = await db.fetch("SELECT * FROM public.sealed_audit ORDER BY seq")
    finally:
        await db.close()
    replaced: dict[tuple[str, str], set[str]] = {}
    rewraps = writes = 0
    for row in rows:
        seen = replaced.setdefault((row["id"], row["col"]), set())
        if row["old_data"] == row["new_data"]:  # the same ciphertext, its data key re-wrapped
            assert (row["old_kid"], row["new_kid"]) == ("old", "new"), dict(row)
            assert row["old_version"] == row["new_version"], dict(row)
            rewraps += 1
            continue
        assert row["new_data"] not in seen, f"a replaced value came back: {dict(row)}"
        if row["tbl"] == "connections":
            assert row["new_version"] > row["old_version"], dict(row)
        if row["old_data"]:
            seen.add(row["old_data"])
        writes += 1
    assert rewraps > 0
    assert writes > 0
    return rewraps, writes
