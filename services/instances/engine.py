"""Deployment workers: lease a step, run it, record the outcome, finish the deployment.

Any number of workers in any number of replicas share the steps: a step is leased with
``FOR UPDATE SKIP LOCKED``; a step whose worker died is taken again when its lease ends
(steps are idempotent, see ``steps.py``). Transient failures, and steps that crash with
an unexpected exception, retry with exponential backoff and jitter up to
``step_max_attempts`` and then fail; permanent ones fail the step with the app's message.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import structlog

from services.instances import store
from services.instances.appclient import StepFailure
from services.instances.planner import announce
from services.instances.settings import InstancesOptions
from services.instances.steps import StepRunner
from services.instances.store import StepRecord

log = structlog.get_logger(__name__)


def worker_id() -> str:
    """Return a name for this replica's step leases."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"


class DeployEngine:
    """Runs deployment steps until cancelled."""

    def __init__(
        self, pool: asyncpg.Pool[Any], runner: StepRunner, options: InstancesOptions
    ) -> None:
        self._pool = pool
        self._runner = runner
        self._options = options
        self._owner = worker_id()

    async def work(self) -> None:
        """Run one worker: claim, execute, record; idle briefly when nothing is ready."""
        while True:
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    step = await store.claim_step(conn, self._owner, self._options.step_lease)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("deploy_claim_failed", error=str(exc))
                step = None
            if step is None:
                await asyncio.sleep(self._options.deploy_poll_interval)  # nothing ready: poll again
                continue
            await self.execute(step)

    async def execute(self, step: StepRecord) -> None:
        """Run one leased step and record what happened.

        A step that raises anything but :class:`StepFailure` (a bug, a value the database
        refuses) is a transient failure like any other: it counts against
        ``step_max_attempts`` with the same backoff, so it cannot retry forever. Nor can a
        step whose worker dies each time: each lease counts as an attempt.
        """
        failure: StepFailure | None = None
        try:
            if step.attempts > self._options.step_max_attempts:
                # Only a lease that ran out gets here (the worker died or hung every time):
                # running it again could kill this worker too.
                raise StepFailure("gave up: the step never finished", transient=False)
            await self._runner.run(step)
        except StepFailure as exc:
            failure = exc
        except Exception:
            log.exception("deploy_step_crashed", step_id=str(step.id), attempts=step.attempts)
            failure = StepFailure("internal error", transient=True)  # the log has the details
        status, error, retry_at = "succeeded", None, None
        if failure is not None:
            error = failure.message
            if failure.transient and step.attempts < self._options.step_max_attempts:
                status, retry_at = "pending", self._retry_at(step.attempts)
            else:
                status = "failed"
        log.info(
            "deploy_step_finished",
            step_id=str(step.id),
            kind=step.kind,
            status=status,
            attempts=step.attempts,
        )
        async with self._pool.acquire() as conn, conn.transaction():
            if not await store.finish_step(conn, step, self._owner, status, error, retry_at):
                return  # our lease ran out and another worker took the step over
            record, finished = await store.update_progress(conn, step.deployment_id)
            if finished:
                await announce(conn, record)

    def _retry_at(self, attempts: int) -> datetime:
        """Return when a step that failed ``attempts`` times may run again (backoff, jitter)."""
        delay = min(
            self._options.step_backoff_cap, self._options.step_backoff_base * 2 ** (attempts - 1)
        )
        return datetime.now(UTC) + timedelta(seconds=delay * (0.5 + random.random()))  # noqa: S311
