"""Deployments: on connection, idempotent redeploys, retries, permanent failures, teardown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from services.instances import lifecycle
from services.instances.settings import InstancesOptions
from services.instances.store.connections import KnownConnection
from tests.conftest import Stack, eventually
from tests.instances.conftest import Crm, app_event_type, wait_for


async def test_deploy_on_connection_created(crm: Crm, stack: Stack) -> None:
    connection_id = await crm.connect("cust-1")
    deployment = await crm.settled(connection_id)
    assert deployment["status"] == "succeeded", deployment
    assert (deployment["stepsTotal"], deployment["stepsDone"]) == (3, 3)
    assert deployment["reason"] == "connection.created"
    assert {s["kind"] for s in deployment["steps"]} == {"subscribe", "data_source", "flows"}
    assert deployment["startedAt"]
    assert deployment["finishedAt"]
    [sub] = await crm.subscriptions(connection_id)
    assert sub["status"] == "active"
    [at_app] = crm.app.subscriptions.values()
    assert sub["externalId"] == at_app["id"]
    assert at_app["url"] == sub["webhookUrl"]
    assert at_app["connection"] == connection_id
    assert at_app["secret"]  # a per-subscription signing secret went to the app
    _status, page = await crm.request("GET", f"/data-source-instances?connectionId={connection_id}")
    [instance] = page["items"]
    assert instance["status"] == "ready"
    assert instance["state"] == "c-3"
    assert instance["fieldsSchema"] == {
        "type": "object",
        "properties": {
            "email": {"type": "string", "title": "Email"},
            "age": {"type": "integer", "title": "Age"},
            "vip": {"type": "boolean", "title": "VIP"},
        },
        "required": ["email"],
    }
    pool = await stack.pool("instances")
    try:
        events = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = 'tether.evt.instances.deployment.completed'"
            " AND payload->>'deploymentId' = $1",
            deployment["id"],
        )
    finally:
        await pool.close()
    assert events == 1


async def test_redeploy_twice_keeps_one_subscription(crm: Crm) -> None:
    connection_id = await crm.connect("cust-2")
    await crm.settled(connection_id)
    for n in (2, 3):
        status, started = await crm.request("POST", f"/connections/{connection_id}/deploy")
        assert status == 201, started
        assert (await crm.settled(connection_id, count=n))["status"] == "succeeded"
    assert crm.app.subscribe_calls == 1
    assert len(crm.app.subscriptions) == 1
    assert len(await crm.subscriptions(connection_id)) == 1
    status, page = await crm.request("GET", f"/connections/{connection_id}/deployments")
    assert status == 200
    assert [d["status"] for d in page["items"]] == ["succeeded"] * 3


async def test_transient_failures_retry_then_succeed(crm: Crm) -> None:
    crm.app.subscribe_failures = [500, 500]
    connection_id = await crm.connect("cust-3")
    deployment = await crm.settled(connection_id)
    assert deployment["status"] == "succeeded"
    [subscribe] = [s for s in deployment["steps"] if s["kind"] == "subscribe"]
    assert subscribe["attempts"] == 3
    assert crm.app.subscribe_calls == 3
    assert len(crm.app.subscriptions) == 1


async def test_permanent_failure_then_fixed_definition(crm: Crm) -> None:
    crm.app.reject_events = {"contact.created"}
    connection_id = await crm.connect("cust-4")
    deployment = await crm.settled(connection_id)
    assert deployment["status"] == "partial"  # the data source still deployed
    [subscribe] = [s for s in deployment["steps"] if s["kind"] == "subscribe"]
    assert subscribe["status"] == "failed"
    assert subscribe["attempts"] == 1  # a 4xx is not retried
    assert subscribe["error"] == "the app answered 400: unknown event type: contact.created"
    [sub] = await crm.subscriptions(connection_id)
    assert sub["status"] == "failed"
    fixed = app_event_type()["subscribe"]
    fixed["body"] = {**fixed["body"], "events": ["contact.added"]}
    status, _ = await crm.request("PATCH", "/app-event-types/contact-created", {"subscribe": fixed})
    assert status == 200
    status, fan_out = await crm.request("POST", "/app-event-types/contact-created/deploy")
    assert (status, fan_out["deployments"]) == (202, 1)
    assert (await crm.settled(connection_id, count=2))["status"] == "succeeded"
    [sub] = await crm.subscriptions(connection_id)
    assert sub["status"] == "active"
    assert len(crm.app.subscriptions) == 1


async def test_archive_unsubscribes_and_archives_instances(crm: Crm) -> None:
    connection_id = await crm.connect("cust-5")
    await crm.settled(connection_id)
    assert len(crm.app.subscriptions) == 1
    status, _ = await crm.request("DELETE", f"/connections/{connection_id}")
    assert status == 200
    teardown = await crm.settled(connection_id, count=2)
    assert (teardown["reason"], teardown["status"]) == ("connection.archived", "succeeded")
    assert crm.app.subscriptions == {}
    assert crm.app.unsubscribe_calls == 1
    [sub] = await crm.subscriptions(connection_id)
    assert sub["status"] == "unsubscribed"
    _, page = await crm.request("GET", f"/data-source-instances?connectionId={connection_id}")
    assert [i["status"] for i in page["items"]] == ["archived"]


async def test_newer_deployment_supersedes_unfinished_one(crm: Crm) -> None:
    crm.app.subscribe_failures = [500] * 3  # keep the first deployment busy retrying
    connection_id = await crm.connect("cust-6")
    await wait_for(lambda: crm.app.subscribe_calls >= 1)
    status, second = await crm.request("POST", f"/connections/{connection_id}/deploy")
    assert status == 201
    final = await crm.settled(connection_id, count=2)
    assert final["id"] == second["id"]
    assert final["status"] == "succeeded"
    items = await crm.deployments(connection_id)
    first: dict[str, Any] = items[-1]
    assert (first["status"], first["supersededBy"]) == ("cancelled", second["id"])
    assert len(crm.app.subscriptions) == 1


async def test_fan_out_redeploys_every_connection_with_progress(crm: Crm) -> None:
    ids = [await crm.connect(f"fan-{i}") for i in range(5)]
    for connection_id in ids:
        await crm.settled(connection_id)
    status, fan_out = await crm.request("POST", "/data-sources/contacts/deploy")
    assert (status, fan_out["deployments"]) == (202, 5)
    for connection_id in ids:
        await crm.settled(connection_id, count=2)
    status, page = await crm.request("GET", "/deployments?integrationKey=crm&limit=5")
    assert status == 200
    assert len(page["items"]) == 5
    assert page["stepsTotal"] == page["stepsDone"] == 15
    assert page["cursor"] is not None
    status, rest = await crm.request(
        "GET", f"/deployments?integrationKey=crm&cursor={page['cursor']}"
    )
    assert len(rest["items"]) == 5
    assert {d["id"] for d in rest["items"]}.isdisjoint({d["id"] for d in page["items"]})
    assert crm.app.subscribe_calls == 5  # data-source fan-out changed no subscription


async def test_refresh_schema_fetches_again(crm: Crm) -> None:
    connection_id = await crm.connect("cust-7")
    await crm.settled(connection_id)
    _, page = await crm.request("GET", f"/data-source-instances?connectionId={connection_id}")
    instance_id = page["items"][0]["id"]
    crm.app.fields = [{"key": "name", "kind": "string", "title": "Name", "mandatory": True}]
    status, fresh = await crm.request(
        "POST", f"/data-source-instances/{instance_id}/refresh-schema"
    )
    assert status == 200, fresh
    assert fresh["fieldsSchema"]["properties"] == {"name": {"type": "string", "title": "Name"}}


async def test_element_definitions_bad_input(crm: Crm) -> None:
    for body, field in (
        ({**app_event_type(key="x1"), "eventsPath": "[[bad"}, "eventsPath"),
        (
            {**app_event_type(key="x2"), "subscribe": {"path": "no-slash", "idPath": "id"}},
            "subscribe.path",
        ),
        ({**app_event_type(key="Bad Key")}, "key"),
    ):
        status, error = await crm.request("POST", "/app-event-types", body)
        assert status == 422, error
        assert field in error["error"]["message"], error
    status, _ = await crm.request("POST", "/app-event-types", app_event_type())
    assert status == 409
    status, _ = await crm.request("GET", "/app-event-types/nope")
    assert status == 404
    status, listed = await crm.request("GET", "/app-event-types?integrationKey=crm")
    assert [t["key"] for t in listed["items"]] == ["contact-created"]
    assert listed["items"][0]["staticSecretSet"] is False


async def test_crashing_step_counts_attempts_then_fails(crm: Crm) -> None:
    """A step that raises something unexpected retries with backoff, then fails at the cap."""
    # A NUL in a field label cannot be stored in jsonb: saving the schema raises a database
    # error, not a StepFailure (the test stack allows 4 attempts).
    crm.app.fields = [{"key": "email", "kind": "string", "title": "E\x00mail", "mandatory": True}]
    connection_id = await crm.connect("cust-crash")
    deployment = await crm.settled(connection_id, timeout=30)
    assert deployment["status"] == "partial", deployment
    [step] = [s for s in deployment["steps"] if s["kind"] == "data_source"]
    assert (step["status"], step["attempts"]) == ("failed", 4), step
    assert step["error"].startswith("internal error"), step
    others = [s["status"] for s in deployment["steps"] if s["kind"] != "data_source"]
    assert others == ["succeeded", "succeeded"]


def _unknown_to_connections() -> KnownConnection:
    """Return a connected connection of a new workspace that the connections service never saw."""
    return KnownConnection(
        workspace_id=uuid4(),
        id=uuid4(),
        customer_id="c",
        integration_key="crm",
        state="connected",
        state_at=datetime.now(UTC),
    )


async def test_step_whose_worker_always_dies_fails_at_the_cap(stack: Stack) -> None:
    """A step leased more times than allowed (its worker died each time) is not run again."""
    known = _unknown_to_connections()
    pool = await stack.pool("instances")
    try:
        async with pool.acquire() as conn, conn.transaction():
            # The test stack allows 4 attempts: the 4th worker died holding the lease.
            options = InstancesOptions(step_max_attempts=4)
            record = await lifecycle.start(conn, known, "requested", options=options)
            await conn.execute(
                "UPDATE jobs SET status = 'running', attempts = 4,"
                " lease_owner = 'dead-worker', lease_until = now() - interval '1 second'"
                " WHERE id IN (SELECT id FROM deployment_steps WHERE deployment_id = $1)",
                record.id,
            )

        async def finished() -> bool:
            status = await pool.fetchval("SELECT status FROM deployments WHERE id = $1", record.id)
            return bool(status == "failed")

        await eventually(finished)
        step = await pool.fetchrow(
            "SELECT status, attempts, error FROM deployment_steps WHERE deployment_id = $1",
            record.id,
        )
    finally:
        await pool.close()
    assert step is not None
    assert (step["status"], step["attempts"]) == ("failed", 5)
    assert step["error"] == "gave up: the step never finished"


async def test_superseded_step_is_not_run_again_when_its_lease_ends(stack: Stack) -> None:
    """A step running when its deployment was superseded is cancelled, not re-run, after a crash."""
    known = _unknown_to_connections()
    options = InstancesOptions(step_max_attempts=4)
    pool = await stack.pool("instances")
    try:
        async with pool.acquire() as conn, conn.transaction():
            first = await lifecycle.start(conn, known, "requested", options=options)
            # Its worker died holding the step's lease; a newer deployment supersedes it.
            await conn.execute(
                "UPDATE jobs SET status = 'running', attempts = 1,"
                " lease_owner = 'dead-worker', lease_until = now() - interval '1 second'"
                " WHERE id IN (SELECT id FROM deployment_steps WHERE deployment_id = $1)",
                first.id,
            )
            await conn.execute(
                "UPDATE deployment_steps SET status = 'running', attempts = 1"
                " WHERE deployment_id = $1",
                first.id,
            )
            second = await lifecycle.start(conn, known, "requested", options=options)

        async def finished() -> bool:
            status = await pool.fetchval("SELECT status FROM deployments WHERE id = $1", second.id)
            return bool(status == "failed")  # the connection is unknown to connections

        await eventually(finished)
        step = await pool.fetchrow(
            "SELECT status, attempts, error FROM deployment_steps WHERE deployment_id = $1",
            first.id,
        )
        deployment = await pool.fetchrow(
            "SELECT status, superseded_by FROM deployments WHERE id = $1", first.id
        )
    finally:
        await pool.close()
    assert step is not None
    assert deployment is not None
    assert (step["status"], step["attempts"]) == ("cancelled", 2)
    assert step["error"] == lifecycle.NO_LONGER_ACTIVE
    assert (deployment["status"], deployment["superseded_by"]) == ("cancelled", second.id)
