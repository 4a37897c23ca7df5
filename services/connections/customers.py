"""Make sure the customer a connection is for exists: identity owns customers, asked over NATS."""

from __future__ import annotations

from uuid import UUID

import structlog

from libs.common.bus import Bus
from libs.common.contracts import identity
from libs.common.contracts.base import Context
from libs.common.errors import Conflict, Forbidden, InvalidInput


async def ensure_customer(bus: Bus, workspace_id: UUID, customer_id: str) -> None:
    """Create the customer in identity on first sight (as a token would); refuse an archived one.

    Raises Conflict ``customer_archived`` for an archived customer, and InvalidInput
    naming ``customerId`` when a new customer cannot be created because the workspace's
    fields schema requires fields a connection does not carry.
    """
    request_id = structlog.contextvars.get_contextvars().get("request_id") or ""
    ctx = Context(workspace_id=workspace_id, principal="system", request_id=request_id)
    try:
        await bus.call(
            identity.CUSTOMERS_ENSURE, identity.CustomerEnsureRequest(id=customer_id, ctx=ctx)
        )
    except Forbidden as exc:
        if exc.code != "customer_archived":
            raise
        raise Conflict(
            f"customer {customer_id} is archived: restore it before connecting an account for it",
            code="customer_archived",
        ) from exc
    except InvalidInput as exc:
        if exc.code != "invalid_fields":
            raise
        raise InvalidInput(
            f"customer {customer_id} is new and cannot be created without fields "
            f"({exc.message}): create the customer with its fields first",
            code="invalid_fields",
            details=[{"field": "customerId", "message": exc.message}],
        ) from exc
