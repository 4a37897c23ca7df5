"""Identity's subjects and models: workspaces, access tokens, customers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from libs.common.contracts.base import (
    Contract,
    Event,
    EventType,
    Operation,
    Reply,
    Request,
    ping_operation,
)

PING = ping_operation("identity")

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
    max_token_lifetime: int = Field(default=24 * 3600, ge=60, description="Seconds")
    clock_leeway: int = Field(default=30, ge=0, le=300, description="Seconds")


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

    name: str = Field(min_length=1, max_length=200)


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

# --- tokens -----------------------------------------------------------------------------


class TokenVerifyRequest(Request):
    """Verify an access token and resolve its principal."""

    token: str = Field(min_length=1, max_length=16_384)


class VerifiedToken(Reply):
    """Who a valid token speaks for."""

    workspace_id: UUID
    workspace_key: str
    principal: Literal["admin", "customer"]
    customer_id: str | None = None
    expires_at: datetime


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

# --- events -----------------------------------------------------------------------------


class WorkspaceEvent(Event):
    """Something about a workspace changed (secret rotation, settings)."""

    changes: list[str] = Field(default_factory=list)


WORKSPACE_CREATED = EventType("tether.evt.identity.workspace.created", WorkspaceEvent)
WORKSPACE_UPDATED = EventType("tether.evt.identity.workspace.updated", WorkspaceEvent)

OPERATIONS = (PING, WORKSPACE_CREATE, WORKSPACE_GET, WORKSPACE_FIND, TOKEN_VERIFY, TOKEN_MINT)
EVENTS = (WORKSPACE_CREATED, WORKSPACE_UPDATED)
