"""The dedupe store of inbound deliveries forgets ids only past its retention."""

from __future__ import annotations

from uuid import uuid4

from libs.common import retention
from services.instances.inbound_webhooks import forgetting
from tests.conftest import Stack


async def test_webhook_delivery_ids_are_forgotten_only_past_retention(stack: Stack) -> None:
    pool = await stack.pool("instances")
    try:
        sub = uuid4()
        await pool.executemany(
            "INSERT INTO webhook_deliveries (subscription_id, delivery_id, received_at)"
            " VALUES ($1, $2, now() - make_interval(days => $3))",
            [(sub, "old-1", 40), (sub, "old-2", 31), (sub, "recent", 29), (sub, "new", 0)],
        )
        swept = await retention.sweep_once(pool, forgetting(30 * 86400.0), 1)  # batches of 1
        assert swept == 2
        left = await pool.fetch(
            "SELECT delivery_id FROM webhook_deliveries WHERE subscription_id = $1 ORDER BY 1",
            sub,
        )
        assert [r["delivery_id"] for r in left] == ["new", "recent"]
    finally:
        await pool.close()
