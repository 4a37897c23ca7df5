"""Triggers: app events (inbound webhooks), data-record events and schedules start runs.

Runs are read from the flows schema (what each trigger stored); events come from the real
instances service (a webhook through the gateway) or, for the data-record events instances
does not emit yet, are published to JetStream exactly as the outbox relay publishes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import asyncpg
import nats.js.errors
import pytest
from aiohttp import web
from nats.js.api import PubAck
from structlog.testing import capture_logs

from libs.common.contracts import instances as ic
from libs.common.contracts.base import EVENTS_STREAM, Event, EventType
from services.flows.settings import FlowsOptions
from services.flows.triggers import app_events, data_records
from services.flows.triggers.matching import select_triggered
from services.flows.triggers.schedules import Scheduler
from services.flows.triggers.settings import TriggerOptions
from tests.conftest import Stack, WorkspaceFactory, eventually, service_settings
from tests.instances.conftest import Crm

RUNS_SQL = """
SELECT id, flow_instance_id, trigger, input, dedupe_key FROM flow_runs
WHERE workspace_id = $1 ORDER BY created_at, id
"""
SCHEDULE_SQL = "SELECT * FROM flow_schedules WHERE workspace_id = $1 AND flow_instance_id = $2"


@pytest.fixture
async def flows_db(stack: Stack) -> AsyncIterator[asyncpg.Pool[Any]]:
    """A pool on the flows schema, to read what the triggers stored."""
    pool = await stack.pool("flows")
    yield pool
    await pool.close()


async def _flow(crm: Crm, key: str, trigger: dict[str, Any]) -> str:
    body = {
        "key": key,
        "level": "app",
        "integrationKey": "crm",
        "name": key,
        "trigger": trigger,
        "nodes": {},
    }
    status, flow = await crm.request("POST", "/flows", body)
    assert status == 201, flow
    return str(flow["id"])


async def _instance(crm: Crm, flow_id: str, connection_id: str) -> str:
    status, created = await crm.request(
        "POST", "/flow-instances", {"flowId": flow_id, "connectionId": connection_id}
    )
    assert status == 201, created
    return str(created["id"])


async def _runs(db: asyncpg.Pool[Any], workspace_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch(RUNS_SQL, UUID(workspace_id))]


def _trigger(run: dict[str, Any]) -> dict[str, Any]:
    """Return the run's trigger without its unset fields."""
    return {k: v for k, v in run["trigger"].items() if v is not None}


def _by_instance(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        found.setdefault(str(run["flow_instance_id"]), []).append(run)
    return found


async def _drained(stack: Stack, durable: str) -> None:
    """Wait until the durable consumer has handled every message in the stream."""

    async def check() -> bool:
        try:
            info = await stack.bus.js.consumer_info(EVENTS_STREAM, durable)
        except nats.js.errors.NotFoundError:
            return False  # the flows service has not created it yet
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)

    await eventually(check, timeout=15)


async def _publish(stack: Stack, kind: EventType[Any], event: Event, msg_id: str = "") -> PubAck:
    """Publish ``event`` the way the outbox relay does (Nats-Msg-Id = event id)."""
    return await stack.bus.js.publish(
        kind.subject,
        event.model_dump_json().encode(),
        headers={"Nats-Msg-Id": msg_id or str(event.event_id)},
    )


# --- app events ------------------------------------------------------------------------


