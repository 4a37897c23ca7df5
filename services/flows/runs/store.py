"""Runs' SQL: ``flow_runs`` (one row per run) and ``flow_run_nodes`` (one per node execution).

Every query is filtered by ``workspace_id`` except the retention sweep, which is system
work across workspaces. Transactions are the callers'.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from libs.common.contracts import flows as c
from libs.common.db import Conn
from libs.common.rows import many, maybe

ENDED: tuple[c.RunState, ...] = ("completed", "failed", "stopped")


class RunRow(BaseModel):
    """What a run's reply and its events need of its row."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    workspace_id: UUID
    flow_instance_id: UUID
    flow_id: UUID
    revision: int
    connection_id: UUID
    customer_id: str
    integration_key: str
    state: c.RunState
    trigger: c.RunTrigger
    input: Any = None
    stop_requested: bool
    errors: list[c.RunError]
    job_id: UUID | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None

    @property
    def ended(self) -> bool:
        """Tell whether the run has come to its end (completed, failed or stopped)."""
        return self.state in ENDED


class RunRecord(RunRow):
    """A whole run row: what the runner executes (the definition and values it snapshots)."""

    definition: c.FlowDefinition
    parameters: dict[str, Any]
    customer: dict[str, Any] | None
    dedupe_key: str | None
    rerun_of: UUID | None
    from_node: str | None
    nodes_executed: int
    active_ms: float


class NodeRecord(BaseModel):
    """One execution of one node (``item`` is '' outside a for-each)."""

    model_config = ConfigDict(frozen=True)

    node_key: str
    item: str = ""
    seq: int
    type: str
    state: c.NodeState
    attempts: int = 0
    input: Any = None
    output: Any = None
    output_size: int | None = None
    output_dropped: bool = False
    reused: bool = False
    logs: list[dict[str, Any]] = Field(default_factory=list)
    error: c.RunError | None = None
    wait_until: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


_ROW_COLUMNS = """
id, workspace_id, flow_instance_id, flow_id, revision, connection_id, customer_id,
integration_key, state, trigger, input, stop_requested, errors, job_id, created_at,
started_at, ended_at
"""
_RECORD_COLUMNS = (
    _ROW_COLUMNS
    + ", definition, parameters, customer, dedupe_key, rerun_of, from_node, nodes_executed,"
    " active_ms"
)
_NODE_COLUMNS = """
node_key, item, seq, type, state, attempts, input, output, output_size, output_dropped, reused,
logs, error, wait_until, started_at, ended_at
"""

