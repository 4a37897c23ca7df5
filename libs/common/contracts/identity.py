"""Identity's subjects and models: workspaces, access tokens, customers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, PlainSerializer, SecretStr

from libs.common.contracts.base import (
    Contract,
    Event,
    EventType,
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

PING = ping_operation("identity")
DEAD_LETTERS_LIST = dead_letters_operation("identity")
KEYS_STATUS, KEYS_RESEAL = keys_operations("identity")

# --- workspaces -------------------------------------------------------------------------

Algorithm = Literal[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"
]


class TestCustomer(Contract):
    """The customer used when a workspace's team tries things out."""

    __test__ = False  # not a pytest class

    id: str = Field(min_length=1, max_length=256)
    name: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class WorkspaceSettings(Contract):
    """Per-workspace settings."""

    customer_fields_schema: dict[str, Any] | None = None
    test_customer: TestCustomer | None = None
    allowed_algorithms: list[Algorithm] | None = Field(
        default=None, description="Default: HS256 plus the algorithms of the public keys"
    )
    max_token_lifetime: Seconds = Field(default=24 * 3600, ge=60, description="Seconds")
    clock_leeway: int = Field(default=30, ge=0, le=300, description="Seconds")
    secret_grace: Seconds = Field(
        default=24 * 3600, ge=0, description="Seconds the previous secret verifies after a rotation"
    )


class WorkspaceSettingsPatch(Contract):
    """Settings to change, as a JSON Merge Patch (RFC 7396) of the settings.

    A member left out stays as it is; a member given replaces it whole (``testCustomer``
    included); a member sent as ``null`` goes back to its default (no fields schema, the
    default test customer ``test-customer``, the default algorithms, 86400 s token
    lifetime, 30 s clock leeway, 86400 s secret grace). A new test customer id creates
    that customer with the settings.
    """

    customer_fields_schema: dict[str, Any] | None = None
    test_customer: TestCustomer | None = None
    allowed_algorithms: list[Algorithm] | None = None
    max_token_lifetime: Seconds | None = Field(default=None, ge=60)
    clock_leeway: int | None = Field(default=None, ge=0, le=300)
    secret_grace: Seconds | None = Field(default=None, ge=0)