async def test_triggers_webhook_starts_one_run_per_matching_instance(
    crm: Crm, stack: Stack, flows_db: asyncpg.Pool[Any], http: aiohttp.ClientSession
) -> None:
    """An inbound webhook through the gateway: every matching instance runs once per event.

    Not the disabled one, not another connection's, not other trigger types, not those whose
    filter is falsy or fails (which does not hold up the others).
    """
    created = {"type": "app-event", "appEventTypeKey": "contact-created"}
    every = await _flow(crm, "every", created)
    vip = await _flow(
        crm, "vip", {**created, "filter": "payload.kind == 'vip' && customerId == 'c1'"}
    )
    off = await _flow(crm, "off", created)
    broken = await _flow(crm, "broken", {**created, "filter": "abs(payload.id)"})  # fails at run
    timed = await _flow(crm, "timed", {"type": "schedule", "cron": "0 0 1 1 *"})
    api = await _flow(crm, "api", {"type": "api"})
    connection, other = await crm.connect("c1"), await crm.connect("c2")
    await crm.settled(connection)
    await crm.settled(other)
    i_every, i_vip = await _instance(crm, every, connection), await _instance(crm, vip, connection)
    i_off = await _instance(crm, off, connection)
    await _instance(crm, broken, connection)
    await _instance(crm, timed, connection)
    await _instance(crm, api, connection)
    i_elsewhere = await _instance(crm, every, other)  # same flow, another connection
    status, _ = await crm.request("PATCH", f"/flow-instances/{i_off}", {"enabled": False})
    assert status == 200
    [external] = [s["id"] for s in crm.app.subscriptions.values() if s["connection"] == connection]
    events = [{"id": "ct-1", "kind": "vip"}, {"id": "ct-2", "kind": "plain"}]
    delivery = await crm.app.deliver(http, external, {"events": events}, delivery_id="d-1")
    assert delivery.status == 202, delivery.body

    async def started() -> bool:
        return len(await _runs(flows_db, crm.ws.id)) >= 3

    await eventually(started, timeout=15)
    await _drained(stack, app_events.DURABLE)
    runs = _by_instance(await _runs(flows_db, crm.ws.id))
    assert set(runs) == {i_every, i_vip}, runs
    assert [r["input"] for r in runs[i_every]] == events
    assert [r["input"] for r in runs[i_vip]] == [events[0]]
    assert i_elsewhere not in runs
    for run in (*runs[i_every], *runs[i_vip]):
        assert run["trigger"]["type"] == "app-event"
        assert run["dedupe_key"] == f"event:{run['trigger']['eventId']}"
    assert runs[i_vip][0]["trigger"]["eventId"] == runs[i_every][0]["trigger"]["eventId"]


def _app_event(workspace_id: str, connection_id: str, payload: Any) -> ic.AppEventReceived:
    return ic.AppEventReceived(
        workspace_id=UUID(workspace_id),
        customer_id="c1",
        connection_id=UUID(connection_id),
        integration_key="crm",
        app_event_type_key="contact-created",
        subscription_id=uuid4(),
        delivery_id=None,
        payload=payload,
    )


async def test_triggers_redelivered_event_starts_no_second_run(
    crm: Crm,
    stack: Stack,
    flows_db: asyncpg.Pool[Any],
    make_workspace: WorkspaceFactory,
) -> None:
    """The same event published again (same id, or a relay's republish) runs nothing more."""
    flow = await _flow(crm, "f", {"type": "app-event", "appEventTypeKey": "contact-created"})
    connection = await crm.connect("c1")
    await crm.settled(connection)
    instance = await _instance(crm, flow, connection)
    event = _app_event(crm.ws.id, connection, {"n": 1})
    first = await _publish(stack, ic.APP_EVENT_RECEIVED, event)
    again = await _publish(stack, ic.APP_EVENT_RECEIVED, event)
    assert again.duplicate  # inside JetStream's window the stream drops it
    republished = await _publish(stack, ic.APP_EVENT_RECEIVED, event, msg_id=str(uuid4()))
    assert republished.seq > first.seq  # after the window it is a second message
    stranger = await make_workspace()  # another workspace naming this connection: nothing
    await _publish(stack, ic.APP_EVENT_RECEIVED, _app_event(stranger.id, connection, {"n": 2}))
    await _drained(stack, app_events.DURABLE)
    runs = await _runs(flows_db, crm.ws.id)
    assert [(str(r["flow_instance_id"]), r["input"]) for r in runs] == [(instance, {"n": 1})]
    assert _trigger(runs[0]) == {"type": "app-event", "eventId": str(event.event_id)}
    assert await _runs(flows_db, stranger.id) == []


async def test_triggers_handler_again_returns_the_first_run(
    crm: Crm, flows_db: asyncpg.Pool[Any]
) -> None:
    """Handled twice (as if its record were lost), an event still runs each instance once."""
    flow = await _flow(crm, "f", {"type": "app-event", "appEventTypeKey": "contact-created"})
    connection = await crm.connect("c1")
    await crm.settled(connection)
    await _instance(crm, flow, connection)
    event = _app_event(crm.ws.id, connection, {"n": 1})
    for _ in range(2):
        async with flows_db.acquire() as conn, conn.transaction():
            await app_events.on_app_event(
                conn, ic.APP_EVENT_RECEIVED, event, options=FlowsOptions()
            )
    assert len(await _runs(flows_db, crm.ws.id)) == 1