INSERT_RUN_SQL = f"""
INSERT INTO flow_runs (id, workspace_id, flow_instance_id, flow_id, revision, connection_id,
    customer_id, integration_key, trigger, input, definition, parameters, dedupe_key, rerun_of,
    from_node, job_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (workspace_id, flow_instance_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
RETURNING {_RECORD_COLUMNS}
"""
SELECT_RUN_SQL = f"SELECT {_RECORD_COLUMNS} FROM flow_runs WHERE workspace_id = $1 AND id = $2"
SELECT_DEDUPED_SQL = f"""
SELECT {_RECORD_COLUMNS} FROM flow_runs
WHERE workspace_id = $1 AND flow_instance_id = $2 AND dedupe_key = $3
"""
# An API Idempotency-Key holds for 24 hours; then the old run lets go of it.
RELEASE_DEDUPE_SQL = """
UPDATE flow_runs SET dedupe_key = NULL, updated_at = now()
WHERE workspace_id = $1 AND flow_instance_id = $2 AND dedupe_key = $3
  AND created_at < now() - make_interval(secs => $4)
"""
COUNT_QUEUED_SQL = """
SELECT count(*) FROM flow_runs WHERE workspace_id = $1 AND connection_id = $2 AND state = 'queued'
"""
SET_JOB_SQL = "UPDATE flow_runs SET job_id = $3 WHERE workspace_id = $1 AND id = $2"
MARK_STARTED_SQL = f"""
UPDATE flow_runs SET state = 'running', started_at = now(), updated_at = now()
WHERE workspace_id = $1 AND id = $2 AND state = 'queued'
RETURNING {_ROW_COLUMNS}
"""
# The runner's progress write; it locks the row, so a stop requested meanwhile is seen.
PROGRESS_SQL = """
UPDATE flow_runs SET nodes_executed = $3, active_ms = $4,
    customer = coalesce(customer, $5::jsonb), updated_at = now()
WHERE workspace_id = $1 AND id = $2
RETURNING stop_requested, state
"""
END_RUN_SQL = f"""
UPDATE flow_runs SET state = $3, errors = $4, nodes_executed = coalesce($5, nodes_executed),
    active_ms = coalesce($6, active_ms), ended_at = now(), updated_at = now(),
    started_at = coalesce(started_at, now()), customer = coalesce(customer, $7::jsonb)
WHERE workspace_id = $1 AND id = $2 AND state IN ('queued', 'running')
RETURNING {_ROW_COLUMNS}
"""
LOCK_RUN_SQL = f"""
SELECT {_RECORD_COLUMNS} FROM flow_runs WHERE workspace_id = $1 AND id = $2 FOR UPDATE
"""
REQUEST_STOP_SQL = """
UPDATE flow_runs SET stop_requested = true, updated_at = now() WHERE workspace_id = $1 AND id = $2
"""
LIST_RUNS_SQL = f"""
SELECT {_ROW_COLUMNS} FROM flow_runs
WHERE workspace_id = $1
  AND ($2::uuid IS NULL OR flow_instance_id = $2)
  AND ($3::uuid IS NULL OR flow_id = $3)
  AND ($4::uuid IS NULL OR connection_id = $4)
  AND ($5::text IS NULL OR customer_id = $5)
  AND ($6::text IS NULL OR state = $6)
  AND ($7::timestamptz IS NULL OR created_at >= $7)
  AND ($8::timestamptz IS NULL OR created_at < $8)
  AND ($9::timestamptz IS NULL OR (created_at, id) < ($9, $10::uuid))
ORDER BY created_at DESC, id DESC LIMIT $11
"""
# A node at a glance, for a page of runs at once: its worst state, its executions, errors.
SUMMARIES_SQL = """
SELECT run_id, node_key,
    CASE WHEN bool_or(state = 'running') THEN 'running'
         WHEN bool_or(state = 'waiting') THEN 'waiting'
         WHEN bool_or(state = 'failed') THEN 'failed'
         WHEN bool_or(state = 'completed') THEN 'completed'
         ELSE 'skipped' END AS state,
    count(*) AS runs,
    coalesce(jsonb_agg(error ORDER BY seq, item) FILTER (WHERE error IS NOT NULL), '[]') AS errors
FROM flow_run_nodes WHERE workspace_id = $1 AND run_id = ANY($2::uuid[])
GROUP BY run_id, node_key
"""
SELECT_NODES_SQL = f"""
SELECT {_NODE_COLUMNS} FROM flow_run_nodes WHERE workspace_id = $1 AND run_id = $2 ORDER BY seq
"""
SELECT_NODE_SQL = f"""
SELECT {_NODE_COLUMNS} FROM flow_run_nodes WHERE workspace_id = $1 AND run_id = $2 AND node_key = $3
ORDER BY length(item), item
"""
UPSERT_NODE_SQL = """
INSERT INTO flow_run_nodes (workspace_id, run_id, node_key, item, seq, type, state, attempts,
    input, output, output_size, output_dropped, reused, logs, error, wait_until, started_at,
    ended_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (run_id, node_key, item) DO UPDATE SET
    state = excluded.state, attempts = excluded.attempts, input = excluded.input,
    output = excluded.output, output_size = excluded.output_size,
    output_dropped = excluded.output_dropped, logs = excluded.logs, error = excluded.error,
    wait_until = excluded.wait_until, started_at = excluded.started_at,
    ended_at = excluded.ended_at
WHERE flow_run_nodes.workspace_id = excluded.workspace_id
"""
# A rerun from a node: the original's completed executions of the nodes before it (and of
# their for-each items) are copied, marked reused, instead of running again.
COPY_REUSED_SQL = """
INSERT INTO flow_run_nodes (workspace_id, run_id, node_key, item, seq, type, state, attempts,
    input, output, output_size, output_dropped, reused, logs, error, wait_until, started_at,
    ended_at)
SELECT workspace_id, $3, node_key, item, seq, type, state, attempts, input, output, output_size,
    output_dropped, true, logs, error, NULL, started_at, ended_at
FROM flow_run_nodes
WHERE workspace_id = $1 AND run_id = $2 AND state = 'completed'
  AND (node_key = ANY($4::text[]) OR split_part(node_key, '.', 1) = ANY($4::text[]))
"""
# Retention (system, across workspaces): a batch of node executions of runs that ended
# before the cutoff lose their input and output; rows another replica holds are skipped.
DROP_OLD_SQL = """
WITH batch AS (
    SELECT n.run_id, n.node_key, n.item FROM flow_run_nodes n
    JOIN flow_runs r ON r.id = n.run_id
    WHERE r.ended_at < now() - make_interval(secs => $1)
      AND (n.input IS NOT NULL OR n.output IS NOT NULL)
    LIMIT $2
    FOR UPDATE OF n SKIP LOCKED)
UPDATE flow_run_nodes n SET input = NULL, output = NULL, output_dropped = true
FROM batch WHERE n.run_id = batch.run_id AND n.node_key = batch.node_key AND n.item = batch.item
"""


