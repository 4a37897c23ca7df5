"""Call an app as a connection through the connections service's proxy contract.

This service never sees credentials: connections injects (and renews) them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from libs.common.bus import Bus
from libs.common.contracts import connections, flows
from libs.common.contracts.base import Context
from libs.common.contracts.instances import Method
from libs.common.errors import TetherError, Timeout, Unavailable
from services.instances.lifecycle import StepFailure
from services.instances.store.connections import KnownConnection


@dataclass(frozen=True)
class AppAnswer:
    """A successful answer, decoded."""

    status: int
    data: Any


def app_message(status: int, body: bytes) -> str:
    """Return the app's own words about a failure (its message field, or the text)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for field in ("message", "error_description", "error", "detail"):
            if isinstance(data.get(field), str):
                return f"the app answered {status}: {data[field]}"
    text = body.decode(errors="replace").strip()[:200]
    return f"the app answered {status}" + (f": {text}" if text else "")


class AppClient:
    """Requests to apps, as a workspace's connection, with failures sorted for retrying."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    async def call(
        self,
        workspace_id: UUID,
        connection_id: UUID,
        method: Method,
        path: str,
        body: Any = None,
        *,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> AppAnswer:
        """Send one request; 2xx (or ``ok_statuses``) answers, everything else raises StepFailure."""
        payload = json.dumps(body).encode() if body is not None else None
        request = connections.ProxyRequest(
            id=connection_id,
            method=method,
            path=path,
            headers={"Content-Type": "application/json", "Accept": "application/json"}
            if payload
            else {"Accept": "application/json"},
            body=base64.b64encode(payload).decode() if payload else None,
            ctx=Context(workspace_id=workspace_id, principal="system"),
        )
        try:
            reply = await self._bus.call(connections.PROXY_REQUEST, request, timeout=self._timeout)
        except (Unavailable, Timeout) as exc:
            raise StepFailure(exc.message, transient=True) from exc
        except TetherError as exc:
            raise StepFailure(exc.message, transient=exc.status >= 500) from exc
        raw = base64.b64decode(reply.body)
        if 200 <= reply.status < 300 or reply.status in ok_statuses:
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = raw.decode(errors="replace")
            return AppAnswer(reply.status, data)
        transient = reply.status in (408, 425, 429) or reply.status >= 500
        raise StepFailure(app_message(reply.status, raw), transient=transient)

    async def ensure_flows(self, known: KnownConnection, *, archive: bool) -> None:
        """Have the flows service create (or archive) the connection's flow instances."""
        request = flows.EnsureInstancesRequest(
            connection_id=known.id,
            customer_id=known.customer_id,
            integration_key=known.integration_key,
            archive=archive,
            ctx=Context(workspace_id=known.workspace_id, principal="system"),
        )
        try:
            await self._bus.call(flows.FLOW_INSTANCES_ENSURE, request, timeout=self._timeout)
        except (Unavailable, Timeout) as exc:
            raise StepFailure(exc.message, transient=True) from exc
        except TetherError as exc:
            raise StepFailure(exc.message, transient=exc.status >= 500) from exc
