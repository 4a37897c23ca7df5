"""The clients: ``Tether`` (sync) and ``AsyncTether``, every resource an attribute of each.

Both take the gateway's URL and a token (a string, or a callable such as
:class:`TokenMinter` asked before each request). ``for_admin`` / ``for_customer`` mint and
renew the tokens themselves from the workspace key and secret: use them on your backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from tether_client._async_resources import AsyncResources
from tether_client._resources import Resources
from tether_client._tokens import DEFAULT_TTL, TokenMinter
from tether_client._transport import AsyncTransport, SyncTransport, TokenSource

__all__ = ["AsyncTether", "Tether"]

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_RETRY_WAIT = 30.0


def _minter(
    key: str,
    secret: str,
    customer_id: str | None = None,
    name: str | None = None,
    fields: Mapping[str, Any] | None = None,
    ttl: int = DEFAULT_TTL,
) -> TokenMinter:
    return TokenMinter(key, secret, customer_id=customer_id, name=name, fields=fields, ttl=ttl)


class Tether(Resources):
    """A synchronous client of one gateway (``client.customers.list()``, …).

    ``timeout`` is seconds per request (an ``httpx.Timeout`` too); a 429 — and a 503 of a
    request safe to repeat — is retried ``max_retries`` times, waiting ``Retry-After``
    up to ``max_retry_wait`` seconds. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        """Talk to the gateway at ``base_url``; ``http_client`` (yours to close) is used as is."""
        self._own_http = http_client is None
        self.http = http_client or httpx.Client(timeout=timeout, headers=headers)
        super().__init__(SyncTransport(self.http, base_url, token, max_retries, max_retry_wait))

    @classmethod
    def for_admin(cls, base_url: str, key: str, secret: str, **options: Any) -> Self:
        """Return a client whose admin tokens are minted (and renewed) from the secret."""
        return cls(base_url, _minter(key, secret), **options)

    @classmethod
    def for_customer(
        cls,
        base_url: str,
        key: str,
        secret: str,
        customer_id: str,
        *,
        name: str | None = None,
        fields: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Self:
        """Return a client acting as ``customer_id``, its tokens minted from the secret."""
        return cls(base_url, _minter(key, secret, customer_id, name, fields), **options)

    def close(self) -> None:
        """Close the connections (not those of an ``http_client`` given to the client)."""
        if self._own_http:
            self.http.close()

    def __enter__(self) -> Self:
        """Return the client for a ``with`` block."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client at the end of a ``with`` block."""
        self.close()


class AsyncTether(AsyncResources):
    """An asyncio client of one gateway (``await client.customers.list()``, …).

    The same options and resources as :class:`Tether`; close it with :meth:`aclose` or
    ``async with``.
    """

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        """Talk to the gateway at ``base_url``; ``http_client`` (yours to close) is used as is."""
        self._own_http = http_client is None
        self.http = http_client or httpx.AsyncClient(timeout=timeout, headers=headers)
        super().__init__(AsyncTransport(self.http, base_url, token, max_retries, max_retry_wait))

    @classmethod
    def for_admin(cls, base_url: str, key: str, secret: str, **options: Any) -> Self:
        """Return a client whose admin tokens are minted (and renewed) from the secret."""
        return cls(base_url, _minter(key, secret), **options)

    @classmethod
    def for_customer(
        cls,
        base_url: str,
        key: str,
        secret: str,
        customer_id: str,
        *,
        name: str | None = None,
        fields: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Self:
        """Return a client acting as ``customer_id``, its tokens minted from the secret."""
        return cls(base_url, _minter(key, secret, customer_id, name, fields), **options)

    async def aclose(self) -> None:
        """Close the connections (not those of an ``http_client`` given to the client)."""
        if self._own_http:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        """Return the client for an ``async with`` block."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client at the end of an ``async with`` block."""
        await self.aclose()