def _json(model: BaseModel | None) -> Any:
    return None if model is None else model.model_dump(mode="json")


async def insert_run(
    conn: Conn,
    *,
    id: UUID,
    workspace_id: UUID,
    instance_id: UUID,
    flow_id: UUID,
    revision: int,
    connection_id: UUID,
    customer_id: str,
    integration_key: str,
    trigger: c.RunTrigger,
    input: Any,
    definition: c.FlowDefinition,
    parameters: dict[str, Any],
    dedupe_key: str | None,
    rerun_of: UUID | None,
    from_node: str | None,
    job_id: UUID,
) -> RunRecord | None:
    """Insert a queued run; None when its dedupe key is taken for this instance."""
    row = await conn.fetchrow(
        INSERT_RUN_SQL,
        id,
        workspace_id,
        instance_id,
        flow_id,
        revision,
        connection_id,
        customer_id,
        integration_key,
        _json(trigger),
        input,
        _json(definition),
        parameters,
        dedupe_key,
        rerun_of,
        from_node,
        job_id,
    )
    return maybe(RunRecord, row)


async def select_run(conn: Conn, workspace_id: UUID, run_id: UUID) -> RunRecord | None:
    """Return one run of the workspace."""
    return maybe(RunRecord, await conn.fetchrow(SELECT_RUN_SQL, workspace_id, run_id))


async def lock_run(conn: Conn, workspace_id: UUID, run_id: UUID) -> RunRecord | None:
    """Return one run, its row locked until the caller's transaction ends."""
    return maybe(RunRecord, await conn.fetchrow(LOCK_RUN_SQL, workspace_id, run_id))


async def select_deduped(
    conn: Conn, workspace_id: UUID, instance_id: UUID, dedupe_key: str
) -> RunRecord | None:
    """Return the instance's run that holds ``dedupe_key``."""
    row = await conn.fetchrow(SELECT_DEDUPED_SQL, workspace_id, instance_id, dedupe_key)
    return maybe(RunRecord, row)


async def release_dedupe(
    conn: Conn, workspace_id: UUID, instance_id: UUID, dedupe_key: str, older_than: float
) -> None:
    """Free ``dedupe_key`` if the run holding it was created over ``older_than`` seconds ago."""
    await conn.execute(RELEASE_DEDUPE_SQL, workspace_id, instance_id, dedupe_key, older_than)


async def count_queued(conn: Conn, workspace_id: UUID, connection_id: UUID) -> int:
    """Count a connection's queued runs."""
    return int(await conn.fetchval(COUNT_QUEUED_SQL, workspace_id, connection_id))


async def set_job(conn: Conn, workspace_id: UUID, run_id: UUID, job_id: UUID) -> None:
    """Remember the job that runs (or resumes) the run now."""
    await conn.execute(SET_JOB_SQL, workspace_id, run_id, job_id)


async def mark_started(conn: Conn, workspace_id: UUID, run_id: UUID) -> RunRow | None:
    """Move a queued run to running; None when it was not queued (already started or ended)."""
    return maybe(RunRow, await conn.fetchrow(MARK_STARTED_SQL, workspace_id, run_id))


async def progress(
    conn: Conn,
    workspace_id: UUID,
    run_id: UUID,
    *,
    nodes_executed: int,
    active_ms: float,
    customer: dict[str, Any] | None,
) -> tuple[bool, c.RunState]:
    """Write the run's counters (and its customer once); return (stop requested, state)."""
    row = await conn.fetchrow(
        PROGRESS_SQL, workspace_id, run_id, nodes_executed, active_ms, customer
    )
    if row is None:
        return True, "stopped"
    return bool(row["stop_requested"]), row["state"]


async def end_run(
    conn: Conn,
    workspace_id: UUID,
    run_id: UUID,
    state: c.RunState,
    errors: list[c.RunError],
    *,
    nodes_executed: int | None = None,
    active_ms: float | None = None,
    customer: dict[str, Any] | None = None,
) -> RunRow | None:
    """End a queued or running run in ``state``; None when it had ended already."""
    row = await conn.fetchrow(
        END_RUN_SQL,
        workspace_id,
        run_id,
        state,
        [e.model_dump(mode="json") for e in errors],
        nodes_executed,
        active_ms,
        customer,
    )
    return maybe(RunRow, row)


