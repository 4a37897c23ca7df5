"""Forward a request to the app as a connection: credentials injected, 401 and 429 handled."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

import aiohttp
import asyncpg

from libs.common.answers import Answer, retry_after
from libs.common.contracts import connections as c
from libs.common.errors import InvalidInput, Timeout, Unavailable
from services.connections.connections import Connections
from services.connections.probe import call_api
from services.connections.refresh import Refresher
from services.connections.settings import ConnectionsOptions
from services.connections.store import integrations
from services.connections.vault import unseal

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "authorization",
        "cookie",
        "set-cookie",
        "content-encoding",
    }
)


def safe_headers(headers: dict[str, str] | list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop hop-by-hop headers and any credential of ours (cookies, Authorization)."""
    items = headers.items() if isinstance(headers, dict) else headers
    return [(k, v) for k, v in items if k.lower() not in HOP_BY_HOP]


class Proxy:
    """The proxy handler."""

    def __init__(
        self,
        connections: Connections,
        refresher: Refresher,
        http: aiohttp.ClientSession,
        options: ConnectionsOptions,
        pool: asyncpg.Pool[Any],
    ) -> None:
        self._connections = connections
        self._refresher = refresher
        self._http = http
        self._options = options
        self._pool = pool

    async def request(self, req: c.ProxyRequest) -> c.ProxyReply:
        """Call the app; renew once on 401, wait out a short 429 once, pass the answer back."""
        record = await self._connections.visible(req.ctx, req.id)
        async with self._pool.acquire() as conn:
            integration = await integrations.select_integration(
                conn, record.workspace_id, record.integration_key
            )
        if integration is None or integration.api is None:
            raise InvalidInput(
                "this integration has no API configured", code="integration_without_api"
            )
        api = integration.api
        try:
            body = base64.b64decode(req.body, validate=True) if req.body else None
        except binascii.Error as exc:
            raise InvalidInput("body must be base64", details=[{"field": "body"}]) from exc
        headers = dict(safe_headers(req.headers))
        allow_archived = req.ctx.principal == "system"
        record, values = await self._refresher.current(
            record.workspace_id, record.id, allow_archived=allow_archived
        )

        async def send(creds: dict[str, Any]) -> Answer:
            try:
                return await call_api(
                    self._http,
                    api,
                    creds,
                    method=req.method,
                    path=req.path,
                    query=req.query,
                    headers=headers,
                    body=body,
                    timeout=self._options.http_timeout,
                )
            except TimeoutError as exc:
                raise Timeout("the app did not answer in time") from exc
            except aiohttp.ClientError as exc:
                raise Unavailable(f"the app could not be reached: {type(exc).__name__}") from exc

        answer = await send(values)
        if answer.status == 401 and isinstance(
            integration.auth, c.OAuth2Auth | c.ClientCredentialsAuth
        ):
            renewed = await self._refresher.renew(record.workspace_id, record.id, record.version)
            if renewed.state == "connected" and renewed.version != record.version:
                values = unseal(self._refresher.keyring, renewed)
                answer = await send(values)
                if answer.status == 401:
                    await self._connections.disconnect(
                        renewed, "the app refused fresh credentials (401)"
                    )
        if answer.status == 429:
            wait = retry_after(answer.header("retry-after"))
            if wait is not None and wait <= self._options.proxy_max_retry_after:
                await asyncio.sleep(wait)  # the app asked for exactly this pause
                # Read the credentials again: the renewal above, or one elsewhere during the
                # pause, has replaced the ones this request started with.
                _, values = await self._refresher.current(
                    record.workspace_id, record.id, allow_archived=allow_archived
                )
                answer = await send(values)
        return c.ProxyReply(
            status=answer.status,
            headers=safe_headers(answer.headers),
            body=base64.b64encode(answer.body).decode(),
        )
