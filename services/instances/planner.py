"""Plan a deployment: the steps that bring one connection in line with the definitions."""

from __future__ import annotations

from uuid import uuid4

from libs.common.contracts import instances as c
from libs.common.db import Conn
from libs.common.outbox import emit
from services.instances import store
from services.instances.store import DeploymentRecord, KnownConnection


async def plan(
    conn: Conn, known: KnownConnection, *, teardown: bool = False
) -> list[tuple[str, str]]:
    """Return (kind, element key) steps: subscribe / unsubscribe / data_source."""
    live = await store.live_subscription_keys(conn, known.workspace_id, known.id)
    if teardown:
        return [("unsubscribe", key) for key in sorted(live)] + [("flows", "archive")]
    types = [
        t.key
        for t in await store.list_app_event_types(conn, known.workspace_id, known.integration_key)
    ]
    sources = [
        d.key
        for d in await store.list_data_sources(conn, known.workspace_id, known.integration_key)
    ]
    return (
        [("subscribe", key) for key in types]
        + [("unsubscribe", key) for key in sorted(live - set(types))]
        + [("data_source", key) for key in sources]
        + [("flows", "ensure")]
    )


async def start(
    conn: Conn, known: KnownConnection, reason: str, *, teardown: bool = False
) -> DeploymentRecord:
    """Start a deployment in the caller's transaction, cancelling older unfinished ones."""
    deployment_id = uuid4()
    await store.supersede(conn, known.workspace_id, known.id, deployment_id)
    steps = await plan(conn, known, teardown=teardown)
    if teardown:
        await store.archive_data_source_instances(conn, known.workspace_id, known.id)
    record = await store.insert_deployment(
        conn, deployment_id, known, reason, steps, [uuid4() for _ in steps]
    )
    if not steps:
        await announce(conn, record)
    return record


async def announce(conn: Conn, record: DeploymentRecord) -> None:
    """Emit deployment.completed (succeeded, partial) or deployment.failed."""
    kind = c.DEPLOYMENT_FAILED if record.status == "failed" else c.DEPLOYMENT_COMPLETED
    await emit(
        conn,
        kind,
        c.DeploymentEvent(
            workspace_id=record.workspace_id,
            deployment_id=record.id,
            connection_id=record.connection_id,
            status=record.status,
        ),
    )
