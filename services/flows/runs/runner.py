"""Execute runs durably: the job handler of queue ``flow_runs``.

Each run is one job (kind ``run``, partition = its connection, so at most
``runs_per_connection`` runs of a connection execute at once, in the order they were
queued, and a deep queue on one connection never delays another's: see
``libs/common/jobs.py``). A run that waits (a delay, a long retry pause) hands over to a
*continuation* job (same queue and partition, ``not_before`` = the end of the wait) and
holds no worker meanwhile. Only the job the run names (``flow_runs.job_id``) executes it;
any other (a stale job re-claimed after a crash) finds nothing to do.

What a run is guaranteed, whatever process dies when (kill -9 included):

* **Completed nodes never run again.** Every execution is a ``flow_run_nodes`` row; a
  claim that resumes a run takes completed nodes' outputs from their rows.
* **The node in flight runs at most once more, with the same idempotency key.** A node
  with side effects (every type but ``transform`` and ``filter``) is recorded ``running``
  (attempts + 1) in its own transaction *before* it is called, and its result right after.
  A process killed between the two leaves exactly that node ``running``; the next claim
  (after the job's lease, ``run_lease`` seconds) calls it again, with the same
  ``Idempotency-Key: <runId>:<nodeKey>[:<item>]``, so an app that honours the key applies
  it once. A for-each item's nodes are recorded the same way, each item its own row, so
  only the items in flight run again. Pure nodes (transform, filter) have no effect
  outside the run and may be computed again; their records go out with the next write.
* **No run stays running forever.** A claimed job is retried until ``run_max_attempts``
  claims (a replica that died each time counts one); its last failure fails the run
  (``on_finish``) with an error saying so.
* **A waiting run survives restarts.** Its ``waiting`` row and its continuation job commit
  together; the continuation starts no earlier than the wait's end, on any replica.
* **Stops land between nodes.** ``stop_requested`` is read in the transaction that records
  the next side-effecting node ``running`` (the run row is locked there), so a stopped run
  calls no further app; a queued or waiting run is stopped at once (``control.py``).
* **Every state change and its event commit together** (``flow_run.*`` via the outbox).

Limits fail a run (whatever ``onError`` says): ``run_timeout`` past ``run_max_seconds``
spent in nodes (waits excluded: ``active_ms``), ``too_many_nodes`` past
``max_nodes_per_run`` executions (for-each items included). A node whose output is over
``node_output_limit`` bytes fails with ``output_too_large`` (its ``onError`` applies).

Simplifications, on purpose: nodes of one run execute one at a time (parallel branches
are visited in order); a wait suspends the whole run; a wait inside a for-each item is
held in memory by its worker (a crash redoes the items that were not recorded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from libs.common.bus import Bus
from libs.common.cache import TtlCache
from libs.common.contracts import flows as c
from libs.common.contracts import identity
from libs.common.contracts.base import Context
from libs.common.db import Conn
from libs.common.errors import NotFound, TetherError
from libs.common.jobs import GAVE_UP, Job, JobFailure, Outcome
from services.flows.metrics import FlowsMetrics
from services.flows.nodes.base import NodeServices, NodeType
from services.flows.runs import store
from services.flows.runs.events import announce
from services.flows.runs.execution import Execution, RunLimit, Stopped
from services.flows.runs.store import RunRecord
from services.flows.settings import FlowsOptions

log = structlog.get_logger(__name__)


class Runner:
    """The handler of run jobs, with the hooks that keep a run's state beside its job's."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        bus: Bus,
        options: FlowsOptions,
        services: NodeServices,
        registry: Mapping[str, NodeType],
        metrics: FlowsMetrics | None = None,
    ) -> None:
        """Run on ``pool`` with ``registry``'s node types; ``metrics`` counts runs and nodes."""
        self._pool = pool
        self._bus = bus
        self._options = options
        self._services = services
        self._registry = dict(registry)
        self._metrics = metrics
        # A run reads its customer once; runs of one customer come in bursts, so keep the
        # answer briefly rather than ask identity per run (a rename shows within the TTL).
        self._customers: TtlCache[tuple[UUID, str], dict[str, Any]] = TtlCache(
            10_000, options.run_customer_ttl
        )

    async def on_start(self, conn: Conn, job: Job) -> None:
        """Mark a queued run running (and announce it) in the claim's transaction."""
        run_id = UUID(job.payload["runId"])
        assert job.workspace_id is not None
        row = await store.mark_started(conn, job.workspace_id, run_id)
        if row is not None:
            await announce(conn, row)

    async def on_finish(self, conn: Conn, job: Job, outcome: Outcome) -> None:
        """Fail the run when its job failed for good (it crashed every time it was claimed)."""
        if outcome.status != "failed" or job.workspace_id is None:
            return
        run = await store.select_run(conn, job.workspace_id, UUID(job.payload["runId"]))
        if run is None or run.ended or run.job_id != job.id:
            return
        code = "run_crashed" if outcome.error == GAVE_UP else "internal"
        error = c.RunError(code=code, message=outcome.error or "the run failed")
        row = await store.end_run(conn, run.workspace_id, run.id, "failed", [*run.errors, error])
        if row is not None:
            await announce(conn, row)
            if self._metrics is not None:
                self._metrics.run_ended("failed")

    async def handle(self, job: Job) -> None:
        """Execute (or resume) the run ``job`` names, until it ends or waits."""
        assert job.workspace_id is not None
        run_id = UUID(job.payload["runId"])
        async with self._pool.acquire() as conn:
            run = await store.select_run(conn, job.workspace_id, run_id)
            if run is None or run.ended or run.job_id != job.id:
                return
            rows = await store.select_nodes(conn, job.workspace_id, run_id)
        structlog.contextvars.bind_contextvars(run_id=str(run_id))
        try:
            customer = run.customer or await self.customer(run)
            execution = Execution(
                pool=self._pool,
                run=run,
                rows={(r.node_key, r.item): r for r in rows},
                registry=self._registry,
                services=self._services,
                options=self._options,
                customer=customer,
                metrics=self._metrics,
            )
            if run.stop_requested:
                await self.end(execution, "stopped")
                return
            try:
                outcome = await execution.walk(run.definition.nodes, "", "", execution.scope())
            except Stopped:
                await self.end(execution, "stopped")
                return
            except RunLimit as exc:
                await self.end(execution, "failed", exc.error)
                return
            if outcome.state != "waiting":
                await self.end(execution, outcome.state, outcome.error)
        finally:
            structlog.contextvars.unbind_contextvars("run_id")

    async def customer(self, run: RunRecord) -> dict[str, Any]:
        """Return the run's customer as expressions see it (read from identity, as system)."""
        cached = self._customers.get((run.workspace_id, run.customer_id))
        if cached is None:
            cached = await self._read_customer(run)
            self._customers.put((run.workspace_id, run.customer_id), cached)
        return cached

    async def _read_customer(self, run: RunRecord) -> dict[str, Any]:
        ctx = Context(principal="system", workspace_id=run.workspace_id)
        try:
            found = await self._bus.call(
                identity.CUSTOMERS_GET, identity.CustomerGetRequest(id=run.customer_id, ctx=ctx)
            )
        except NotFound:
            return {"id": run.customer_id, "name": None, "fields": {}}
        except TetherError as exc:  # identity is away: try again later
            raise JobFailure(f"the customer could not be read: {exc.code}", transient=True) from exc
        return {"id": found.id, "name": found.name, "fields": found.fields}

    async def end(
        self, execution: Execution, state: c.RunState, error: c.RunError | None = None
    ) -> None:
        """Write the pending records and end the run in ``state``, with its event."""
        run = execution.run
        errors = [*execution.errors, *([error] if error else [])]
        async with self._pool.acquire() as conn, conn.transaction():
            await execution.flush(conn)
            if state == "stopped":
                await store.end_waits(conn, run.workspace_id, run.id)
            row = await store.end_run(
                conn,
                run.workspace_id,
                run.id,
                state,
                errors,
                nodes_executed=execution.nodes_executed,
                active_ms=execution.active_ms,
                customer=execution.customer,
            )
            if row is not None:
                await announce(conn, row)
        if row is not None and self._metrics is not None:
            self._metrics.run_ended(state)
        log.info("run_ended", state=state, error=error.code if error else None)
