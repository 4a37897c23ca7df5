"""The one routing table: (method, path) → contract, auth, status.

A request goes from a route to its handler in two hops: the route names an operation,
whose subject ``tether.<service>.<resource>.<op>`` is answered by ``<op>`` in
``services/<service>/<resource>.py`` (``tether routes`` prints the whole chain;
``tests/gateway/test_routes.py`` holds every route to it).

Authentication, before any route's operation is called (``auth.py``):

1. The gateway looks the bearer token up in its cache of verified tokens (by SHA-256);
   a hit costs no bus hop.
2. On a miss it verifies the token itself (signature, algorithm, times, claims: the rules
   of ``libs/common/token_rules.py``, which identity applies too) with the workspace's
   verification keys, kept per replica (``tether.identity.tokens.verification_keys``,
   dropped on ``workspace.updated``; keys that refuse a token are fetched again first).
3. Only a customer seen for the first time, or whose name or fields in the token changed
   (a digest of them is kept per customer, dropped on ``customer.updated|archived``),
   costs a call to ``tether.identity.tokens.verify``: identity creates the customer on
   first sight (``customer.created``), updates its name and fields when they differ, and
   refuses an archived one (403 ``customer_archived``). That call is idempotent, which is
   why the gateway may retry it; concurrent first requests share it.
4. The verified principal is cached until the token expires (or the previous secret's
   grace ends), and the route's ``Auth`` decides whether that principal may call it.

A route marked ``keep`` (``GET /customers/me``, credentials) is then answered from the
reply this replica keeps of its object, if the owning service allowed it and no change
dropped it (``kept_replies.py``); a route marked ``drops`` drops it here at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from libs.common.contracts import connections, flows, identity, instances, notifications, schemas
from libs.common.contracts.base import Operation


class Auth(Enum):
    """Who may call a route."""

    PUBLIC = "public"
    ADMIN = "admin"
    CUSTOMER = "customer"
    ANY = "any"  # an admin or a customer token


Drops = Literal["customer", "archived_customer", "connection", "workspace"]
"""What a successful call changes, for the gateway to drop what it keeps of it (``Route.drops``)."""


@dataclass(frozen=True)
class Route:
    """One HTTP route served by one operation."""

    method: str
    path: str
    op: Operation[Any, Any]
    auth: Auth
    tag: str
    status: int = 200
    kind: Literal["json", "page", "proxy", "webhook"] = "json"
    keep: Literal["customer", "connection"] | None = None
    """The reply is about one object, the calling customer or the ``{id}`` connection: the
    gateway may keep it and answer again without a hop (``kept_replies.py``)."""
    drops: Drops | None = None
    """A successful call changes the ``{id}`` customer or connection (or the workspace):
    this replica drops what it keeps of it at once, before the change's event arrives
    (for an archived customer, its verified tokens too: the next one is refused here)."""

    @property
    def takes_body(self) -> bool:
        """Tell whether non-path fields come from the JSON body (else from the query)."""
        return self.method in ("POST", "PUT", "PATCH")

    @property
    def path_params(self) -> tuple[str, ...]:
        """Return the ``{name}`` parameters of the path."""
        return tuple(
            part[1:-1].split(":")[0] for part in self.path.split("/") if part.startswith("{")
        )

    @property
    def openapi_path(self) -> str:
        """Return the path as OpenAPI writes it (no aiohttp regexes)."""
        return "/".join(
            "{" + part[1:-1].split(":")[0] + "}" if part.startswith("{") else part
            for part in self.path.split("/")
        )


_CUSTOMER_WRITES: tuple[tuple[str, str, Operation[Any, Any], Drops], ...] = (
    ("PATCH", "", identity.CUSTOMERS_PATCH, "customer"),
    ("PUT", "", identity.CUSTOMERS_PUT, "customer"),
    ("DELETE", "", identity.CUSTOMERS_ARCHIVE, "archived_customer"),
    ("POST", "/restore", identity.CUSTOMERS_RESTORE, "customer"),
)


def _customer_routes(base: str, tag: str) -> tuple[Route, ...]:
    """Return the customer routes under ``base`` (``/customers``, and ``/users`` as an alias)."""
    return (
        Route("GET", base, identity.CUSTOMERS_LIST, Auth.ADMIN, tag),
        Route("POST", base, identity.CUSTOMERS_CREATE, Auth.ADMIN, tag, status=201),
        Route("GET", f"{base}/me", identity.CUSTOMERS_ME, Auth.CUSTOMER, tag, keep="customer"),
        Route("GET", f"{base}/{{id}}", identity.CUSTOMERS_GET, Auth.ANY, tag),
        *(
            Route(method, f"{base}/{{id}}{tail}", op, Auth.ADMIN, tag, drops=drops)
            for method, tail, op, drops in _CUSTOMER_WRITES
        ),
    )


ResourceRow = (
    tuple[str, str, Operation[Any, Any], Auth] | tuple[str, str, Operation[Any, Any], Auth, int]
)
"""One route of a resource: method, path under the resource, operation, who may call[, status]."""


def _resource(
    base: str,
    tag: str,
    *rows: ResourceRow,
    marks: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> tuple[Route, ...]:
    """Return the routes of one resource under ``base``, all tagged ``tag`` (JSON in and out).

    ``marks`` adds fields (``keep``, ``drops``) to the rows named by (method, path).
    """
    marks = marks or {}
    return tuple(
        Route(
            row[0],
            base + row[1],
            row[2],
            row[3],
            tag,
            row[4] if len(row) == 5 else 200,
            **marks.get((row[0], row[1]), {}),
        )
        for row in rows
    )


def _element_routes(base: str, *ops: Operation[Any, Any]) -> tuple[Route, ...]:
    """Return the admin CRUD routes of one kind of element definition, plus its fan-out."""
    list_op, create_op, get_op, patch_op, delete_op, deploy_op = ops
    tag = base.strip("/")
    return (
        Route("GET", base, list_op, Auth.ADMIN, tag),
        Route("POST", base, create_op, Auth.ADMIN, tag, status=201),
        Route("GET", f"{base}/{{key}}", get_op, Auth.ADMIN, tag),
        Route("PATCH", f"{base}/{{key}}", patch_op, Auth.ADMIN, tag),
        Route("DELETE", f"{base}/{{key}}", delete_op, Auth.ADMIN, tag),
        Route("POST", f"{base}/{{key}}/deploy", deploy_op, Auth.ADMIN, tag, status=202),
    )


ROUTES: tuple[Route, ...] = (
    Route("POST", "/console/session", identity.CONSOLE_SESSION, Auth.PUBLIC, "console"),
    Route("GET", "/workspace", identity.WORKSPACE_GET, Auth.ADMIN, "workspace"),
    Route(
        "PATCH", "/workspace", identity.WORKSPACE_UPDATE, Auth.ADMIN, "workspace", drops="workspace"
    ),
    Route("POST", "/workspace/secret/rotate", identity.SECRET_ROTATE, Auth.ADMIN, "workspace"),
    Route(
        "POST",
        "/workspace/test-customer/token",
        identity.TEST_CUSTOMER_TOKEN,
        Auth.ADMIN,
        "workspace",
    ),
    *_customer_routes("/customers", "customers"),
    *_customer_routes("/users", "users"),
    Route("GET", "/integration-templates", connections.TEMPLATES_LIST, Auth.ANY, "integrations"),
    *_resource(
        "/integrations",
        "integrations",
        ("GET", "", connections.INTEGRATIONS_LIST, Auth.ANY),
        ("POST", "", connections.INTEGRATIONS_CREATE, Auth.ADMIN, 201),
        ("GET", "/{key}", connections.INTEGRATIONS_GET, Auth.ANY),
        ("PATCH", "/{key}", connections.INTEGRATIONS_PATCH, Auth.ADMIN),
        ("DELETE", "/{key}", connections.INTEGRATIONS_DELETE, Auth.ADMIN),
    ),
    Route(
        "POST",
        "/connect-sessions",
        connections.CONNECT_SESSION_CREATE,
        Auth.ANY,
        "connect",
        status=201,
    ),
    Route("GET", "/connect/{token}", connections.CONNECT_PAGE, Auth.PUBLIC, "connect", kind="page"),
    Route(
        "POST", "/connect/{token}", connections.CONNECT_PAGE, Auth.PUBLIC, "connect", kind="page"
    ),
    Route(
        "GET", "/oauth/callback", connections.OAUTH_CALLBACK, Auth.PUBLIC, "connect", kind="page"
    ),
    *_resource(
        "/connections",
        "connections",
        ("GET", "", connections.CONNECTIONS_LIST, Auth.ANY),
        ("POST", "", connections.CONNECTIONS_CREATE, Auth.ADMIN, 201),
        ("GET", "/{id}", connections.CONNECTIONS_GET, Auth.ANY),
        ("DELETE", "/{id}", connections.CONNECTIONS_ARCHIVE, Auth.ANY),
        ("POST", "/{id}/refresh", connections.CONNECTIONS_REFRESH, Auth.ANY),
        ("POST", "/{id}/test", connections.CONNECTIONS_TEST, Auth.ANY),
        ("GET", "/{id}/credentials", connections.CREDENTIALS_GET, Auth.ADMIN),
        marks={
            ("DELETE", "/{id}"): {"drops": "connection"},
            ("POST", "/{id}/refresh"): {"drops": "connection"},
            ("GET", "/{id}/credentials"): {"keep": "connection"},
        },
    ),
    *(
        Route(
            method,
            "/connections/{id}/proxy/{path:.*}",
            connections.PROXY_REQUEST,
            Auth.ANY,
            "proxy",
            kind="proxy",
        )
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    ),
    *_element_routes(
        "/app-event-types",
        instances.APP_EVENT_TYPES_LIST,
        instances.APP_EVENT_TYPES_CREATE,
        instances.APP_EVENT_TYPES_GET,
        instances.APP_EVENT_TYPES_PATCH,
        instances.APP_EVENT_TYPES_DELETE,
        instances.APP_EVENT_TYPES_DEPLOY,
    ),
    *_element_routes(
        "/data-sources",
        instances.DATA_SOURCES_LIST,
        instances.DATA_SOURCES_CREATE,
        instances.DATA_SOURCES_GET,
        instances.DATA_SOURCES_PATCH,
        instances.DATA_SOURCES_DELETE,
        instances.DATA_SOURCES_DEPLOY,
    ),
    Route(
        "POST",
        "/connections/{id}/deploy",
        instances.DEPLOYMENTS_START,
        Auth.ANY,
        "deployments",
        status=201,
    ),
    Route("GET", "/deployments", instances.DEPLOYMENTS_LIST, Auth.ANY, "deployments"),
    Route(
        "GET",
        "/connections/{connectionId}/deployments",
        instances.DEPLOYMENTS_LIST,
        Auth.ANY,
        "deployments",
    ),
    Route("GET", "/deployments/{id}", instances.DEPLOYMENTS_GET, Auth.ANY, "deployments"),
    Route("GET", "/app-event-subscriptions", instances.SUBSCRIPTIONS_LIST, Auth.ANY, "instances"),
    Route(
        "GET", "/data-source-instances", instances.DATA_SOURCE_INSTANCES_LIST, Auth.ANY, "instances"
    ),
    Route(
        "POST",
        "/data-source-instances/{id}/refresh-schema",
        instances.DATA_SOURCE_INSTANCES_REFRESH,
        Auth.ANY,
        "instances",
    ),
    *_resource(
        "/data-source-instances",
        "records",
        ("GET", "/{id}", instances.DATA_SOURCE_INSTANCES_GET, Auth.ANY),
        ("GET", "/{id}/records", instances.RECORDS_LIST, Auth.ANY),
        ("POST", "/{id}/records", instances.RECORDS_CREATE, Auth.ANY, 201),
        ("GET", "/{id}/records/{recordId}", instances.RECORDS_GET, Auth.ANY),
        ("PATCH", "/{id}/records/{recordId}", instances.RECORDS_UPDATE, Auth.ANY),
        ("DELETE", "/{id}/records/{recordId}", instances.RECORDS_DELETE, Auth.ANY),
        ("POST", "/{id}/sync", instances.SYNCS_START, Auth.ANY, 202),
        ("POST", "/{id}/sync/confirm", instances.SYNCS_CONFIRM, Auth.ADMIN),
        ("POST", "/{id}/sync/discard", instances.SYNCS_DISCARD, Auth.ADMIN),
        ("GET", "/{id}/sync/passes", instances.SYNC_PASSES_LIST, Auth.ANY),
        ("GET", "/{id}/synced-records", instances.SYNCED_RECORDS_LIST, Auth.ANY),
    ),
    Route(
        "POST",
        "/webhooks/{token}",
        instances.WEBHOOKS_RECEIVE,
        Auth.PUBLIC,
        "webhooks",
        status=202,
        kind="webhook",
    ),
    *_resource(
        "/actions",
        "actions",
        ("GET", "", instances.ACTIONS_LIST, Auth.ADMIN),
        ("POST", "", instances.ACTIONS_CREATE, Auth.ADMIN, 201),
        ("GET", "/{key}", instances.ACTIONS_GET, Auth.ADMIN),
        ("PATCH", "/{key}", instances.ACTIONS_PATCH, Auth.ADMIN),
        ("DELETE", "/{key}", instances.ACTIONS_DELETE, Auth.ADMIN),
        ("GET", "/{key}/revisions", instances.ACTIONS_REVISIONS, Auth.ADMIN),
        ("GET", "/{key}/revisions/{n}", instances.ACTIONS_REVISION, Auth.ADMIN),
        ("POST", "/{key}/run", instances.ACTION_RUNS_START, Auth.ANY),
    ),
    *_resource(
        "/action-instances",
        "action-instances",
        ("GET", "", instances.ACTION_INSTANCES_LIST, Auth.ANY),
        ("POST", "", instances.ACTION_INSTANCES_CREATE, Auth.ADMIN, 201),
        ("GET", "/{id}", instances.ACTION_INSTANCES_GET, Auth.ANY),
        ("PATCH", "/{id}", instances.ACTION_INSTANCES_PATCH, Auth.ANY),
        ("POST", "/{id}/upgrade", instances.ACTION_INSTANCES_UPGRADE, Auth.ADMIN),
        ("POST", "/{id}/reset", instances.ACTION_INSTANCES_RESET, Auth.ADMIN),
        ("POST", "/{id}/run", instances.ACTION_INSTANCES_RUN, Auth.ANY),
    ),
    *_resource(
        "/action-runs",
        "action-runs",
        ("GET", "", instances.ACTION_RUNS_LIST, Auth.ANY),
        ("GET", "/{id}", instances.ACTION_RUNS_GET, Auth.ANY),
    ),
    *_resource(
        "/field-mappings",
        "field-mappings",
        ("GET", "", instances.FIELD_MAPPINGS_LIST, Auth.ADMIN),
        ("POST", "", instances.FIELD_MAPPINGS_CREATE, Auth.ADMIN, 201),
        ("GET", "/{key}", instances.FIELD_MAPPINGS_GET, Auth.ADMIN),
        ("PATCH", "/{key}", instances.FIELD_MAPPINGS_PATCH, Auth.ADMIN),
        ("DELETE", "/{key}", instances.FIELD_MAPPINGS_DELETE, Auth.ADMIN),
        ("GET", "/{key}/revisions", instances.FIELD_MAPPINGS_REVISIONS, Auth.ADMIN),
        ("GET", "/{key}/revisions/{n}", instances.FIELD_MAPPINGS_REVISION, Auth.ADMIN),
    ),
    *_resource(
        "/field-mapping-instances",
        "field-mapping-instances",
        ("GET", "", instances.FIELD_MAPPING_INSTANCES_LIST, Auth.ANY),
        ("GET", "/{id}", instances.FIELD_MAPPING_INSTANCES_GET, Auth.ANY),
        ("PATCH", "/{id}", instances.FIELD_MAPPING_INSTANCES_PATCH, Auth.ANY),
        ("POST", "/{id}/upgrade", instances.FIELD_MAPPING_INSTANCES_UPGRADE, Auth.ADMIN),
        ("POST", "/{id}/reset", instances.FIELD_MAPPING_INSTANCES_RESET, Auth.ADMIN),
        ("POST", "/{id}/run", instances.FIELD_MAPPING_INSTANCES_RUN, Auth.ANY),
    ),
    *_resource(
        "/flows",
        "flows",
        ("GET", "", flows.FLOWS_LIST, Auth.ADMIN),
        ("POST", "", flows.FLOWS_CREATE, Auth.ADMIN, 201),
        ("GET", "/{id}", flows.FLOWS_GET, Auth.ADMIN),
        ("PUT", "/{id}", flows.FLOWS_PUT, Auth.ADMIN),
        ("PATCH", "/{id}", flows.FLOWS_PATCH, Auth.ADMIN),
        ("DELETE", "/{id}", flows.FLOWS_DELETE, Auth.ADMIN),
        ("GET", "/{id}/revisions", flows.FLOWS_REVISIONS, Auth.ADMIN),
        ("GET", "/{id}/revisions/{n}", flows.FLOWS_REVISION, Auth.ADMIN),
    ),
    *_resource(
        "/flow-instances",
        "flow-instances",
        ("GET", "", flows.FLOW_INSTANCES_LIST, Auth.ANY),
        ("POST", "", flows.FLOW_INSTANCES_CREATE, Auth.ADMIN, 201),
        ("GET", "/{id}", flows.FLOW_INSTANCES_GET, Auth.ANY),
        ("PATCH", "/{id}", flows.FLOW_INSTANCES_PATCH, Auth.ANY),
        ("POST", "/{id}/upgrade", flows.FLOW_INSTANCES_UPGRADE, Auth.ADMIN),
        ("POST", "/{id}/reset", flows.FLOW_INSTANCES_RESET, Auth.ADMIN),
        ("POST", "/{id}/run", flows.FLOW_RUNS_START, Auth.ANY, 202),
    ),
    *_resource(
        "/flow-runs",
        "flow-runs",
        ("GET", "", flows.FLOW_RUNS_LIST, Auth.ANY),
        ("GET", "/{id}", flows.FLOW_RUNS_GET, Auth.ANY),
        ("GET", "/{id}/nodes/{key}", flows.FLOW_RUNS_NODE, Auth.ANY),
        ("POST", "/{id}/stop", flows.FLOW_RUNS_STOP, Auth.ANY),
        ("POST", "/{id}/rerun", flows.FLOW_RUNS_RERUN, Auth.ANY, 202),
    ),
    *_resource(
        "/webhook-endpoints",
        "notifications",
        ("GET", "", notifications.ENDPOINTS_LIST, Auth.ADMIN),
        ("POST", "", notifications.ENDPOINTS_CREATE, Auth.ADMIN, 201),
        ("GET", "/{id}", notifications.ENDPOINTS_GET, Auth.ADMIN),
        ("PATCH", "/{id}", notifications.ENDPOINTS_PATCH, Auth.ADMIN),
        ("DELETE", "/{id}", notifications.ENDPOINTS_DELETE, Auth.ADMIN),
        ("POST", "/{id}/rotate-secret", notifications.ENDPOINTS_ROTATE_SECRET, Auth.ADMIN),
        ("POST", "/{id}/test", notifications.ENDPOINTS_TEST, Auth.ADMIN),
        ("GET", "/{endpointId}/deliveries", notifications.DELIVERIES_LIST, Auth.ADMIN),
        ("POST", "/{endpointId}/replay", notifications.DELIVERIES_REPLAY, Auth.ADMIN, 202),
    ),
    *_resource(
        "/webhook-deliveries",
        "notifications",
        ("GET", "/{id}", notifications.DELIVERIES_GET, Auth.ADMIN),
        ("POST", "/{id}/redeliver", notifications.DELIVERIES_REDELIVER, Auth.ADMIN, 202),
    ),
    Route(
        "GET", "/webhook-event-types", notifications.EVENT_TYPES_LIST, Auth.ADMIN, "notifications"
    ),
    Route("GET", "/flow-node-types", schemas.FLOW_NODE_TYPES_LIST, Auth.ANY, "schemas"),
    Route("GET", "/flow-trigger-types", schemas.FLOW_TRIGGER_TYPES_LIST, Auth.ANY, "schemas"),
    Route("GET", "/integration-auth-types", schemas.AUTH_TYPES_LIST, Auth.ANY, "schemas"),
    Route("GET", "/action-request-types", schemas.ACTION_REQUEST_TYPES_LIST, Auth.ANY, "schemas"),
)
