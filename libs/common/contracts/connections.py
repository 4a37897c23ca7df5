"""Connections' subjects and models: integrations, connect sessions, connections, proxy."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from libs.common.contracts.base import (
    AppPath,
    AppUrl,
    Contract,
    Event,
    EventType,
    HeaderName,
    HeaderValue,
    Key,
    Name,
    Operation,
    PageRequest,
    Reply,
    Request,
    Seconds,
    ping_operation,
)
from libs.common.contracts.dead_letters import dead_letters_operation
from libs.common.contracts.keys import keys_operations

PING = ping_operation("connections")
DEAD_LETTERS_LIST = dead_letters_operation("connections")
KEYS_STATUS, KEYS_RESEAL = keys_operations("connections")

ClientAuth = Literal["client_secret_post", "client_secret_basic"]

API_KEY_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {"apiKey": {"type": "string", "title": "API key", "minLength": 1}},
    "required": ["apiKey"],
}
BASIC_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "title": "Username", "minLength": 1},
        "password": {"type": "string", "title": "Password", "minLength": 1, "format": "password"},
    },
    "required": ["username", "password"],
}

# --- integrations -----------------------------------------------------------------------


class OAuth2Auth(Contract):
    """OAuth 2.0 authorization code (PKCE S256 unless turned off)."""

    type: Literal["oauth2"] = "oauth2"
    authorize_url: AppUrl
    token_url: AppUrl
    scopes: list[str] = Field(default_factory=list)
    scope_separator: str = " "
    authorize_params: dict[str, str] = Field(default_factory=dict)
    token_params: dict[str, str] = Field(default_factory=dict)
    pkce: bool = True
    client_id: str | None = None
    client_auth: ClientAuth = "client_secret_post"
    default_token_lifetime: Seconds = Field(
        default=3600, ge=60, description="Seconds, for token answers without expires_in"
    )


class ClientCredentialsAuth(Contract):
    """OAuth 2.0 client credentials (machine to machine)."""

    type: Literal["client_credentials"] = "client_credentials"
    token_url: AppUrl
    scopes: list[str] = Field(default_factory=list)
    scope_separator: str = " "
    token_params: dict[str, str] = Field(default_factory=dict)
    client_id: str | None = None
    client_auth: ClientAuth = "client_secret_post"
    per_connection: bool = Field(
        default=False, description="Each connection brings its own client id and secret"
    )
    default_token_lifetime: Seconds = Field(default=3600, ge=60)


class ApiKeyAuth(Contract):
    """A key the customer pastes; ``form`` is the JSON Schema of what they enter."""

    type: Literal["api_key"] = "api_key"
    form: dict[str, Any] = Field(default_factory=lambda: dict(API_KEY_FORM))


class BasicAuth(Contract):
    """Username and password."""

    type: Literal["basic"] = "basic"
    form: dict[str, Any] = Field(default_factory=lambda: dict(BASIC_FORM))


AuthSpec = Annotated[
    OAuth2Auth | ClientCredentialsAuth | ApiKeyAuth | BasicAuth, Field(discriminator="type")
]


class ApiSpec(Contract):
    """Where the app's API is and how credentials go into a request.

    Templates name credential values in braces: ``{access_token}``, ``{apiKey}``,
    ``{username}``, ``{password}``, ``{basic}`` (base64 of username:password).
    """

    base_url: AppUrl
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=lambda: {"Authorization": "Bearer {access_token}"}
    )
    query: dict[str, str] = Field(default_factory=dict)


class TestRequestSpec(Contract):
    """A cheap request that proves credentials work (``GET /me``-like)."""

    __test__ = False

    method: Literal["GET", "POST"] = "GET"
    path: AppPath
    account_id_field: str | None = Field(default=None, description="Key of the account id")
    account_name_field: str | None = Field(default=None, description="Key of the display name")


class Integration(Reply):
    """An external app configured in the workspace (never its client secret)."""

    key: str
    name: str
    template: str | None
    auth: AuthSpec
    client_secret_set: bool
    api: ApiSpec | None
    test: TestRequestSpec | None
    created_at: datetime
    updated_at: datetime


class IntegrationPage(Reply):
    """Every integration of the workspace."""

    items: list[Integration]


class IntegrationListRequest(Request):
    """List integrations (customers see them too, without secrets)."""


class IntegrationRef(Request):
    """A request about one integration."""

    key: Key


class IntegrationWrite(IntegrationRef):
    """What a request that writes an integration may give (each part optional)."""

    name: Name | None = None
    auth: AuthSpec | None = None
    client_id: str | None = Field(default=None, max_length=1024)
    client_secret: str | None = Field(default=None, max_length=4096)
    api: ApiSpec | None = None
    test: TestRequestSpec | None = None


class IntegrationCreateRequest(IntegrationWrite):
    """Create an integration from a template, a full spec, or both (the spec overrides)."""

    template: str | None = None


class IntegrationPatchRequest(IntegrationWrite):
    """Change what is given; ``clientSecret`` is write-only."""


class IntegrationGetRequest(IntegrationRef):
    """Read one integration."""


class IntegrationDeleteRequest(IntegrationRef):
    """Delete an integration that has no live connections."""


class Deleted(Reply):
    """What was deleted."""

    deleted: bool


# --- connect sessions and the Connect UI ------------------------------------------------


class ConnectSessionCreateRequest(Request):
    """Start connecting (or reconnecting) an account for a customer."""

    integration_key: Key
    customer_id: str | None = Field(
        default=None, min_length=1, max_length=256, description="Admins name the customer"
    )
    connection_id: UUID | None = Field(default=None, description="Reconnect this connection")
    redirect_uri: AppUrl | None = None
    opener_origin: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$",
        description=(
            "The origin of the page that opens the Connect UI in a popup (e.g. "
            "`https://app.example.com`): the result is posted to that origin only, never to `*`"
        ),
    )
    allow_multiple: bool = False


class ConnectSession(Reply):
    """Where to send the customer: a single-use page, valid until ``expiresAt``."""

    id: UUID
    url: str
    expires_at: datetime


class WebResponse(Reply):
    """An HTTP answer for a browser: a page or a redirect."""

    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    body: str = ""
    location: str | None = None


class ConnectPageRequest(Request):
    """Open (GET) or submit (POST, ``form``) a connect session's page."""

    token: str = Field(min_length=16, max_length=128)
    form: dict[str, str] | None = None


