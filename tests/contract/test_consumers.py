"""Consumer-driven checks: what each service reads of another's replies and events is there.

The expectations below list the fields a consumer reads; the test drives the real
provider services and checks the real replies and events carry them. A new call or
subscription in the code without an expectation here fails too.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp

from libs.common.contracts import connections, flows, identity, instances
from libs.common.contracts.base import Context
from tests.conftest import SYSTEM, Stack, WorkspaceHandle, bearer
from tests.contract.calls import calls, consumes
from tests.fakes.webhook_app import FakeWebhookApp
from tests.instances.conftest import DATA_SOURCE, app_event_type

NOTIFIED = (
    connections.CONNECTION_CREATED,
    connections.CONNECTION_RECONNECTED,
    connections.CONNECTION_DISCONNECTED,
    connections.CONNECTION_ARCHIVED,
    connections.CONNECTION_ERROR,
    instances.DEPLOYMENT_COMPLETED,
    instances.DEPLOYMENT_FAILED,
    instances.ACTION_RUN_FAILED,
    instances.DATA_RECORD_CREATED,
    instances.DATA_RECORD_UPDATED,
    instances.DATA_RECORD_DELETED,
    flows.FLOW_RUN_QUEUED,
    flows.FLOW_RUN_STARTED,
    flows.FLOW_RUN_COMPLETED,
    flows.FLOW_RUN_FAILED,
    flows.FLOW_RUN_STOPPED,
    identity.CUSTOMER_CREATED,
    identity.CUSTOMER_UPDATED,
    identity.CUSTOMER_ARCHIVED,
)

# (consumer, subject) → the reply or event fields the consumer reads.
EXPECTATIONS: dict[tuple[str, str], list[str]] = {
    ("instances", connections.CONNECTIONS_GET.subject): [
        "id",
        "customerId",
        "integrationKey",
        "state",
    ],
    ("instances", connections.PROXY_REQUEST.subject): ["status", "headers", "body"],
    ("instances", flows.FLOW_INSTANCES_ENSURE.subject): [],
    ("instances", connections.INTEGRATIONS_GET.subject): [],
    ("instances", identity.CUSTOMERS_GET.subject): ["id", "name", "fields"],
    ("flows", instances.ACTION_INSTANCES_RUN_ON_CONNECTION.subject): [
        "output",
        "actionRunId",
        "replayed",
    ],
    ("flows", connections.CONNECTIONS_GET.subject): ["id", "customerId", "integrationKey"],
    ("flows", connections.INTEGRATIONS_GET.subject): [],
    ("flows", identity.CUSTOMERS_GET.subject): [],
    ("connections", identity.CUSTOMERS_ENSURE.subject): [],
    ("flows", instances.APP_EVENT_TYPES_GET.subject): ["integrationKey"],
    ("flows", instances.DATA_SOURCES_GET.subject): ["integrationKey"],
    ("flows", connections.PROXY_REQUEST.subject): ["status", "headers", "body"],
    ("flows", instances.RECORDS_LIST.subject): ["items", "cursor"],
    ("flows", instances.RECORDS_GET.subject): ["id", "data", "updatedAt"],
    ("flows", instances.RECORDS_CREATE.subject): ["id", "data", "updatedAt"],
    ("flows", instances.RECORDS_UPDATE.subject): ["id", "data", "updatedAt"],
    ("flows", instances.RECORDS_DELETE.subject): ["id", "deleted"],
    ("flows", instances.FIELD_MAPPING_INSTANCES_RUN_ON_CONNECTION.subject): ["output"],
    ("flows", instances.APP_EVENT_RECEIVED.subject): [
        "eventId",
        "workspaceId",
        "connectionId",
        "appEventTypeKey",
        "payload",
    ],
    **{
        ("flows", kind.subject): [
            "eventId",
            "workspaceId",
            "connectionId",
            "dataSourceKey",
            "recordId",
            "record",
        ]
        for kind in (
            instances.DATA_RECORD_CREATED,
            instances.DATA_RECORD_UPDATED,
            instances.DATA_RECORD_DELETED,
        )
    },
    ("gateway", identity.TOKEN_VERIFY.subject): [
        "workspaceId",
        "principal",
        "customerId",
        "expiresAt",
        "cacheUntil",
    ],
    ("gateway", identity.WORKSPACE_UPDATED.subject): ["workspaceId"],
    # notifications forwards every field; it reads the envelope to match and date the event.
    **{
        ("notifications", kind.subject): ["eventId", "workspaceId", "occurredAt"]
        for kind in NOTIFIED
    },
    ("gateway", identity.CUSTOMER_ARCHIVED.subject): ["workspaceId", "customerId"],
    ("gateway", identity.CUSTOMER_UPDATED.subject): ["workspaceId", "customerId"],
    ("gateway", identity.CUSTOMER_RESTORED.subject): ["workspaceId", "customerId"],
    **{("gateway", kind.subject): ["workspaceId", "connectionId"] for kind in connections.EVENTS},
    ("gateway", identity.TOKEN_VERIFICATION_KEYS.subject): [
        "workspaceId",
        "workspaceKey",
        "settings",
        "secrets",
        "publicKeys",
    ],
    **{
        ("instances", kind.subject): [
            "eventId",
            "workspaceId",
            "connectionId",
            "customerId",
            "integrationKey",
        ]
        for kind in (
            connections.CONNECTION_CREATED,
            connections.CONNECTION_RECONNECTED,
            connections.CONNECTION_DISCONNECTED,
            connections.CONNECTION_ARCHIVED,
        )
    },
}


def test_every_cross_service_call_has_expectations() -> None:
    wanted = {
        (svc, subject)
        for svc in ("identity", "connections", "instances", "flows", "notifications")
        for subject in calls(svc) | consumes(svc)
    }
    wanted |= {("gateway", s) for s in consumes("gateway")} | {
        ("gateway", identity.TOKEN_VERIFY.subject),
        ("gateway", identity.TOKEN_VERIFICATION_KEYS.subject),
    }
    assert wanted <= set(EXPECTATIONS), sorted(wanted - set(EXPECTATIONS))


async def _raw(stack: Stack, subject: str, body: dict[str, Any]) -> dict[str, Any]:
    msg = await stack.bus.nc.request(subject, json.dumps(body).encode(), timeout=10)
    assert not (msg.headers or {}).get("Nats-Service-Error-Code"), msg.data
    return dict(json.loads(msg.data))


def _has(reply: dict[str, Any], fields: list[str], what: str) -> None:
    missing = [f for f in fields if f not in reply]
    assert not missing, f"{what} lacks {missing}: {sorted(reply)}"


async def test_providers_answer_what_consumers_read(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = bearer(await workspace.admin_token())

    async def api(method: str, path: str, body: object = None) -> Any:
        async with http.request(method, workspace.url(path), json=body, headers=admin) as resp:
            assert resp.status < 300, await resp.text()
            return await resp.json()

    async with FakeWebhookApp(api_key="contract-key") as app:
        await api("POST", "/integrations", app.integration())
        await api("POST", "/app-event-types", app_event_type())
        await api("POST", "/data-sources", DATA_SOURCE)
        await api("POST", "/customers", {"id": "cust"})
        connection = await api(
            "POST",
            "/connections",
            {
                "customerId": "cust",
                "integrationKey": "crm",
                "credentials": {"apiKey": "contract-key"},
            },
        )
        await api(
            "POST",
            "/actions",
            {
                "key": "fields",
                "level": "app",
                "integrationKey": "crm",
                "name": "Fields",
                "request": {"path": "/fields"},
            },
        )
        await api(
            "POST", "/action-instances", {"actionKey": "fields", "connectionId": connection["id"]}
        )
        system = Context(workspace_id=workspace.id, principal="system").model_dump(
            mode="json", by_alias=True
        )
        admin_ctx = {**system, "principal": "admin"}
        requests: list[tuple[str, dict[str, Any]]] = [
            (connections.CONNECTIONS_GET.subject, {"id": connection["id"], "ctx": admin_ctx}),
            (
                connections.PROXY_REQUEST.subject,
                {"id": connection["id"], "method": "GET", "path": "/fields", "ctx": system},
            ),
            (
                flows.FLOW_INSTANCES_ENSURE.subject,
                {
                    "connectionId": connection["id"],
                    "customerId": "cust",
                    "integrationKey": "crm",
                    "ctx": system,
                },
            ),
            (connections.INTEGRATIONS_GET.subject, {"key": "crm", "ctx": admin_ctx}),
            (identity.CUSTOMERS_GET.subject, {"id": "cust", "ctx": admin_ctx}),
            (identity.CUSTOMERS_ENSURE.subject, {"id": "cust", "ctx": system}),
            (instances.APP_EVENT_TYPES_GET.subject, {"key": "contact-created", "ctx": admin_ctx}),
            (instances.DATA_SOURCES_GET.subject, {"key": "contacts", "ctx": admin_ctx}),
            (
                instances.ACTION_INSTANCES_RUN_ON_CONNECTION.subject,
                {
                    "actionKey": "fields",
                    "connectionId": connection["id"],
                    "idempotencyKey": "contract-run",
                    "ctx": system,
                },
            ),
            (
                identity.TOKEN_VERIFY.subject,
                {"token": await workspace.customer_token("cust"), "ctx": {}},
            ),
        ]
        replies = {subject: await _raw(stack, subject, body) for subject, body in requests}
    assert base64.b64decode(replies[connections.PROXY_REQUEST.subject]["body"])
    pool_connections, pool_identity = await stack.pool("connections"), await stack.pool("identity")
    try:
        await api("DELETE", "/customers/cust")
        await api("PATCH", "/workspace", {"name": "renamed"})
        events: dict[str, dict[str, Any]] = {}
        for pool in (pool_connections, pool_identity):
            for row in await pool.fetch(
                "SELECT subject, payload FROM outbox WHERE workspace_id = $1", workspace.id
            ):
                events.setdefault(row["subject"], row["payload"])
    finally:
        await pool_connections.close()
        await pool_identity.close()
    for (consumer, subject), fields in EXPECTATIONS.items():
        if subject in replies:
            _has(replies[subject], fields, f"{subject} (read by {consumer})")
        elif subject in events:
            _has(events[subject], fields, f"{subject} (read by {consumer})")
    produced = set(replies) | set(events)
    for subject in (
        connections.CONNECTION_CREATED.subject,
        identity.CUSTOMER_ARCHIVED.subject,
        identity.WORKSPACE_UPDATED.subject,
    ):
        assert subject in produced, subject
    assert SYSTEM.principal == "system"
