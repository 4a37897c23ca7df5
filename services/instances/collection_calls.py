"""Send a record request to an app through the connections proxy and map what comes back.

Credentials never reach this service: the proxy adds them. Answers are read with
:mod:`libs.common.answers` (the one reading of app answers) and mapped as actions map
theirs:

* 2xx: :class:`AppAnswer` with the body parsed (JSON when the answer says so, else text).
* 4xx: ``InvalidInput`` (422, ``app_rejected``) with the app's ``status`` and ``message``
  (and ``retryAfter`` on a 429 that says how long to wait).
* 5xx, or the app (or the proxy) could not be reached: ``BadGateway`` (502, ``app_unavailable``).
* no answer in time: ``Timeout`` (504, ``app_timeout``).
* the proxy's own refusals (unknown or disconnected connection, a path outside the API)
  pass through as they are.

:func:`transient` tells a sync which of these are worth trying again.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from libs.common.answers import Answer, app_failure, body_of
from libs.common.bus import Bus
from libs.common.contracts import connections
from libs.common.contracts.base import Context
from libs.common.errors import (
    BadGateway,
    RateLimited,
    TetherError,
    Timeout,
    Unavailable,
)
from services.instances.collection import AppRequest


@dataclass(frozen=True)
class AppAnswer:
    """A successful answer: status, headers and the decoded body."""

    status: int
    headers: list[tuple[str, str]]
    data: Any


def transient(exc: TetherError) -> bool:
    """Tell whether trying the same request again later may succeed (a 429 included)."""
    if isinstance(exc, BadGateway | Timeout | Unavailable | RateLimited):
        return True
    return (
        exc.code == "app_rejected"
        and isinstance(exc.details, dict)
        and (exc.details.get("status") == 429)
    )


def wait_of(exc: TetherError) -> float | None:
    """Return the seconds an app asked us to wait (``retryAfter`` of a 429), if it did."""
    wait = exc.details.get("retryAfter") if isinstance(exc.details, dict) else None
    return float(wait) if isinstance(wait, int | float) else None


class AppCaller:
    """Record requests to apps, as a workspace's connection, with errors mapped once."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    async def send(
        self,
        workspace_id: UUID,
        connection_id: UUID,
        request: AppRequest,
        *,
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> AppAnswer:
        """Send ``request``; return the 2xx answer or raise the mapped error (module doc)."""
        headers = {"Accept": "application/json"}
        payload: str | None = None
        if request.body is not None:
            raw = json.dumps(request.body, separators=(",", ":")).encode()
            payload = base64.b64encode(raw).decode()
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        proxy = connections.ProxyRequest(
            id=connection_id,
            method=request.method,
            path=request.path,
            query=list(request.query),
            headers=headers,
            body=payload,
            ctx=Context(workspace_id=workspace_id, principal="system", request_id=request_id),
        )
        what = f"{request.method} {request.path}"
        try:
            reply = await self._bus.call(connections.PROXY_REQUEST, proxy, timeout=self._timeout)
        except Timeout as exc:
            raise Timeout(f"{what}: the app did not answer in time", code="app_timeout") from exc
        except Unavailable as exc:
            raise BadGateway(f"{what}: {exc.message}", code="app_unavailable") from exc
        except TetherError as exc:
            if exc.status >= 500:
                raise BadGateway(f"{what}: {exc.message}", code="app_unavailable") from exc
            raise
        answer = Answer(
            reply.status, [(k, v) for k, v in reply.headers], base64.b64decode(reply.body)
        )
        if answer.status < 400:
            return AppAnswer(answer.status, answer.headers, body_of(answer))
        raise app_failure(answer, what)