async def test_triggers_match_only_runnable_instances_of_the_base_revision(
    crm: Crm, flows_db: asyncpg.Pool[Any]
) -> None:
    """The trigger is the base revision's: a newer revision counts only after an upgrade."""
    flow = await _flow(crm, "f", {"type": "app-event", "appEventTypeKey": "contact-created"})
    connection = await crm.connect("c1")
    await crm.settled(connection)
    instance = await _instance(crm, flow, connection)
    change = {
        "revision": 1,
        "trigger": {"type": "data-record-created", "dataSourceKey": "contacts"},
    }
    status, body = await crm.request("PATCH", f"/flows/{flow}", change)
    assert status == 200, body

    async def matching(kind: Any, field: str, key: str) -> list[str]:
        async with flows_db.acquire() as conn:
            found = await select_triggered(
                conn, UUID(crm.ws.id), UUID(connection), kind, field, key
            )
        return [str(m.id) for m in found]

    assert await matching("app-event", "appEventTypeKey", "contact-created") == [instance]
    assert await matching("data-record-created", "dataSourceKey", "contacts") == []
    status, body = await crm.request("POST", f"/flow-instances/{instance}/upgrade")
    assert status == 200, body
    assert await matching("app-event", "appEventTypeKey", "contact-created") == []
    assert await matching("data-record-created", "dataSourceKey", "contacts") == [instance]
    status, _ = await crm.request("PATCH", f"/flow-instances/{instance}", {"enabled": False})
    assert status == 200
    assert await matching("data-record-created", "dataSourceKey", "contacts") == []


# --- data records ----------------------------------------------------------------------


def _record_event(
    workspace_id: str, connection_id: str, record_id: str, record: Any
) -> ic.DataRecordEvent:
    return ic.DataRecordEvent(
        workspace_id=UUID(workspace_id),
        customer_id="c1",
        connection_id=UUID(connection_id),
        integration_key="crm",
        data_source_key="contacts",
        data_source_instance_id=uuid4(),
        record_id=record_id,
        record=record,
    )


async def test_triggers_data_record_events_start_runs(
    crm: Crm, stack: Stack, flows_db: asyncpg.Pool[Any]
) -> None:
    """data_record.<verb> (the instances contract) runs the instances listening to that verb."""
    updated = await _flow(
        crm,
        "updated",
        {"type": "data-record-updated", "dataSourceKey": "contacts", "filter": "record.vip"},
    )
    deleted = await _flow(
        crm, "deleted", {"type": "data-record-deleted", "dataSourceKey": "contacts"}
    )
    created = await _flow(
        crm, "created", {"type": "data-record-created", "dataSourceKey": "contacts"}
    )
    connection = await crm.connect("c1")
    await crm.settled(connection)
    i_updated = await _instance(crm, updated, connection)
    i_deleted = await _instance(crm, deleted, connection)
    await _instance(crm, created, connection)
    vip = _record_event(crm.ws.id, connection, "r1", {"id": "r1", "vip": True})
    await _publish(stack, ic.DATA_RECORD_UPDATED, vip)
    plain = _record_event(crm.ws.id, connection, "r2", {"id": "r2", "vip": False})
    await _publish(stack, ic.DATA_RECORD_UPDATED, plain)
    gone = _record_event(crm.ws.id, connection, "r3", None)
    await _publish(stack, ic.DATA_RECORD_DELETED, gone)
    await _publish(stack, ic.DATA_RECORD_DELETED, gone, msg_id=str(uuid4()))  # redelivered
    await _drained(stack, data_records.DURABLE)
    runs = _by_instance(await _runs(flows_db, crm.ws.id))
    assert set(runs) == {i_updated, i_deleted}, runs
    [run] = runs[i_updated]
    assert run["input"] == {
        "record": {"id": "r1", "vip": True},
        "recordId": "r1",
        "dataSourceKey": "contacts",
    }
    assert _trigger(run) == {"type": "data-record-updated", "eventId": str(vip.event_id)}
    assert run["dedupe_key"] == f"event:{vip.event_id}"
    [run] = runs[i_deleted]
    assert run["input"] == {"record": None, "recordId": "r3", "dataSourceKey": "contacts"}
    assert run["trigger"]["type"] == "data-record-deleted"


# --- schedules -------------------------------------------------------------------------

FAST = TriggerOptions(schedule_poll_interval=0.05, schedule_reconcile_interval=0.2)


@pytest.fixture
async def replicas(stack: Stack) -> AsyncIterator[list[web.AppRunner]]:
    """Two more flows replicas (beside the session's) that look for ticks every 50 ms."""
    from services.flows.app import create_app
    from services.flows.settings import FlowsSettings

    runners = []
    for _ in range(2):
        settings = FlowsSettings(
            service=service_settings(stack.infra), options=FlowsOptions(), triggers=FAST
        )
        runner = web.AppRunner(create_app(settings), handle_signals=False)
        await runner.setup()
        runners.append(runner)
    yield runners
    for runner in runners:
        await runner.cleanup()


async def _schedule(
    db: asyncpg.Pool[Any], workspace_id: str, instance: str
) -> dict[str, Any] | None:
    row = await db.fetchrow(SCHEDULE_SQL, UUID(workspace_id), UUID(instance))
    return None if row is None else dict(row)


