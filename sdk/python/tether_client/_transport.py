"""Send one operation and read its answer: encoding, auth, retries, errors.

Both clients share this module; only the waiting (``time.sleep`` or ``asyncio.sleep``)
and the ``httpx`` client differ. Retries: a 429 is always retried (the API did nothing),
a 503 only for a method that is safe to repeat or a request with an ``Idempotency-Key``;
each waits the answer's ``Retry-After`` (capped by ``max_retry_wait``) or a doubling
delay. Network failures are not retried: whether the API acted is unknown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from tether_client._errors import TransportError, error_from_response, retry_after_seconds

__all__ = ["NOT_GIVEN", "AsyncTransport", "NotGiven", "Operation", "SyncTransport"]

M = TypeVar("M", bound=BaseModel)

TokenSource = str | Callable[[], str]
"""A fixed token, or a callable returning one before each request (e.g. a ``TokenMinter``)."""


class NotGiven(Enum):
    """The type of :data:`NOT_GIVEN`: an argument left out (``None`` sends ``null``)."""

    NOT_GIVEN = "NOT_GIVEN"

    def __bool__(self) -> bool:
        """Be falsy, like the absence it stands for."""
        return False

    def __repr__(self) -> str:
        """Read as the constant's name."""
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven.NOT_GIVEN

SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRIED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Operation:
    """One route of the API: method, path template, and the status of success."""

    method: str
    path: str
    status: int

    def url(self, **params: object) -> str:
        """Return the path with each ``{name}`` replaced by its URL-quoted value."""
        values = {
            name: quote(str(value), safe="/" if name == "path" else "")
            for name, value in params.items()
        }
        return self.path.format(**values)


def encode(value: Any) -> Any:
    """Return ``value`` as JSON data: models by alias (only the fields set), dates as ISO 8601."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items() if v is not NOT_GIVEN}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def query_value(value: Any) -> str:
    """Return one query parameter as text (booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Call:
    """One request to send, built by a resource method."""

    op: Operation
    path: str
    query: Mapping[str, Any] | None = None
    body: Any = None
    """The JSON body (NOT_GIVEN members left out), or None for none."""
    idempotency_key: str | None = None
    raw: Any = None
    """A proxied request's ``content`` (bytes, text) when ``body`` is None."""
    raw_method: str | None = None
    headers: Mapping[str, str] | None = None
    check: bool = True
    """Raise on an error status (a proxied call returns the app's answer whatever it is)."""


class _Base:
    def __init__(
        self, base_url: str, token: TokenSource, max_retries: int, max_retry_wait: float
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
        token = self._token if isinstance(self._token, str) else self._token()
        headers = {"Authorization": f"Bearer {token}", **(call.headers or {})}
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        params = {
            k: query_value(v)
            for k, v in (call.query or {}).items()
            if v is not None and v is not NOT_GIVEN
        }
        method = call.raw_method or call.op.method
        url = self.base_url + call.path
        if call.body is not None:
            return http.build_request(
                method, url, params=params, json=encode(call.body), headers=headers
            )
        return http.build_request(method, url, params=params, content=call.raw, headers=headers)

    def _delay(self, call: Call, response: httpx.Response, attempt: int) -> float | None:
        """Return how long to wait before trying ``call`` again, or None to stop."""
        if response.status_code not in RETRIED_STATUSES or attempt >= self.max_retries:
            return None
        method = call.raw_method or call.op.method
        if (
            response.status_code == 503
            and method not in SAFE_METHODS
            and call.idempotency_key is None
        ):
            return None
        wait = retry_after_seconds(response.headers)
        if wait is None:
            wait = 0.5 * 2**attempt
        return min(wait, self.max_retry_wait)

    @staticmethod
    def _check(call: Call, response: httpx.Response) -> httpx.Response:
        if call.check and response.is_error:
            raise error_from_response(response)
        return response


class SyncTransport(_Base):
    """Send calls with an ``httpx.Client``."""

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        token: TokenSource,
        max_retries: int,
        max_retry_wait: float,
    ) -> None:
        super().__init__(base_url, token, max_retries, max_retry_wait)
        self.http = http

    def send(self, call: Call) -> httpx.Response:
        """Send ``call`` (retrying as the module says); return the answer or raise its error."""
        attempt = 0
        while True:
            try:
                response = self.http.send(self._request(self.http, call))
            except httpx.TransportError as exc:
                raise TransportError(f"{call.op.method} {call.path}: {exc}") from exc
            delay = self._delay(call, response, attempt)
            if delay is None:
                return self._check(call, response)
            response.close()
            time.sleep(delay)
            attempt += 1

    def model(self, call: Call, cast: type[M]) -> M:
        """Send ``call`` and return its answer as ``cast``."""
        return cast.model_validate_json(self.send(call).content)

    def none(self, call: Call) -> None:
        """Send ``call``, whose answer has no body."""
        self.send(call)


class AsyncTransport(_Base):
    """Send calls with an ``httpx.AsyncClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: TokenSource,
        max_retries: int,
        max_retry_wait: float,
    ) -> None:
        super().__init__(base_url, token, max_retries, max_retry_wait)
        self.http = http

    async def send(self, call: Call) -> httpx.Response:
        """Send ``call`` (retrying as the module says); return the answer or raise its error."""
        attempt = 0
        while True:
            try:
                response = await self.http.send(self._request(self.http, call))
            except httpx.TransportError as exc:
                raise TransportError(f"{call.op.method} {call.path}: {exc}") from exc
            delay = self._delay(call, response, attempt)
            if delay is None:
                return self._check(call, response)
            await response.aclose()
            await asyncio.sleep(delay)
            attempt += 1

    async def model(self, call: Call, cast: type[M]) -> M:
        """Send ``call`` and return its answer as ``cast``."""
        return cast.model_validate_json((await self.send(call)).content)

    async def none(self, call: Call) -> None:
        """Send ``call``, whose answer has no body."""
        await self.send(call)