class PublicKey(Contract):
    """A public key a workspace signs tokens against with its private key."""

    kid: str | None = None
    alg: Literal["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
    pem: str


class Workspace(Reply):
    """A workspace as its admins see it (never its secret)."""

    id: UUID
    key: str
    name: str
    settings: WorkspaceSettings
    public_keys: list[PublicKey]
    created_at: datetime
    updated_at: datetime


class WorkspaceCreateRequest(Request):
    """Create a workspace (operators only)."""

    name: Name


class WorkspaceCreated(Reply):
    """A new workspace with its signing secret, shown this once."""

    id: UUID
    key: str
    name: str
    secret: str


class WorkspaceGetRequest(Request):
    """Read the caller's workspace."""


class WorkspaceFindRequest(Request):
    """Find a workspace by key (operators only)."""

    key: str


class WorkspaceUpdateRequest(Request):
    """Change the workspace's name, settings or public keys (admins)."""

    name: Name | None = None
    settings: WorkspaceSettingsPatch | None = None
    public_keys: list[PublicKey] | None = None


class SecretRotateRequest(Request):
    """Replace the signing secret; the old one verifies for the grace period."""


class SecretRotated(Reply):
    """The new secret, shown this once."""

    secret: str
    previous_secret_expires_at: datetime


class TestCustomerTokenRequest(Request):
    """Mint a one-hour token for the workspace's test customer (admins)."""

    __test__ = False


WORKSPACE_CREATE = Operation(
    "tether.identity.workspaces.create",
    WorkspaceCreateRequest,
    WorkspaceCreated,
    "Create a workspace",
)
WORKSPACE_GET = Operation(
    "tether.identity.workspace.get", WorkspaceGetRequest, Workspace, "Read the workspace"
)
WORKSPACE_FIND = Operation(
    "tether.identity.workspaces.find", WorkspaceFindRequest, Workspace, "Find a workspace by key"
)
WORKSPACE_UPDATE = Operation(
    "tether.identity.workspace.update", WorkspaceUpdateRequest, Workspace, "Update the workspace"
)
SECRET_ROTATE = Operation(
    "tether.identity.workspace.rotate_secret",
    SecretRotateRequest,
    SecretRotated,
    "Rotate the signing secret",
)

# --- tokens -----------------------------------------------------------------------------


TOKEN_MAX_LENGTH = 16_384
"""The longest access token identity verifies (the gateway refuses longer ones itself)."""


class TokenVerifyRequest(Request):
    """Verify an access token and resolve its principal."""

    token: str = Field(min_length=1, max_length=TOKEN_MAX_LENGTH)


class VerifiedToken(Reply):
    """Who a valid token speaks for."""

    workspace_id: UUID
    workspace_key: str
    principal: Literal["admin", "customer"]
    customer_id: str | None = None
    expires_at: datetime
    cache_until: datetime | None = Field(
        default=None,
        description="Stop trusting a cached verification after this (secret grace end)",
    )


class TokenMintRequest(Request):
    """Mint a development token for a workspace (operators only)."""

    workspace_key: str
    customer_id: str | None = None
    admin: bool = False
    name: str | None = None
    fields: dict[str, Any] | None = None
    ttl: int = Field(default=3600, ge=60, le=30 * 24 * 3600)


class MintedToken(Reply):
    """A freshly signed token."""

    token: str
    expires_at: datetime


TOKEN_VERIFY = Operation(
    "tether.identity.tokens.verify", TokenVerifyRequest, VerifiedToken, "Verify an access token"
)
TOKEN_MINT = Operation(
    "tether.identity.tokens.mint", TokenMintRequest, MintedToken, "Mint a dev token"
)


def _reveal(secret: SecretStr) -> str:
    return secret.get_secret_value()


WireSecret = Annotated[SecretStr, PlainSerializer(_reveal, return_type=str, when_used="json")]
"""A secret that travels in clear in the JSON of a reply, and never shows in a ``repr``."""


class VerificationKeysRequest(Request):
    """Read what verifying a workspace's tokens needs (services only: the reply holds secrets)."""

    workspace_key: str = Field(
        min_length=1, max_length=TOKEN_MAX_LENGTH, description="The token's iss"
    )


class VerificationKeys(Reply):
    """A workspace's token verification keys, so that the gateway verifies tokens itself.

    NATS lets only the gateway ask for them (deploy/nats/tether.conf).
    """

    workspace_id: UUID
    workspace_key: str
    settings: WorkspaceSettings
    secrets: list[WireSecret] = Field(
        description="The current signing secret, then the previous one while its grace lasts"
    )
    public_keys: list[PublicKey] = Field(default_factory=list)
    previous_secret_expires_at: datetime | None = Field(
        default=None, description="When the previous secret stops verifying (null: not listed)"
    )


TOKEN_VERIFICATION_KEYS = Operation(
    "tether.identity.tokens.verification_keys",
    VerificationKeysRequest,
    VerificationKeys,
    "Read a workspace's token verification keys (services only)",
)


# --- customers --------------------------------------------------------------------------


class FieldError(Contract):
    """One way a customer's fields fail the workspace's schema."""

    field: str
    message: str


class Customer(Reply):
    """A customer of the workspace (a user, team or organisation in its app)."""

    id: str
    name: str | None
    fields: dict[str, Any]
    archived: bool
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime
    fields_valid: bool | None = Field(default=None, description="Against the current fields schema")
    fields_errors: list[FieldError] | None = None


class CustomerPage(Reply):
    """A page of customers; pass ``cursor`` back for the next one (null at the end)."""

    items: list[Customer]
    cursor: str | None


class CustomerListRequest(PageRequest):
    """List customers, optionally by id or name prefix."""

    search: str | None = Field(default=None, max_length=256)
    include_archived: bool = False


class CustomerRef(Request):
    """A request about one customer, named by the workspace's own id for it."""

    id: str = Field(min_length=1, max_length=256)


class CustomerWrite(CustomerRef):
    """What a request that writes a customer may give: a display name."""

    name: str | None = Field(default=None, max_length=512)


class CustomerBody(CustomerWrite):
    """What a request that writes a whole customer gives: name and every field."""

    fields: dict[str, Any] = Field(default_factory=dict)


class CustomerCreateRequest(CustomerBody):
    """Create a customer with the workspace's own id for it."""


class CustomerGetRequest(CustomerRef):
    """Read one customer."""


class CustomerMeRequest(Request):
    """Read the calling customer."""


class CustomerPatchRequest(CustomerWrite):
    """Change a customer: ``name`` if given; ``fields`` as a JSON Merge Patch (RFC 7396)."""

    fields: dict[str, Any] | None = None


class CustomerPutRequest(CustomerBody):
    """Replace a customer's name and fields."""


class CustomerEnsureRequest(CustomerRef):
    """Make sure a customer exists before another service stores something for them.

    Services only. A new customer is created as a token would create it (one
    ``customer.created``, fields checked against the schema); an archived one is refused
    with 403 ``customer_archived``.
    """


class CustomerArchiveRequest(CustomerRef):
    """Archive a customer (their tokens stop working)."""


class CustomerRestoreRequest(CustomerRef):
    """Bring an archived customer back."""


class TestCustomerToken(Reply):
    """A token for the test customer, to paste into code or curl."""

    __test__ = False

    token: str
    expires_at: datetime
    customer: Customer


CUSTOMERS_LIST = Operation(
    "tether.identity.customers.list", CustomerListRequest, CustomerPage, "List customers"
)
CUSTOMERS_CREATE = Operation(
    "tether.identity.customers.create", CustomerCreateRequest, Customer, "Create a customer"
)
CUSTOMERS_GET = Operation(
    "tether.identity.customers.get", CustomerGetRequest, Customer, "Read a customer"
)
CUSTOMERS_ME = Operation(
    "tether.identity.customers.me", CustomerMeRequest, Customer, "Read the calling customer"
)
CUSTOMERS_PATCH = Operation(
    "tether.identity.customers.patch", CustomerPatchRequest, Customer, "Merge into a customer"
)
CUSTOMERS_PUT = Operation(
    "tether.identity.customers.put", CustomerPutRequest, Customer, "Replace a customer"
)
CUSTOMERS_ENSURE = Operation(
    "tether.identity.customers.ensure",
    CustomerEnsureRequest,
    Customer,
    "Make sure a customer exists (services only)",
)
CUSTOMERS_ARCHIVE = Operation(
    "tether.identity.customers.archive", CustomerArchiveRequest, Customer, "Archive a customer"
)
CUSTOMERS_RESTORE = Operation(
    "tether.identity.customers.restore",
    CustomerRestoreRequest,
    Customer,
    "Restore an archived customer",
)
TEST_CUSTOMER_TOKEN = Operation(
    "tether.identity.workspace.test_customer_token",
    TestCustomerTokenRequest,
    TestCustomerToken,
    "Mint a one-hour token for the test customer",
)

# --- console sign-in --------------------------------------------------------------------


class ConsoleCodeCreateRequest(Request):
    """Make a one-time console sign-in code for a workspace (operators only)."""

    workspace_key: str
    ttl: int = Field(default=600, ge=30, le=3600)


class ConsoleCode(Reply):
    """A one-time code: it signs one browser in once, before it expires."""

    code: str
    expires_at: datetime


class ConsoleSessionRequest(Request):
    """Exchange a one-time console code for an admin session token."""

    code: str = Field(min_length=16, max_length=128)


class ConsoleSession(Reply):
    """An admin token for the console's session."""

    token: str
    expires_at: datetime


CONSOLE_CODE_CREATE = Operation(
    "tether.identity.console.create_code",
    ConsoleCodeCreateRequest,
    ConsoleCode,
    "Make a console code",
)
CONSOLE_SESSION = Operation(
    "tether.identity.console.session", ConsoleSessionRequest, ConsoleSession, "Sign the console in"
)

# --- events -----------------------------------------------------------------------------


class WorkspaceEvent(Event):
    """Something about a workspace changed (secret rotation, settings)."""

    changes: list[str] = Field(default_factory=list)


class CustomerEvent(Event):
    """Something about a customer changed."""

    customer_id: str
    changes: list[str] = Field(default_factory=list)


WORKSPACE_CREATED = EventType("tether.evt.identity.workspace.created", WorkspaceEvent)
WORKSPACE_UPDATED = EventType("tether.evt.identity.workspace.updated", WorkspaceEvent)
CUSTOMER_CREATED = EventType("tether.evt.identity.customer.created", CustomerEvent)
CUSTOMER_UPDATED = EventType("tether.evt.identity.customer.updated", CustomerEvent)
CUSTOMER_ARCHIVED = EventType("tether.evt.identity.customer.archived", CustomerEvent)
CUSTOMER_RESTORED = EventType("tether.evt.identity.customer.restored", CustomerEvent)

OPERATIONS = (
    PING,
    DEAD_LETTERS_LIST,
    KEYS_STATUS,
    KEYS_RESEAL,
    WORKSPACE_CREATE,
    WORKSPACE_GET,
    WORKSPACE_FIND,
    WORKSPACE_UPDATE,
    SECRET_ROTATE,
    TEST_CUSTOMER_TOKEN,
    TOKEN_VERIFY,
    TOKEN_VERIFICATION_KEYS,
    TOKEN_MINT,
    CUSTOMERS_LIST,
    CUSTOMERS_CREATE,
    CUSTOMERS_GET,
    CUSTOMERS_ME,
    CUSTOMERS_PATCH,
    CUSTOMERS_PUT,
    CUSTOMERS_ENSURE,
    CUSTOMERS_ARCHIVE,
    CUSTOMERS_RESTORE,
    CONSOLE_CODE_CREATE,
    CONSOLE_SESSION,
)
EVENTS = (
    WORKSPACE_CREATED,
    WORKSPACE_UPDATED,
    CUSTOMER_CREATED,
    CUSTOMER_UPDATED,
    CUSTOMER_ARCHIVED,
    CUSTOMER_RESTORED,
)