async def request_stop(conn: Conn, workspace_id: UUID, run_id: UUID) -> None:
    """Set the run's stop flag (the runner stops before its next node)."""
    await conn.execute(REQUEST_STOP_SQL, workspace_id, run_id)


async def list_runs(
    conn: Conn,
    workspace_id: UUID,
    *,
    instance_id: UUID | None,
    flow_id: UUID | None,
    connection_id: UUID | None,
    customer_id: str | None,
    state: c.RunState | None,
    created_from: datetime | None,
    created_to: datetime | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[RunRow]:
    """Return a page of runs, newest first, starting after ``before`` (created_at, id)."""
    rows = await conn.fetch(
        LIST_RUNS_SQL,
        workspace_id,
        instance_id,
        flow_id,
        connection_id,
        customer_id,
        state,
        created_from,
        created_to,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    return many(RunRow, rows)


async def summaries(
    conn: Conn, workspace_id: UUID, run_ids: list[UUID]
) -> dict[UUID, dict[str, c.NodeSummary]]:
    """Return each run's nodes at a glance, by run id then node key."""
    found: dict[UUID, dict[str, c.NodeSummary]] = {run_id: {} for run_id in run_ids}
    for row in await conn.fetch(SUMMARIES_SQL, workspace_id, run_ids):
        found[row["run_id"]][row["node_key"]] = c.NodeSummary(
            state=row["state"], runs=row["runs"], errors=row["errors"]
        )
    return found


async def select_nodes(conn: Conn, workspace_id: UUID, run_id: UUID) -> list[NodeRecord]:
    """Return every node execution of a run, in the order they first ran."""
    return many(NodeRecord, await conn.fetch(SELECT_NODES_SQL, workspace_id, run_id))


async def select_node(
    conn: Conn, workspace_id: UUID, run_id: UUID, node_key: str
) -> list[NodeRecord]:
    """Return the executions of one node of a run (for-each items in item order)."""
    return many(NodeRecord, await conn.fetch(SELECT_NODE_SQL, workspace_id, run_id, node_key))


async def save_nodes(
    conn: Conn, workspace_id: UUID, run_id: UUID, records: list[NodeRecord]
) -> None:
    """Insert or overwrite node executions (one round trip for the batch)."""
    if not records:
        return
    await conn.executemany(
        UPSERT_NODE_SQL,
        [
            (
                workspace_id,
                run_id,
                r.node_key,
                r.item,
                r.seq,
                r.type,
                r.state,
                r.attempts,
                r.input,
                r.output,
                r.output_size,
                r.output_dropped,
                r.reused,
                r.logs,
                _json(r.error),
                r.wait_until,
                r.started_at,
                r.ended_at,
            )
            for r in records
        ],
    )


async def copy_reused(
    conn: Conn, workspace_id: UUID, original: UUID, run_id: UUID, keys: list[str]
) -> int:
    """Copy the original run's completed executions of ``keys`` (and their items) as reused."""
    status = await conn.execute(COPY_REUSED_SQL, workspace_id, original, run_id, keys)
    return int(status.split()[-1])


async def drop_old_outputs(conn: Conn, older_than: float, limit: int) -> int:
    """Null up to ``limit`` node inputs/outputs of runs ended over ``older_than`` s ago."""
    status = await conn.execute(DROP_OLD_SQL, older_than, limit)
    return int(status.split()[-1])


# What a run's reply holds that its row does not: the node summaries, the definition.
_NOT_IN_ROW = frozenset({"nodes", "definition"})


def reply(row: RunRow, nodes: dict[str, c.NodeSummary]) -> c.FlowRun:
    """Return a run as its reply with its nodes at a glance (`FlowRuns.get` adds the definition)."""
    own = {n: getattr(row, n) for n in c.FlowRun.model_fields if n not in _NOT_IN_ROW}
    return c.FlowRun.model_validate(own | {"nodes": nodes})


async def view(conn: Conn, row: RunRow) -> c.FlowRun:
    """Return a run as its reply, reading its node summaries."""
    found = await summaries(conn, row.workspace_id, [row.id])
    return reply(row, found[row.id])


# Waits end when the run stops: a delay is over at once, a retry's wait fails its node.
END_WAITS_SQL = """
UPDATE flow_run_nodes SET state = CASE WHEN error IS NULL THEN 'completed' ELSE 'failed' END,
    ended_at = now()
WHERE workspace_id = $1 AND run_id = $2 AND state = 'waiting'
"""


async def end_waits(conn: Conn, workspace_id: UUID, run_id: UUID) -> None:
    """End the run's waiting executions (the run is stopping)."""
    await conn.execute(END_WAITS_SQL, workspace_id, run_id)
