"""Report the connections service: renewals, connections by state, the soonest token expiry.

The sampled gauges are system work across workspaces: counts and one minimum, no id.
"""

from __future__ import annotations

import math
from typing import Any, get_args

import asyncpg
from aiohttp import web
from prometheus_client import Counter, Gauge

from libs.common.contracts.connections import ConnectionState
from libs.common.metrics import Labelled, Metrics, set_by_label

REFRESH_OUTCOMES = ("ok", "failed", "revoked")
"""How a renewal ends: renewed, failed (it backs off, then ``error``), refused (disconnected)."""

# System work across workspaces: connections per state, and the seconds until the soonest
# expiry among connected connections whose token is renewed on a schedule (refresh_due_at
# set); negative when one is already past it (its renewal keeps failing).
CONNECTIONS_SQL = """
SELECT
    (SELECT coalesce(jsonb_object_agg(state, n), '{}'::jsonb)
     FROM (SELECT state, count(*) AS n FROM connections GROUP BY state) s) AS by_state,
    (SELECT extract(epoch FROM min(expires_at) - now())::float8 FROM connections
     WHERE state = 'connected' AND refresh_due_at IS NOT NULL) AS soonest_expiry
"""


class ConnectionsMetrics:
    """The connections service's group, on its app's registry."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        r = metrics.registry
        self._refreshes = Labelled(
            Counter(
                "tether_credential_refreshes_total",
                "Credential renewals, by outcome (ok|failed|revoked)",
                ["outcome"],
                registry=r,
            )
        )
        self._connections = Labelled(
            Gauge("tether_connections", "Connections by state", ["status"], registry=r)
        )
        self.soonest_expiry = Gauge(
            "tether_token_soonest_expiry_seconds",
            "Seconds until the soonest expiry of a renewable access token (NaN when none)",
            registry=r,
        )

    def refreshed(self, outcome: str) -> None:
        """Count one renewal's end: one of :data:`REFRESH_OUTCOMES`."""
        self._refreshes.child(outcome).inc()

    def watch(self, pool: asyncpg.Pool[Any]) -> None:
        """Sample connections by state and the soonest expiry through ``pool`` at each scrape."""

        async def sample() -> None:
            async with pool.acquire() as conn:
                row = await conn.fetchrow(CONNECTIONS_SQL)
            assert row is not None
            set_by_label(self._connections, dict(row["by_state"]), get_args(ConnectionState))
            soonest = row["soonest_expiry"]
            self.soonest_expiry.set(math.nan if soonest is None else soonest)

        self._metrics.add_sampler("connections", sample)


CONNECTIONS_METRICS = web.AppKey("connections_metrics", ConnectionsMetrics)
