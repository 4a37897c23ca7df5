"""Report the flows service: runs by state, the deepest per-connection queues, node times.

The sampled gauges are system work across workspaces: counts only. The queue depths are
the N deepest per-connection queues by rank ("1" is the deepest), never a connection id.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from libs.common.metrics import Labelled, Metrics, set_by_label

TOP_QUEUES = 10
"""How many of the deepest per-connection queues are reported (ranks "1" to "10")."""
LIVE_STATES = ("queued", "running", "waiting")
NODE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
"""Nodes call apps: their durations reach minutes, unlike a request's."""

# System work across workspaces. A live run's state as it is lived: queued (its run row,
# from flow_runs_queued_idx), running (its job is leased by a worker) or waiting (a started
# run whose job waits: a delay or a long retry pause). Only the job the run names counts.
RUNS_SQL = """
SELECT
    (SELECT count(*) FROM flow_runs WHERE state = 'queued') AS queued,
    count(*) FILTER (WHERE j.status = 'running') AS running,
    count(*) FILTER (WHERE j.status = 'pending') AS waiting
FROM jobs j JOIN flow_runs r ON r.id = (j.payload->>'runId')::uuid AND r.job_id = j.id
WHERE j.queue = $1 AND j.status IN ('pending', 'running') AND r.state = 'running'
"""
# System work across workspaces: the sizes of the deepest queues of queued runs, one per
# connection (flow_runs_queued_idx holds exactly those rows), no id returned.
QUEUE_DEPTHS_SQL = """
SELECT count(*) AS depth FROM flow_runs WHERE state = 'queued'
GROUP BY workspace_id, connection_id ORDER BY depth DESC LIMIT $1
"""


class FlowsMetrics:
    """The flows service's group, on its app's registry."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        r = metrics.registry
        self._ended = Labelled(
            Counter(
                "tether_flow_runs_total",
                "Runs that ended, by state (completed|failed|stopped)",
                ["state"],
                registry=r,
            )
        )
        self._live = Labelled(
            Gauge(
                # Not ``tether_flow_runs``: the family of tether_flow_runs_total has that name
                # (prometheus-client and OpenMetrics refuse a gauge beside it).
                "tether_flow_runs_active",
                "Live runs by state (queued|running|waiting)",
                ["state"],
                registry=r,
            )
        )
        self._depth = Labelled(
            Gauge(
                "tether_flow_run_queue_depth",
                'Queued runs of the N deepest per-connection queues, by rank ("1" deepest)',
                ["rank"],
                registry=r,
            )
        )
        self._nodes = Labelled(
            Histogram(
                "tether_flow_node_duration_seconds",
                "Seconds one try of a node took, by node type and outcome",
                ["node_type", "outcome"],
                buckets=NODE_BUCKETS,
                registry=r,
            )
        )

    def run_ended(self, state: str) -> None:
        """Count a run that reached ``state`` (completed, failed or stopped)."""
        self._ended.child(state).inc()

    def node_tried(self, node_type: str, outcome: str, seconds: float) -> None:
        """Time one try of a node: ``outcome``: ok, error, timeout, crashed, interrupted."""
        self._nodes.child(node_type, outcome).observe(seconds)

    def watch(self, pool: asyncpg.Pool[Any], queue: str) -> None:
        """Sample live runs (jobs of ``queue``) and the deepest queues at each scrape."""

        async def sample() -> None:
            async with pool.acquire() as conn:
                live = await conn.fetchrow(RUNS_SQL, queue)
                depths = [r["depth"] for r in await conn.fetch(QUEUE_DEPTHS_SQL, TOP_QUEUES)]
            assert live is not None
            set_by_label(self._live, {s: live[s] for s in LIVE_STATES}, LIVE_STATES)
            for rank in range(TOP_QUEUES):
                self._depth.child(str(rank + 1)).set(depths[rank] if rank < len(depths) else 0)

        self._metrics.add_sampler("flow_runs", sample)


FLOWS_METRICS = web.AppKey("flows_metrics", FlowsMetrics)