class OAuthCallbackRequest(Request):
    """The provider sends the browser back here."""

    state: str | None = Field(default=None, max_length=256)
    code: str | None = Field(default=None, max_length=4096)
    error: str | None = Field(default=None, max_length=256)
    error_description: str | None = Field(default=None, max_length=1024)
    scope: str | None = Field(default=None, max_length=4096)


# --- connections ------------------------------------------------------------------------

ConnectionState = Literal["connected", "disconnected", "error", "archived"]


class Connection(Reply):
    """One customer's authorised account in one integration (never its credentials)."""

    id: UUID
    customer_id: str
    integration_key: str
    name: str
    state: ConnectionState
    account: dict[str, Any] | None
    expires_at: datetime | None
    last_refresh_at: datetime | None
    refresh_attempts: int
    last_error: str | None
    cooldown_until: datetime | None
    created_at: datetime
    updated_at: datetime


class ConnectionPage(Reply):
    """A page of connections."""

    items: list[Connection]
    cursor: str | None


class ConnectionListRequest(PageRequest):
    """List connections (a customer sees their own; admins filter)."""

    customer_id: str | None = None
    integration_key: str | None = None
    state: ConnectionState | None = None


class ConnectionRef(Request):
    """A request about one connection."""

    id: UUID


class ConnectionGetRequest(ConnectionRef):
    """Read one connection."""


class ConnectionArchiveRequest(ConnectionRef):
    """Archive a connection."""


class ConnectionRefreshRequest(ConnectionRef):
    """Refresh the connection's token now."""


class ConnectionTestRequest(ConnectionRef):
    """Run the integration's test request with the connection's credentials."""

    __test__ = False


class ConnectionTestResult(Reply):
    """The outcome of a test request."""

    ok: bool
    status: int | None
    error: str | None
    connection: Connection


class ConnectionCreateRequest(Request):
    """Create a connection from credentials you already hold (migrations)."""

    customer_id: str = Field(min_length=1, max_length=256)
    integration_key: Key
    name: str | None = Field(default=None, max_length=200)
    credentials: dict[str, Any]
    allow_multiple: bool = False


class CredentialsGetRequest(ConnectionRef):
    """Read the connection's current credentials (refreshed first when about to expire)."""


class Credentials(Reply):
    """Current credentials: secrets, for admins only."""

    connection_id: UUID
    type: str
    values: dict[str, Any]
    expires_at: datetime | None


class ProxyRequest(ConnectionRef):
    """Call the integration's API as the connection."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    # No control characters: they cannot travel in a request line (aiohttp refuses to send).
    path: str = Field(max_length=4096, pattern=r"^[^\x00-\x1f\x7f]*$")
    query: list[tuple[str, str]] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = Field(default=None, description="Base64 of the request body")


class ProxyReply(Reply):
    """The app's answer, passed through."""

    status: int
    headers: list[tuple[str, str]]
    body: str = Field(description="Base64 of the response body")


class TemplateListRequest(Request):
    """List the provider catalogue."""


class Template(Contract):
    """A provider template: create an integration with it and a client id and secret."""

    key: str
    name: str
    auth_type: str


class TemplatePage(Reply):
    """The catalogue."""

    items: list[Template]