async def test_triggers_schedule_fires_once_per_tick_across_replicas(
    crm: Crm, flows_db: asyncpg.Pool[Any], replicas: list[web.AppRunner]
) -> None:
    """Every second, with three replicas ticking: one run per tick, none after disabling."""
    flow = await _flow(crm, "every-second", {"type": "schedule", "cron": "* * * * * *"})
    connection = await crm.connect("c1")
    await crm.settled(connection)
    with capture_logs() as logs:
        instance = await _instance(crm, flow, connection)

        async def ticked() -> bool:
            return len(await _runs(flows_db, crm.ws.id)) >= 4

        await eventually(ticked, timeout=20)
        status, _ = await crm.request("PATCH", f"/flow-instances/{instance}", {"enabled": False})
        assert status == 200

        async def dropped() -> bool:
            return await _schedule(flows_db, crm.ws.id, instance) is None

        await eventually(dropped)
        runs = await _runs(flows_db, crm.ws.id)
        # Not synchronisation: a window of more than one tick in which nothing may start.
        await asyncio.sleep(1.2)
    assert await _runs(flows_db, crm.ws.id) == runs
    ticks = [datetime.fromisoformat(r["trigger"]["tick"]) for r in runs]
    assert ticks == sorted(set(ticks)), ticks  # distinct, in order
    assert all(t.microsecond == 0 for t in ticks)
    for run, tick in zip(runs, ticks, strict=True):
        assert str(run["flow_instance_id"]) == instance
        assert run["dedupe_key"] == f"tick:{tick.isoformat()}"
        assert run["input"] == {"tick": tick.isoformat()}
    assert not [e for e in logs if e["event"] in ("schedule_tick_repeated", "schedule_tick_failed")]


def _upcoming(now: datetime, month: int, hour: int) -> datetime:
    """Return the first <month>-01 <hour>:00 UTC after ``now``."""
    when = datetime(now.year, month, 1, hour, tzinfo=UTC)
    return when if when > now else when.replace(year=now.year + 1)


async def test_triggers_schedule_missed_ticks_run_once_and_follow_changes(
    crm: Crm, flows_db: asyncpg.Pool[Any], replicas: list[web.AppRunner]
) -> None:
    """Three yearly ticks missed while down run once; an upgraded cron is picked up."""
    trigger = {"type": "schedule", "cron": "0 0 1 1 *", "timezone": "America/New_York"}
    flow = await _flow(crm, "yearly", trigger)
    connection = await crm.connect("c1")
    await crm.settled(connection)
    instance = await _instance(crm, flow, connection)

    async def next_at() -> datetime | None:
        row = await _schedule(flows_db, crm.ws.id, instance)
        return None if row is None else row["next_at"]

    async def next_at_is(when: datetime) -> bool:
        return await next_at() == when

    now = datetime.now(UTC)
    first = _upcoming(now, 1, 5)  # midnight in New York (EST) on the next 1 January
    await eventually(lambda: next_at_is(first))
    missed = first.replace(year=first.year - 3)
    await flows_db.execute(
        "UPDATE flow_schedules SET next_at = $3 WHERE workspace_id = $1 AND flow_instance_id = $2",
        UUID(crm.ws.id),
        UUID(instance),
        missed,
    )  # as if every replica had been down for the last three ticks
    await eventually(lambda: next_at_is(first))
    [run] = await _runs(flows_db, crm.ws.id)
    assert _trigger(run)["type"] == "schedule"
    assert datetime.fromisoformat(run["trigger"]["tick"]) == missed
    assert run["dedupe_key"] == f"tick:{missed.isoformat()}"
    change = {"revision": 1, "trigger": {**trigger, "cron": "0 0 1 7 *"}}
    status, body = await crm.request("PATCH", f"/flows/{flow}", change)
    assert status == 200, body
    status, body = await crm.request("POST", f"/flow-instances/{instance}/upgrade")
    assert status == 200, body
    july = _upcoming(datetime.now(UTC), 7, 4)  # midnight in New York (EDT) on 1 July
    await eventually(lambda: next_at_is(july))
    assert len(await _runs(flows_db, crm.ws.id)) == 1


async def test_triggers_scheduler_reconcile_is_one_replica_at_a_time(
    stack: Stack, flows_db: asyncpg.Pool[Any]
) -> None:
    """While one replica reconciles, another's reconcile does nothing and says so."""
    scheduler = Scheduler(flows_db, FlowsOptions(), FAST)
    async with flows_db.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('tether.flows.schedules.reconcile'))"
        )
        assert await scheduler.reconcile_once() is None
    assert await scheduler.reconcile_once() is not None
