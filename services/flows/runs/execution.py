"""Execute one claim of a run: walk its graph, record every node execution, batch pure ones.

:mod:`services.flows.runs.runner` states the guarantees; this module keeps them:

* Nodes are visited in :func:`graph.order` (predecessors first, ties by key). A node runs
  when it is a root or at least one predecessor *passed* (completed without ending its
  branch, or failed with ``onError: continue``); otherwise it is recorded ``skipped``.
* A recorded execution is never redone: a ``completed`` row gives its output, a
  ``skipped`` or ``failed`` one its verdict. Only a ``running`` row (its node was in flight
  when the process died) runs again, with the same idempotency key.
* A node with side effects is written ``running`` (attempts + 1) before each try and its
  result right after, each in its own transaction; that ``running`` write also checks the
  stop flag (it locks the run row), so a stop lands before the next such node. A pure
  node's record waits in memory and goes out with the next write (it may run again after
  a crash: it has no effect outside the run).
* A wait (a delay, or a retry whose pause is long) is a ``waiting`` row and a continuation
  job committed together; the claim then ends and holds no worker.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import structlog
from pydantic import ValidationError

from libs.common import jobs
from libs.common.backoff import backoff_delay
from libs.common.contracts import flows as c
from libs.common.expressions import ExpressionError, resolve
from services.flows.metrics import FlowsMetrics
from services.flows.nodes.base import (
    EachRunner,
    NodeCall,
    NodeConfig,
    NodeError,
    NodeResult,
    NodeServices,
    NodeType,
)
from services.flows.nodes.for_each import inner_graph
from services.flows.runs import store
from services.flows.runs.graph import order, predecessors
from services.flows.runs.start import run_job
from services.flows.runs.store import NodeRecord, RunRecord
from services.flows.settings import FlowsOptions

log = structlog.get_logger(__name__)

DEFAULT_RETRY = c.RetryPolicy()
"""Without ``retry``: 3 tries for transient errors, 1 s before the second (doubling)."""
RETRY_CAP = 300.0
"""The longest pause between two tries that backoff gives (``Retry-After`` may ask more)."""
BRANCH_ENDED = "branchEnded"
"""The log key that marks an execution that ended its branch (a falsy filter)."""
"""Node types flows accept that have no runner yet (they come with the data issue)."""


class Stopped(Exception):
    """The run's stop was requested: end it before the next node."""


class RunLimit(Exception):
    """The run hit one of its limits; it fails whatever the node's ``onError`` says."""

    def __init__(self, code: str, message: str, node: str | None = None) -> None:
        super().__init__(message)
        self.error = c.RunError(code=code, message=message, node=node)


@dataclass(frozen=True)
class Outcome:
    """How a walk of a graph (the run's, or one for-each item's) ended."""

    state: Literal["completed", "failed", "waiting"]
    error: c.RunError | None = None


Verdict = Literal["pass", "block", "fail", "wait"]


