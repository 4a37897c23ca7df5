"""Open an integration's client secret (sealed to its row) and pick the client to use."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from libs.common.contracts import connections as c
from libs.common.crypto import Keyring, associated_data
from libs.common.errors import InvalidInput
from services.connections.store.integrations import IntegrationRecord

PURPOSE = "integration-client-secret"


def seal_client_secret(keyring: Keyring, workspace_id: UUID, key: str, secret: str) -> str:
    """Encrypt a client secret bound to its integration row."""
    return keyring.encrypt(secret.encode(), associated_data(workspace_id, key, PURPOSE))


def client_credentials(
    keyring: Keyring, integration: IntegrationRecord, values: dict[str, Any] | None = None
) -> tuple[str, str]:
    """Return (client_id, client_secret): the connection's own, else the integration's."""
    auth = integration.auth
    assert isinstance(auth, c.OAuth2Auth | c.ClientCredentialsAuth)
    if values and values.get("client_id") and values.get("client_secret"):
        return str(values["client_id"]), str(values["client_secret"])
    if not auth.client_id or integration.client_secret_sealed is None:
        raise InvalidInput(
            f"integration {integration.key} needs clientId and clientSecret",
            code="integration_incomplete",
        )
    aad = associated_data(integration.workspace_id, integration.key, PURPOSE)
    return auth.client_id, keyring.decrypt(integration.client_secret_sealed, aad).decode()
