"""A typed client of Tether's REST API, sync and async, on httpx and pydantic.

::

    import tether_client

    with tether_client.Tether.for_admin(GATEWAY, KEY, SECRET) as tether:
        for customer in tether.customers.iterate():
            print(customer.id, customer.name)

    token = tether_client.customer_token(KEY, SECRET, id="user-42", name="Ada")
    event = tether_client.verify_webhook(request.headers, request.body, ENDPOINT_SECRET)

Models are in :mod:`tether_client.models`; errors are drawn in :mod:`tether_client._errors`.
"""

from __future__ import annotations

from tether_client import models
from tether_client._client import AsyncTether, Tether
from tether_client._errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TetherClientError,
    TetherError,
    TransportError,
    ValidationError,
    WebhookVerificationError,
)
from tether_client._tokens import TokenMinter, admin_token, customer_token
from tether_client._transport import NOT_GIVEN, NotGiven
from tether_client._webhooks import WebhookEvent, verify_webhook

__all__ = [
    "NOT_GIVEN",
    "AsyncTether",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "NotFoundError",
    "NotGiven",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "Tether",
    "TetherClientError",
    "TetherError",
    "TokenMinter",
    "TransportError",
    "ValidationError",
    "WebhookEvent",
    "WebhookVerificationError",
    "admin_token",
    "customer_token",
    "models",
    "verify_webhook",
]