@dataclass
class Execution:
    """One claim of one run: what is recorded, what waits to be written, the counters."""

    pool: asyncpg.Pool[Any]
    run: RunRecord
    rows: dict[tuple[str, str], NodeRecord]
    registry: dict[str, NodeType]
    services: NodeServices
    options: FlowsOptions
    customer: dict[str, Any]
    metrics: FlowsMetrics | None = None
    pending: list[NodeRecord] = field(default_factory=list)
    errors: list[c.RunError] = field(default_factory=list)
    seq: int = 0
    nodes_executed: int = 0
    active_ms: float = 0.0

    def __post_init__(self) -> None:
        self.seq = max((r.seq for r in self.rows.values()), default=0)
        self.nodes_executed = self.run.nodes_executed
        self.active_ms = self.run.active_ms

    def scope(self) -> dict[str, Any]:
        """Return the run context expressions see (``nodes`` fills in as nodes complete)."""
        return {
            "input": self.run.input,
            "nodes": {},
            "parameters": self.run.parameters,
            "customer": self.customer,
            "connection": {
                "id": str(self.run.connection_id),
                "integrationKey": self.run.integration_key,
            },
        }

    # --- walking ------------------------------------------------------------------------

    async def walk(
        self, nodes: dict[str, c.Node], prefix: str, item: str, scope: dict[str, Any]
    ) -> Outcome:
        """Visit every node of ``nodes`` once; stop at the first failure or wait."""
        before = predecessors(nodes)
        passed: dict[str, bool] = {}
        for key in order(nodes):
            active = not before[key] or any(passed.get(p, False) for p in before[key])
            verdict, error = await self.visit(nodes[key], key, prefix, item, active, scope)
            if verdict == "fail":
                return Outcome("failed", error)
            if verdict == "wait":
                return Outcome("waiting")
            passed[key] = verdict == "pass"
        return Outcome("completed")

    async def visit(
        self,
        node: c.Node,
        key: str,
        prefix: str,
        item: str,
        active: bool,
        scope: dict[str, Any],
    ) -> tuple[Verdict, c.RunError | None]:
        """Settle one node: from its record when it has one, else by running (or skipping) it."""
        full = prefix + key
        row = self.rows.get((full, item))
        if row is not None and row.state == "completed":
            scope["nodes"][key] = row.output
            ended = any(line.get(BRANCH_ENDED) for line in row.logs)
            return ("block" if ended else "pass"), None
        if row is not None and row.state == "skipped":
            return "block", None
        if row is not None and row.state == "failed":
            return self.failed(node, key, row, scope)
        if row is not None and row.state == "waiting":
            if row.wait_until is not None and row.wait_until > datetime.now(UTC):
                return "wait", None  # not yet: the continuation job resumes the run
            if row.error is None:  # a delay that is over
                done = row.model_copy(update={"state": "completed", "ended_at": _now()})
                self.remember(done, buffer=True)
                scope["nodes"][key] = row.output
                return "pass", None
        if not active:
            self.seq += 1
            skipped = NodeRecord(
                node_key=full, item=item, seq=self.seq, type=node.type, state="skipped"
            )
            self.remember(skipped, buffer=True)
            return "block", None
        return await self.execute(node, key, prefix, item, scope, row)

    def failed(
        self, node: c.Node, key: str, row: NodeRecord, scope: dict[str, Any]
    ) -> tuple[Verdict, c.RunError | None]:
        """Apply ``onError`` to a failed execution: the run goes on past it, or fails."""
        if node.on_error == "continue":
            if row.error is not None:
                self.errors.append(row.error)
            scope["nodes"][key] = None
            return "pass", None
        return "fail", row.error

    # --- one node -----------------------------------------------------------------------

    async def execute(
        self,
        node: c.Node,
        key: str,
        prefix: str,
        item: str,
        scope: dict[str, Any],
        previous: NodeRecord | None,
    ) -> tuple[Verdict, c.RunError | None]:
        """Run one node (with retries) and record it; return how it settled."""
        full = prefix + key
        if previous is None:
            self.seq += 1
        record = previous or NodeRecord(
            node_key=full, item=item, seq=self.seq, type=node.type, state="running"
        )
        kind = self.registry.get(node.type)
        if kind is None:
            # Only a run of a definition saved before its type was retired gets here.
            error = c.RunError(
                code="unknown_node_type", message=f"no runner for {node.type} nodes", node=full
            )
            return await self.settle_failure(node, key, record, error, scope, pure=True)
        self.nodes_executed += 1
        if self.nodes_executed > self.options.max_nodes_per_run:
            raise RunLimit(
                "too_many_nodes",
                f"the run would execute more than {self.options.max_nodes_per_run} nodes",
                full,
            )
        try:
            resolved, config = self.configure(kind, node, scope)
        except ExpressionError as exc:
            error = c.RunError(code="invalid_expression", message=exc.message, node=full)
            return await self.settle_failure(node, key, record, error, scope, pure=kind.pure)
        except ValidationError as exc:
            problems = [
                {"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            error = c.RunError(
                code="invalid_config",
                message=f"the config is not valid: {problems[0]['field']}: {problems[0]['message']}",
                node=full,
                data=problems,
            )
            return await self.settle_failure(node, key, record, error, scope, pure=kind.pure)
        policy = node.retry or DEFAULT_RETRY
        logs = list(record.logs)
        while True:
            record = record.model_copy(
                update={
                    "state": "running",
                    "attempts": record.attempts + 1,
                    "input": resolved,
                    "logs": logs,
                    "error": None,
                    "wait_until": None,
                    "started_at": _now(),
                    "ended_at": None,
                }
            )
            if not kind.pure:
                await self.write([record], check_stop=True)
            call = self.call(node, full, item, scope, logs)
            result, failure = await self.attempt(kind, config, call, top=not prefix)
            if failure is None:
                assert result is not None
                return await self.settle_success(node, key, prefix, record, result, scope, kind)
            logs.append({"message": "try_failed", "try": record.attempts, "code": failure.code})
            error = c.RunError(
                code=failure.code, message=failure.message, node=full, data=failure.data
            )
            # Tries count across claims (the row keeps them), so a retry that waited in a
            # continuation job, or a try cut short by a crash, counts once.
            if not failure.transient or record.attempts >= policy.attempts:
                return await self.settle_failure(node, key, record, error, scope, pure=kind.pure)
            pause = failure.retry_after
            if pause is None:
                pause = backoff_delay(
                    record.attempts, base=max(policy.backoff, 0.001), cap=RETRY_CAP
                )
            if pause > self.options.retry_inline_max and not prefix:
                # A long pause frees the worker: the continuation job tries again later.
                waiting = record.model_copy(
                    update={
                        "state": "waiting",
                        "error": error,
                        "logs": logs,
                        "wait_until": _now() + timedelta(seconds=pause),
                    }
                )
                await self.suspend(waiting, f"{self.run.id}:retry:{full}:{record.attempts}")
                return "wait", None
            await asyncio.sleep(pause)

    def configure(
        self, kind: NodeType, node: c.Node, scope: dict[str, Any]
    ) -> tuple[dict[str, Any], NodeConfig]:
        """Resolve the config's expressions (but its raw fields) and validate the result."""
        resolved = {
            k: v if k in kind.raw_fields else resolve(v, scope, f"config.{k}")
            for k, v in node.config.items()
        }
        return resolved, kind.config.model_validate(resolved)

    def call(
        self,
        node: c.Node,
        full: str,
        item: str,
        scope: dict[str, Any],
        logs: list[dict[str, Any]],
    ) -> NodeCall:
        """Return the NodeCall of one try (for-each nodes get the runner of their items)."""
        each = self.each_runner(node, full, item, scope) if node.type == "for-each" else None
        return NodeCall(
            workspace_id=self.run.workspace_id,
            run_id=self.run.id,
            node_key=full,
            item=item or None,
            connection_id=self.run.connection_id,
            customer_id=self.run.customer_id,
            integration_key=self.run.integration_key,
            scope=scope,
            services=self.services,
            logs=logs,
            each=each,
        )

    async def attempt(
        self, kind: NodeType, config: NodeConfig, call: NodeCall, *, top: bool
    ) -> tuple[NodeResult | None, NodeError | None]:
        """Make one try within the run's remaining time; return its result or its error."""
        remaining = self.options.run_max_seconds - self.active_ms / 1000
        if remaining <= 0:
            raise RunLimit(
                "run_timeout",
                f"the run spent more than {self.options.run_max_seconds:g} s in its nodes",
                call.node_key,
            )
        began = time.monotonic()
        limit = asyncio.timeout(remaining)
        outcome = "interrupted"  # by a run limit, a stop or a shutdown, unless set below
        try:
            async with limit:
                result = await kind.run(config, call)
            outcome = "ok"
            return result, None
        except NodeError as exc:
            outcome = "error"
            return None, exc
        except TimeoutError as exc:
            if limit.expired():
                raise RunLimit(
                    "run_timeout",
                    f"the run spent more than {self.options.run_max_seconds:g} s in its nodes",
                    call.node_key,
                ) from exc
            outcome = "timeout"
            return None, NodeError("timeout", "the node timed out", transient=True)
        except (Stopped, RunLimit):
            raise
        except Exception:
            outcome = "crashed"
            log.exception("node_crashed", run_id=str(self.run.id), node=call.node_key)
            return None, NodeError("internal", "the node failed unexpectedly")
        finally:
            seconds = time.monotonic() - began
            if top:  # items run inside their for-each, whose time already counts
                self.active_ms += seconds * 1000
            if self.metrics is not None:
                self.metrics.node_tried(kind.name, outcome, seconds)

    async def settle_success(
        self,
        node: c.Node,
        key: str,
        prefix: str,
        record: NodeRecord,
        result: NodeResult,
        scope: dict[str, Any],
        kind: NodeType,
    ) -> tuple[Verdict, c.RunError | None]:
        """Record a successful try (or fail it when its output is too large); go on or wait."""
        size = len(json.dumps(result.output, separators=(",", ":")).encode())
        if size > self.options.node_output_limit:
            error = c.RunError(
                code="output_too_large",
                message=f"the output has {size} bytes; the limit is "
                f"{self.options.node_output_limit}",
                node=record.node_key,
                data={"size": size, "limit": self.options.node_output_limit},
            )
            record = record.model_copy(update={"output_size": size, "output_dropped": True})
            return await self.settle_failure(node, key, record, error, scope, pure=kind.pure)
        logs = list(record.logs)
        if result.stop_branch:
            logs.append({"message": "branch_ended", BRANCH_ENDED: True})
        done = record.model_copy(
            update={"output": result.output, "output_size": size, "logs": logs}
        )
        wait = result.wait_until
        if wait is not None and wait > datetime.now(UTC):
            if not prefix:
                waiting = done.model_copy(update={"state": "waiting", "wait_until": wait})
                await self.suspend(waiting, f"{self.run.id}:resume:{record.node_key}")
                return "wait", None
            # Inside a for-each item the wait is short-lived and in memory (see runner.py).
            await asyncio.sleep((wait - datetime.now(UTC)).total_seconds())
        done = done.model_copy(update={"state": "completed", "ended_at": _now()})
        if kind.pure:
            self.remember(done, buffer=True)
        else:
            await self.write([done], check_stop=False)
        scope["nodes"][key] = result.output
        return ("block" if result.stop_branch else "pass"), None

    async def settle_failure(
        self,
        node: c.Node,
        key: str,
        record: NodeRecord,
        error: c.RunError,
        scope: dict[str, Any],
        *,
        pure: bool,
    ) -> tuple[Verdict, c.RunError | None]:
        """Record a failed execution, then apply ``onError``."""
        failed = record.model_copy(
            update={"state": "failed", "error": error, "output": None, "ended_at": _now()}
        )
        if failed.started_at is None:
            failed = failed.model_copy(update={"started_at": failed.ended_at})
        if pure:
            self.remember(failed, buffer=True)
        else:
            await self.write([failed], check_stop=False)
        return self.failed(node, key, failed, scope)

    # --- for-each -----------------------------------------------------------------------

    def each_runner(
        self, node: c.Node, full: str, item: str, scope: dict[str, Any]
    ) -> EachRunner | None:
        """Return the runner of a for-each node's items: its inner graph once per item."""
        inner = inner_graph(node.config)
        if inner is None:
            return None

        async def each(items: list[Any], parallelism: int) -> list[Any]:
            gate = asyncio.Semaphore(max(1, parallelism))

            async def one(index: int, value: Any) -> tuple[Outcome, dict[str, Any]]:
                async with gate:
                    sub = {**scope, "nodes": dict(scope["nodes"]), "item": value, "index": index}
                    position = f"{item}.{index}" if item else str(index)
                    outcome = await self.walk(inner, f"{full}.", position, sub)
                    return outcome, {k: sub["nodes"][k] for k in inner if k in sub["nodes"]}

            results = await asyncio.gather(
                *(one(i, v) for i, v in enumerate(items)), return_exceptions=True
            )
            for r in results:  # a stop or a limit outranks an item's failure
                if isinstance(r, Stopped | RunLimit):
                    raise r
            outputs: list[Any] = []
            for index, r in enumerate(results):
                if isinstance(r, BaseException):
                    raise r
                outcome, produced = r
                if outcome.state != "completed":
                    assert outcome.error is not None
                    raise NodeError(
                        "item_failed",
                        f"item {index} failed at {outcome.error.node}: {outcome.error.message}",
                        data={"index": index, "error": outcome.error.model_dump(mode="json")},
                    )
                outputs.append(produced)
            return outputs

        return each

    # --- writing ------------------------------------------------------------------------

    def remember(self, record: NodeRecord, *, buffer: bool) -> None:
        """Keep ``record`` as the node's latest (and, when ``buffer``, for the next write)."""
        self.rows[(record.node_key, record.item)] = record
        if buffer:
            self.pending.append(record)

    async def write(self, records: list[NodeRecord], *, check_stop: bool) -> None:
        """Write pending pure records, ``records`` and the counters in one transaction.

        With ``check_stop`` (before a node is called) a requested stop raises Stopped
        instead, and ``records`` are not written (the node does not run).
        """
        batch, self.pending = self.pending, []
        for record in records:
            self.remember(record, buffer=False)
        stop = False
        async with self.pool.acquire() as conn, conn.transaction():
            stop, state = await store.progress(
                conn,
                self.run.workspace_id,
                self.run.id,
                nodes_executed=self.nodes_executed,
                active_ms=self.active_ms,
                customer=self.customer,
            )
            stop = stop or state in store.ENDED
            if not (check_stop and stop):
                batch += records
            await store.save_nodes(conn, self.run.workspace_id, self.run.id, batch)
        if check_stop and stop:
            raise Stopped

    async def flush(self, conn: Any) -> None:
        """Write the pending pure records in the caller's transaction."""
        batch, self.pending = self.pending, []
        await store.save_nodes(conn, self.run.workspace_id, self.run.id, batch)

    async def suspend(self, waiting: NodeRecord, dedupe_key: str) -> None:
        """Record a wait and the job that resumes the run then, together; free the worker."""
        self.remember(waiting, buffer=True)
        async with self.pool.acquire() as conn, conn.transaction():
            await self.flush(conn)
            job = await jobs.enqueue(
                conn,
                run_job(
                    self.run, self.options, not_before=waiting.wait_until, dedupe_key=dedupe_key
                ),
            )
            await store.set_job(conn, self.run.workspace_id, self.run.id, job.id)
            await store.progress(
                conn,
                self.run.workspace_id,
                self.run.id,
                nodes_executed=self.nodes_executed,
                active_ms=self.active_ms,
                customer=self.customer,
            )


def _now() -> datetime:
    return datetime.now(UTC)
