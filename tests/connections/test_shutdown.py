"""A graceful stop lands between renewals: one that has begun finishes and commits."""

from __future__ import annotations

import asyncio
from uuid import UUID

import aiohttp
import pytest

from libs.common.crypto import Keyring
from libs.common.db import Conn
from services.connections.outbound import Outbound
from services.connections.refresh import Refresher
from services.connections.settings import ConnectionsOptions
from services.connections.store.connections import ConnectionRecord
from services.connections.worker import refresh_worker
from tests.conftest import Stack, eventually
from tests.connections.conftest import Fake


class _Observed(Refresher):
    """A refresher that says when it starts renewing one connection."""

    def __init__(self, watched: UUID, out: Outbound) -> None:
        super().__init__(out)
        self.watched = watched
        self.started = asyncio.Event()

    async def renew_locked(self, conn: Conn, record: ConnectionRecord) -> ConnectionRecord:
        if record.id == self.watched:
            self.started.set()
        return await super().renew_locked(conn, record)


async def test_refresh_worker_stopped_mid_renewal_keeps_the_rotated_refresh_token(
    fake: Fake, stack: Stack
) -> None:
    """Cancelled while the provider answers, the worker still commits the new refresh token.

    The provider rotates refresh tokens strictly: were the answer lost, the stored refresh
    token would be dead and the next renewal would disconnect the connection.
    """
    connection_id = await fake.connect("stopped-mid-renewal")
    pool = await stack.pool("connections")
    options = ConnectionsOptions(public_url=stack.gateway_url, refresh_poll_interval=0.05)
    fake.provider.answer_delay = 0.5  # the provider has rotated; its answer is on the way
    try:
        async with aiohttp.ClientSession() as http:
            keyring = Keyring.from_setting(stack.infra.master_keys)
            refresher = _Observed(UUID(connection_id), Outbound(pool, keyring, http, options))
            worker = asyncio.create_task(refresh_worker(pool, refresher, options, grace=10))
            # The stack's own workers compete for the claim: make it due until ours wins it.
            for _ in range(30):
                calls = fake.provider.token_calls
                version = await pool.fetchval(
                    "UPDATE connections SET refresh_due_at = now() WHERE id = $1 RETURNING version",
                    connection_id,
                )

                async def provider_asked(calls: int = calls) -> bool:
                    return fake.provider.token_calls > calls

                await eventually(provider_asked)
                if refresher.started.is_set():
                    break

                async def renewed_elsewhere(version: int = version) -> bool:
                    now = await pool.fetchval(
                        "SELECT version FROM connections WHERE id = $1", connection_id
                    )
                    return bool(now > version)

                await eventually(renewed_elsewhere)
            else:
                pytest.fail("the stack's workers always claimed the renewal first")
            worker.cancel()  # what a graceful stop does to background tasks
            with pytest.raises(asyncio.CancelledError):
                await worker
    finally:
        fake.provider.answer_delay = 0
        await pool.close()
    values = (await fake.credentials(connection_id))["values"]
    assert values["refresh_token"] == fake.provider.issued_refresh_tokens[-1]
    async with fake.http.post(
        fake.ws.url(f"/connections/{connection_id}/refresh"), headers=fake.admin
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["state"] == "connected"