TEMPLATES_LIST = Operation(
    "tether.connections.integrations.templates",
    TemplateListRequest,
    TemplatePage,
    "List provider templates",
)
INTEGRATIONS_LIST = Operation(
    "tether.connections.integrations.list",
    IntegrationListRequest,
    IntegrationPage,
    "List integrations",
)
INTEGRATIONS_CREATE = Operation(
    "tether.connections.integrations.create",
    IntegrationCreateRequest,
    Integration,
    "Create an integration",
)
INTEGRATIONS_GET = Operation(
    "tether.connections.integrations.get", IntegrationGetRequest, Integration, "Read an integration"
)
INTEGRATIONS_PATCH = Operation(
    "tether.connections.integrations.patch",
    IntegrationPatchRequest,
    Integration,
    "Change an integration",
)
INTEGRATIONS_DELETE = Operation(
    "tether.connections.integrations.delete",
    IntegrationDeleteRequest,
    Deleted,
    "Delete an integration",
)
CONNECT_SESSION_CREATE = Operation(
    "tether.connections.connect.create_session",
    ConnectSessionCreateRequest,
    ConnectSession,
    "Start a connect session",
)
CONNECT_PAGE = Operation(
    "tether.connections.connect.page", ConnectPageRequest, WebResponse, "The Connect UI page"
)
OAUTH_CALLBACK = Operation(
    "tether.connections.connect.oauth_callback", OAuthCallbackRequest, WebResponse, "OAuth callback"
)
CONNECTIONS_LIST = Operation(
    "tether.connections.connections.list", ConnectionListRequest, ConnectionPage, "List connections"
)
CONNECTIONS_CREATE = Operation(
    "tether.connections.connections.create",
    ConnectionCreateRequest,
    Connection,
    "Create a connection from credentials",
)
CONNECTIONS_GET = Operation(
    "tether.connections.connections.get", ConnectionGetRequest, Connection, "Read a connection"
)
CONNECTIONS_ARCHIVE = Operation(
    "tether.connections.connections.archive",
    ConnectionArchiveRequest,
    Connection,
    "Archive a connection",
)
CONNECTIONS_REFRESH = Operation(
    "tether.connections.connections.refresh", ConnectionRefreshRequest, Connection, "Refresh now"
)
CONNECTIONS_TEST = Operation(
    "tether.connections.connections.test",
    ConnectionTestRequest,
    ConnectionTestResult,
    "Test credentials",
)
CREDENTIALS_GET = Operation(
    "tether.connections.credentials.get", CredentialsGetRequest, Credentials, "Read credentials"
)
PROXY_REQUEST = Operation(
    "tether.connections.proxy.request",
    ProxyRequest,
    ProxyReply,
    "Call the app's API as a connection",
)

# --- events -----------------------------------------------------------------------------


class ConnectionEvent(Event):
    """A connection changed state (ids only, never credentials)."""

    connection_id: UUID
    customer_id: str
    integration_key: str
    reason: str | None = None


CONNECTION_CREATED = EventType("tether.evt.connections.connection.created", ConnectionEvent)
CONNECTION_RECONNECTED = EventType("tether.evt.connections.connection.reconnected", ConnectionEvent)
CONNECTION_DISCONNECTED = EventType(
    "tether.evt.connections.connection.disconnected", ConnectionEvent
)
CONNECTION_ARCHIVED = EventType("tether.evt.connections.connection.archived", ConnectionEvent)
CONNECTION_ERROR = EventType("tether.evt.connections.connection.error", ConnectionEvent)
"""Renewals kept failing (``TETHER_REFRESH_MAX_FAILURES`` in a row): the connection is in
``error`` until a renewal succeeds again (then ``connection.reconnected``)."""
CONNECTION_REFRESHED = EventType("tether.evt.connections.connection.refreshed", ConnectionEvent)
"""The credentials were renewed before they were due (a 401 from the app, a refresh asked
for): whoever keeps a copy of the old ones drops it. Copies never outlive the due time, so
a renewal when due says nothing (nor one of a connection in ``error``: that is
``connection.reconnected``). Internal: not offered to webhook endpoints."""

OPERATIONS = (
    PING,
    DEAD_LETTERS_LIST,
    KEYS_STATUS,
    KEYS_RESEAL,
    TEMPLATES_LIST,
    INTEGRATIONS_LIST,
    INTEGRATIONS_CREATE,
    INTEGRATIONS_GET,
    INTEGRATIONS_PATCH,
    INTEGRATIONS_DELETE,
    CONNECT_SESSION_CREATE,
    CONNECT_PAGE,
    OAUTH_CALLBACK,
    CONNECTIONS_LIST,
    CONNECTIONS_CREATE,
    CONNECTIONS_GET,
    CONNECTIONS_ARCHIVE,
    CONNECTIONS_REFRESH,
    CONNECTIONS_TEST,
    CREDENTIALS_GET,
    PROXY_REQUEST,
)
EVENTS = (
    CONNECTION_CREATED,
    CONNECTION_RECONNECTED,
    CONNECTION_DISCONNECTED,
    CONNECTION_ARCHIVED,
    CONNECTION_ERROR,
    CONNECTION_REFRESHED,
)
