"""Report the instances service: deployment steps, action runs, syncs, inbound webhooks.

The sampled gauge (steps by state) is system work across workspaces: counts only, no id.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import Counter, Gauge

from libs.common.db import Conn
from libs.common.jobs import OUTCOME_LABELS, Job, OnFinish, Outcome
from libs.common.metrics import Labelled, Metrics, set_by_label

STEP_STATES = ("pending", "running")
"""The states of unfinished steps (finished ones are history, not load)."""

# System work across workspaces: a deployment step is a job of queue 'deployments' (its
# id is the step's), so unfinished steps are counted from the jobs table's partial indexes
# (jobs_ready_idx, jobs_leased_idx) rather than by scanning every step ever planned.
STEPS_SQL = """
SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb) AS by_state
FROM (SELECT status, count(*) AS n FROM jobs
      WHERE queue = $1 AND status IN ('pending', 'running') GROUP BY status) s
"""


class InstancesMetrics:
    """The instances service's group, on its app's registry."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        r = metrics.registry
        self._steps = Labelled(
            Gauge(
                "tether_deployment_steps",
                "Unfinished deployment steps by state (pending|running)",
                ["state"],
                registry=r,
            )
        )
        self._step_attempts = Labelled(
            Counter(
                "tether_deployment_step_attempts_total",
                "Deployment step attempts, by outcome (succeeded|retry|failed)",
                ["outcome"],
                registry=r,
            )
        )
        self._action_runs = Labelled(
            Counter(
                "tether_action_runs_total",
                "Action runs, by outcome (succeeded|failed|replayed)",
                ["outcome"],
                registry=r,
            )
        )
        self._sync_passes = Labelled(
            Counter(
                "tether_sync_passes_total",
                "Sync passes ended, by outcome (completed|held|failed)",
                ["outcome"],
                registry=r,
            )
        )
        self._synced = Labelled(
            Counter(
                "tether_synced_records_total",
                "Records a sync found changed, by change (created|updated|deleted)",
                ["change"],
                registry=r,
            )
        )
        self._inbound = Labelled(
            Counter(
                "tether_inbound_webhooks_total",
                "Inbound webhooks, by outcome (accepted|duplicate|rejected)",
                ["outcome"],
                registry=r,
            )
        )

    def counting_steps(self, on_finish: OnFinish) -> OnFinish:
        """Return ``on_finish`` (a step job's hook) counting each attempt's outcome first."""

        async def counted(conn: Conn, job: Job, outcome: Outcome) -> None:
            self._step_attempts.child(OUTCOME_LABELS[outcome.status]).inc()
            await on_finish(conn, job, outcome)

        return counted

    def action_run(self, outcome: str) -> None:
        """Count one action run: ``succeeded``, ``failed`` or ``replayed`` (idempotent repeat)."""
        self._action_runs.child(outcome).inc()

    def sync_pass(self, outcome: str) -> None:
        """Count one sync pass's end: ``completed``, ``held`` or ``failed``."""
        self._sync_passes.child(outcome).inc()

    def records_synced(self, *, created: int = 0, updated: int = 0, deleted: int = 0) -> None:
        """Count the records a sync page (or a pass's end) found changed."""
        for change, count in (("created", created), ("updated", updated), ("deleted", deleted)):
            if count:
                self._synced.child(change).inc(count)

    def inbound_webhook(self, outcome: str) -> None:
        """Count one inbound webhook: ``accepted``, ``duplicate`` or ``rejected``."""
        self._inbound.child(outcome).inc()

    def watch(self, pool: asyncpg.Pool[Any], queue: str) -> None:
        """Sample unfinished steps (jobs of ``queue``) by state through ``pool`` at each scrape."""

        async def sample() -> None:
            async with pool.acquire() as conn:
                by_state = await conn.fetchval(STEPS_SQL, queue)
            set_by_label(self._steps, dict(by_state), STEP_STATES)

        self._metrics.add_sampler("deployment_steps", sample)


INSTANCES_METRICS = web.AppKey("instances_metrics", InstancesMetrics)
