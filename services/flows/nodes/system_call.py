"""Call an instances operation as the system for a run's connection; map its errors.

Nodes that hand their work to another service (``api-request`` to the connections
proxy; ``run-action``, ``apply-field-mapping`` and the record nodes to instances) send the request as the system for the run's workspace, with the
run as its request id, and wait at most the services' request timeout. A failure the
service answers becomes a ``NodeError`` with the same code, the node's subject in front of
the message and the details as its data; it is transient (retried) when the app failed or
was slow, or a service was away (``TRANSIENT``), or its code is one the caller names.
"""

from __future__ import annotations

from libs.common.contracts.base import Context, Operation, RepT, ReqT
from libs.common.errors import BadGateway, RateLimited, TetherError, Timeout, Unavailable
from services.flows.nodes.base import NodeCall, NodeError

TRANSIENT: tuple[type[TetherError], ...] = (Timeout, Unavailable, BadGateway, RateLimited)
"""Failures worth retrying: the app failed or was slow, or a service was away."""


def system_context(call: NodeCall) -> Context:
    """Return the context a node's call runs under: the system, in the run's workspace."""
    return Context(
        workspace_id=call.workspace_id,
        principal="system",
        request_id=f"run-{call.run_id}",
    )


async def call_system(
    call: NodeCall,
    op: Operation[ReqT, RepT],
    request: ReqT,
    what: str | None,
    *,
    transient_codes: frozenset[str] = frozenset(),
) -> RepT:
    """Send ``request`` to ``op``; a failure raises a ``NodeError`` about ``what`` (if given)."""
    try:
        return await call.services.bus.call(op, request, timeout=call.services.request_timeout)
    except TetherError as exc:
        raise NodeError(
            exc.code,
            exc.message if what is None else f"{what}: {exc.message}",
            data=exc.details,
            transient=isinstance(exc, TRANSIENT) or exc.code in transient_codes,
        ) from exc
