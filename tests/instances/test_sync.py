"""Syncs: full and incremental passes in every pagination style, change detection, the brake."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from libs.common.contracts import instances as c
from libs.common.db import create_pool
from services.instances.settings import InstancesOptions
from services.instances.sync_schedule import schedule_due
from tests.conftest import eventually
from tests.fakes.fake_crm import STYLES
from tests.instances.conftest import Crm, app_event_type
from tests.instances.test_records import DataEnv, data_env

__all__ = ["data_env"]


def verbs(events: list[tuple[str, dict[str, Any]]]) -> Counter[str]:
    """Count events by verb."""
    return Counter(verb for verb, _ in events)


@pytest.mark.parametrize("style", STYLES)
async def test_sync_full_detects_creates_updates_deletes(data_env: DataEnv, style: str) -> None:
    await data_env.define(style)
    instance_id = await data_env.connect()
    first = await data_env.sync(instance_id)
    assert first["status"] == "completed", first
    assert (first["created"], first["updated"], first["deleted"]) == (12, 0, 0)
    assert first["pages"] >= 3
    assert first["records"] == 12
    events = await data_env.events()
    assert verbs(events) == {"created": 12}
    sample = events[0][1]
    assert sample["dataSourceKey"] == "contacts"
    assert sample["dataSourceInstanceId"] == instance_id
    assert sample["customerId"] == "cust"
    assert sample["integrationKey"] == "crm"
    assert sample["record"]["id"] == sample["recordId"]
    ids = list(data_env.crm.contacts)
    data_env.crm.touch(ids[:2])
    data_env.crm.remove(ids[2:3])
    [added] = data_env.crm.add(1)
    second = await data_env.sync(instance_id)
    assert (second["created"], second["updated"], second["deleted"]) == (1, 2, 1), second
    events = await data_env.events()
    assert verbs(events) == {"created": 13, "updated": 2, "deleted": 1}
    [deleted] = [p for v, p in events if v == "deleted"]
    assert deleted["recordId"] == ids[2]
    assert deleted["record"] is None
    stored = {r["id"]: r for r in await data_env.synced(instance_id)}
    assert len(stored) == 13
    assert stored[ids[2]]["deletedAt"] is not None
    assert stored[added]["deletedAt"] is None
    assert stored[ids[0]]["data"]["name"].endswith("!")
    assert stored[ids[0]]["updatedAt"]
    assert stored[ids[0]]["firstSeenAt"]
    third = await data_env.sync(instance_id)  # nothing changed: nothing emitted
    assert (third["created"], third["updated"], third["deleted"]) == (0, 0, 0), third
    assert len(await data_env.events()) == 16


async def test_sync_incremental_asks_for_changes_only(data_env: DataEnv) -> None:
    await data_env.define("cursor", sync={"intervalMinutes": 1440, "mode": "incremental"})
    instance_id = await data_env.connect()
    first = await data_env.sync(instance_id)
    assert first["mode"] == "incremental", first
    assert first["created"] == 12, first
    ids = list(data_env.crm.contacts)
    data_env.crm.list_queries.clear()
    data_env.crm.touch(ids[:2])
    data_env.crm.remove(ids[5:9])  # an incremental pass never deletes
    second = await data_env.sync(instance_id)
    assert (second["created"], second["updated"], second["deleted"]) == (0, 2, 0), second
    assert second["records"] == 2
    assert all("updated_since" in q for q in data_env.crm.list_queries)
    assert verbs(await data_env.events()) == {"created": 12, "updated": 2}
    live = [r for r in await data_env.synced(instance_id) if r["deletedAt"] is None]
    assert len(live) == 12


async def test_sync_synced_records_changed_since(data_env: DataEnv) -> None:
    await data_env.define()
    instance_id = await data_env.connect()
    first = await data_env.sync(instance_id)
    ids = list(data_env.crm.contacts)
    data_env.crm.touch(ids[3:5])
    await data_env.sync(instance_id)
    since = first["endedAt"].replace("+", "%2B")
    changed = await data_env.synced(instance_id, f"&changedSince={since}")
    assert sorted(r["id"] for r in changed) == ids[3:5]
    every = await data_env.synced(instance_id)
    assert [r["id"] for r in every][-2:] == [r["id"] for r in changed]  # by lastModifiedAt


async def test_sync_mass_delete_is_held_until_an_admin_decides(data_env: DataEnv) -> None:
    await data_env.define()
    instance_id = await data_env.connect("owner")
    await data_env.sync(instance_id)
    ids = list(data_env.crm.contacts)
    data_env.crm.remove(ids[:7])  # 7 of 12: over the 50 % threshold
    held = await data_env.sync(instance_id)
    assert held["status"] == "held", held
    assert (held["wouldDelete"], held["liveRecords"], held["deleted"]) == (7, 12, 0)
    view = await data_env.instance(instance_id)
    assert view["syncState"] == "held"
    status, listed = await data_env.request("GET", "/data-source-instances")
    assert status == 200, listed
    [row] = [i for i in listed["items"] if i["id"] == instance_id]
    assert (row["syncState"], row["lastPass"]["status"]) == ("held", "held")  # the list says so too
    assert verbs(await data_env.events()) == {"created": 12}  # nothing deleted
    base = f"/data-source-instances/{instance_id}/sync"
    status, body = await data_env.request("POST", base)
    assert status == 409, body
    assert body["error"]["code"] == "sync_held", body
    owner = {"Authorization": f"Bearer {await data_env.ws.customer_token('owner')}"}
    status, body = await data_env.request("POST", f"{base}/confirm", headers=owner)
    assert status == 403, body
    status, body = await data_env.request("POST", f"{base}/discard")
    assert status == 200, body
    assert body["syncState"] == "idle", body
    assert body["lastPass"]["status"] == "discarded"
    live = [r for r in await data_env.synced(instance_id) if r["deletedAt"] is None]
    assert len(live) == 12
    again = await data_env.sync(instance_id)
    assert again["status"] == "held", again
    status, body = await data_env.request("POST", f"{base}/confirm")
    assert status == 200, body
    assert body["lastPass"]["status"] == "completed", body
    assert body["lastPass"]["deleted"] == 7
    events = await data_env.events()
    assert verbs(events) == {"created": 12, "deleted": 7}
    assert sorted(p["recordId"] for v, p in events if v == "deleted") == sorted(ids[:7])
    status, body = await data_env.request("POST", f"{base}/confirm")
    assert status == 409, body
    assert body["error"]["code"] == "sync_not_held", body


async def test_sync_failed_pass_deletes_nothing(data_env: DataEnv) -> None:
    await data_env.define()
    instance_id = await data_env.connect()
    await data_env.sync(instance_id)
    data_env.crm.remove(list(data_env.crm.contacts)[:3])
    # The first page answers, the second is refused: the pass fails, nothing is deleted.
    data_env.crm.list_queries.clear()
    original = data_env.crm._gatekeep

    async def refuse_second(request: Any) -> Any:
        if len(data_env.crm.list_queries) == 1:
            data_env.crm.fail_lists = [403]
        return await original(request)

    data_env.crm._gatekeep = refuse_second  # type: ignore[method-assign]
    failed = await data_env.sync(instance_id)
    assert failed["status"] == "failed", failed
    assert "403" in failed["error"], failed
    assert (await data_env.instance(instance_id))["syncState"] == "failed"
    assert verbs(await data_env.events()) == {"created": 12}


async def test_sync_schedule_enqueues_once_across_replicas(data_env: DataEnv) -> None:
    await data_env.define(sync={"intervalMinutes": 60, "mode": "full"})
    instance_id = await data_env.connect()
    pool = await create_pool(data_env.ws.stack.infra.database_url, "instances", max_size=3)
    options = InstancesOptions(sync_schedule_batch=1000)
    try:

        async def look() -> None:
            async with pool.acquire() as conn, conn.transaction():
                await schedule_due(conn, options)

        await look()  # this test's replica, or the stack's own loop, schedules the first pass
        await look()
        jobs = await pool.fetch(
            "SELECT dedupe_key FROM jobs WHERE queue = 'syncs' AND partition_key = $1"
            " AND dedupe_key IS NOT NULL",
            instance_id,
        )
        due = await pool.fetchval(
            "SELECT next_due_at - now() FROM data_source_syncs WHERE instance_id = $1",
            instance_id,
        )
    finally:
        await pool.close()
    assert len(jobs) == 1, jobs
    assert due.total_seconds() > 3000  # the next pass is an interval away


async def test_sync_webhook_events_become_record_events(crm: Crm) -> None:
    """An app-event type with recordEvent turns each delivered event into a record change."""
    env = crm
    body = app_event_type(
        recordEvent={
            "dataSourceKey": "contacts",
            "type": "updated",
            "idPath": "contact.id",
            "recordPath": "contact",
        }
    )
    status, created = await env.request(
        "PATCH", "/app-event-types/contact-created", {"recordEvent": body["recordEvent"]}
    )
    assert status == 200, created
    assert created["recordEvent"]["idPath"] == "contact.id", created
    status, gone = await env.request(
        "POST",
        "/app-event-types",
        app_event_type(
            key="contact-deleted",
            subscribe={
                **body["subscribe"],
                "body": {**body["subscribe"]["body"], "events": ["contact.deleted"]},
            },
            recordEvent={"dataSourceKey": "contacts", "type": "deleted", "idPath": "contact.id"},
        ),
    )
    assert status == 201, gone
    connection_id = await env.connect("hooked")
    await env.settled(connection_id)
    subs = {s["appEventTypeKey"]: s["externalId"] for s in await env.subscriptions(connection_id)}
    contact = {"id": "p1", "email": "p1@example.com"}
    for n, payload in enumerate(
        [
            {"events": [{"type": "contact.updated", "contact": contact}]},
            {"events": [{"type": "contact.updated", "contact": contact}]},  # unchanged
            {"events": [{"type": "contact.updated", "contact": {**contact, "vip": True}}]},
        ]
    ):
        delivered = await env.app.deliver(
            env.http, subs["contact-created"], payload, delivery_id=f"d{n}"
        )
        assert delivered.status == 202, delivered
    delivered = await env.app.deliver(
        env.http, subs["contact-deleted"], {"events": [{"contact": {"id": "p1"}}]}, delivery_id="x"
    )
    assert delivered.status == 202, delivered
    pool = await env.ws.stack.pool("instances")
    try:

        async def handled() -> bool:  # the 202 means queued: each delivery is one app event
            received = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE workspace_id = $1 AND subject = $2",
                env.ws.id,
                c.APP_EVENT_RECEIVED.subject,
            )
            return bool(received == 4)

        await eventually(handled)
        rows = await pool.fetch(
            "SELECT subject, payload FROM outbox WHERE workspace_id = $1"
            " AND subject LIKE 'tether.evt.instances.data_record.%' ORDER BY created_at, id",
            env.ws.id,
        )
    finally:
        await pool.close()
    kinds = [(r["subject"].rsplit(".", 1)[-1], r["payload"]["recordId"]) for r in rows]
    assert kinds == [("created", "p1"), ("updated", "p1"), ("deleted", "p1")]
    assert rows[1]["payload"]["record"]["vip"] is True
    assert rows[0]["payload"]["connectionId"] == connection_id


def test_sync_contract_reexports_the_data_record_models() -> None:
    assert c.RECORDS_LIST.subject == "tether.instances.records.list"
    assert c.SYNCS_START in c.OPERATIONS
    assert c.DATA_SOURCE_INSTANCES_GET in c.OPERATIONS
