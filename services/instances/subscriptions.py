"""Answer ``tether.instances.subscriptions.*``: the webhook subscriptions deployments made."""

from __future__ import annotations

import asyncpg

from libs.common.contracts import instances as c
from libs.common.rows import reply
from services.instances.steps import StepRunner
from services.instances.store import subscriptions


class Subscriptions:
    """Subscription handlers, one per operation."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], runner: StepRunner) -> None:
        self._pool = pool
        self._runner = runner  # it knows the inbound URLs

    async def list(self, req: c.SubscriptionListRequest) -> c.SubscriptionPage:
        """List webhook subscriptions (a customer's own)."""
        workspace_id = req.ctx.workspace()
        customer_id, _ = req.ctx.customer_filter(None)
        async with self._pool.acquire() as conn:
            rows = await subscriptions.list_subscriptions(
                conn, workspace_id, req.connection_id, customer_id
            )
        return c.SubscriptionPage(
            items=[
                reply(c.AppEventSubscription, r, webhook_url=self._runner.webhook_url(r))
                for r in rows
            ]
        )
