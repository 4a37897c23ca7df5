"""A deployment's life, in the order it is lived.

1. **Plan** (:func:`plan`): the steps that bring one connection in line with the
   definitions — subscribe to every app-event type, unsubscribe from what is no longer
   defined, fetch every data source, create the instances of the autoDeploy actions and
   field mappings whose level fits the connection (one step each), ensure the flow instances (or, tearing
   down, unsubscribe from everything and archive the flow instances; data-source, action
   and field-mapping instances are archived when the teardown starts).
2. **Start** (:func:`start`), in the caller's transaction: cancel the connection's
   unfinished deployments (superseded by the new one) and their steps' pending jobs,
   insert the deployment and its steps, and enqueue one job per step. An empty plan is
   finished at once.
3. **Run**: each step is a job of queue ``deployments`` (``libs/common/jobs.py``; the
   job's id is the step's), so it gets that engine's guarantees: leased by workers in
   every replica, taken again when its worker died, retried with backoff and jitter up to
   ``step_max_attempts`` (crashes and leases that ran out count too). Its partition is
   ``<connection id>:<element key>``: steps of one element on one connection never run
   at once, and start in the order they were enqueued. :func:`on_start` marks the step and
   its deployment running; the handler (``steps.StepRunner.handle``) runs the step and
   raises :class:`StepFailure` (a ``JobFailure``) when it cannot succeed, saying whether
   trying again may help.
4. **Record** (:func:`record`, the job's ``on_finish``, in the transaction that records
   the job's outcome): the step's status, attempts and error, then its deployment's
   progress. A superseded deployment's steps never run again: a step that has not
   succeeded is cancelled, and so is its job if it was to be retried.
5. **Roll-up** (:func:`roll_up`): when every step is done the deployment is
   ``succeeded`` (no step failed), ``failed`` (every step failed) or ``partial``;
   on finishing, :func:`announce` emits ``deployment.completed`` or ``deployment.failed``
   through the outbox.
"""

from __future__ import annotations

from uuid import uuid4

from libs.common import jobs
from libs.common.contracts import instances as c
from libs.common.db import Conn
from libs.common.jobs import Job, JobFailure, JobSpec, QueueOptions
from libs.common.outbox import emit
from services.instances.settings import InstancesOptions
from services.instances.store import (
    actions,
    data_source_instances,
    definitions,
    deployments,
    field_mappings,
    subscriptions,
)
from services.instances.store.connections import KnownConnection
from services.instances.store.deployments import (
    DeploymentRecord,
    PlannedStep,
    StepCounts,
)

QUEUE = "deployments"
STEP_JOB = "step"
ACTIVE: frozenset[c.DeploymentStatus] = frozenset({"pending", "running"})
STEP_GAVE_UP = "gave up: the step never finished"
NO_LONGER_ACTIVE = "the deployment is no longer active"


class StepFailure(JobFailure):
    """A step did not succeed; ``transient`` says whether trying again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message[:300], transient=transient)


def queue_options(options: InstancesOptions) -> QueueOptions:
    """Return how the ``deployments`` queue's workers lease and back off."""
    return QueueOptions(
        lease=options.step_lease,
        backoff_base=options.step_backoff_base,
        backoff_cap=options.step_backoff_cap,
        poll_interval=options.deploy_poll_interval,
    )


# --- 1, 2: plan and start ---------------------------------------------------------------


async def plan(conn: Conn, known: KnownConnection, *, teardown: bool = False) -> list[PlannedStep]:
    """Return the steps: subscribe / unsubscribe / data_source / action, then flows."""
    live = await subscriptions.live_subscription_keys(conn, known.workspace_id, known.id)
    if teardown:
        return [PlannedStep("unsubscribe", key) for key in sorted(live)] + [
            PlannedStep("flows", "archive")
        ]
    types = [
        t.key
        for t in await definitions.list_app_event_types(
            conn, known.workspace_id, known.integration_key
        )
    ]
    sources = [
        d.key
        for d in await definitions.list_data_sources(
            conn, known.workspace_id, known.integration_key
        )
    ]
    return (
        [PlannedStep("subscribe", key) for key in types]
        + [PlannedStep("unsubscribe", key) for key in sorted(live - set(types))]
        + [PlannedStep("data_source", key) for key in sources]
        + [
            PlannedStep("action", key)
            for key in await actions.auto_deploy_keys(
                conn, known.workspace_id, known.integration_key, known.customer_id
            )
        ]
        + [
            PlannedStep("field_mapping", key)
            for key in await field_mappings.auto_deploy_keys(
                conn, known.workspace_id, known.integration_key, known.customer_id
            )
        ]
        + [PlannedStep("flows", "ensure")]
    )


async def start(
    conn: Conn,
    known: KnownConnection,
    reason: str,
    *,
    options: InstancesOptions,
    teardown: bool = False,
) -> DeploymentRecord:
    """Start a deployment in the caller's transaction, cancelling older unfinished ones.

    Locks follow the workers' order (a step's job, the step, its deployment): the
    superseded steps' jobs are cancelled before ``deployments.supersede`` locks the steps.
    """
    deployment_id = uuid4()
    unfinished = await deployments.unfinished_steps(conn, known.workspace_id, known.id)
    if unfinished:
        await jobs.cancel(conn, known.workspace_id, unfinished)  # running ones: see record()
    await deployments.supersede(conn, known.workspace_id, known.id, deployment_id)
    steps = await plan(conn, known, teardown=teardown)
    if teardown:
        await data_source_instances.archive_data_source_instances(
            conn, known.workspace_id, known.id
        )
        await actions.archive_instances(conn, known.workspace_id, known.id)
        await field_mappings.archive_instances(conn, known.workspace_id, known.id)
    step_ids = [uuid4() for _ in steps]
    record = await deployments.insert_deployment(
        conn,
        deployment_id,
        known,
        reason=reason,
        status="pending" if steps else "succeeded",
        steps=steps,
        step_ids=step_ids,
    )
    for step_id, step in zip(step_ids, steps, strict=True):
        await jobs.enqueue(
            conn,
            JobSpec(
                id=step_id,
                queue=QUEUE,
                kind=STEP_JOB,
                workspace_id=known.workspace_id,
                partition_key=f"{known.id}:{step.element_key}",
                max_attempts=options.step_max_attempts,
                dedupe_key=f"step:{step_id}",
            ),
        )
    if not steps:
        await announce(conn, record)
    return record


# --- 3, 4: run and record ----------------------------------------------------------------


async def on_start(conn: Conn, job: Job) -> None:
    """Mark a step, and its deployment, running (in the job's claim transaction)."""
    step = await deployments.lock_step(conn, job.id)
    current = await deployments.lock_deployment(conn, step.deployment_id)
    if current.status not in ACTIVE:
        return  # superseded: the handler refuses it, record() cancels it
    await deployments.set_step(
        conn, step.id, status="running", attempts=job.attempts, error=step.error
    )
    await deployments.mark_running(conn, step.deployment_id)


async def record(conn: Conn, job: Job, result: jobs.Outcome) -> None:
    """Write a step's outcome and its deployment's progress (the job's ``on_finish``).

    Runs in the transaction that records the job's outcome: the job's row, then the
    step's, then its deployment's are locked (the order ``start`` follows too).
    """
    step = await deployments.lock_step(conn, job.id)
    current = await deployments.lock_deployment(conn, step.deployment_id)
    status: c.StepStatus = result.status
    error = STEP_GAVE_UP if result.error == jobs.GAVE_UP else result.error
    if current.status not in ACTIVE and status != "succeeded":
        # Superseded or cancelled: what has not succeeded is never run again.
        status = "cancelled"
        if job.status == "pending":
            await jobs.cancel(conn, job.workspace_id, [job.id])
    await deployments.set_step(conn, step.id, status=status, attempts=job.attempts, error=error)
    counts = await deployments.count_steps(conn, step.deployment_id)
    rolled = roll_up(current.status, counts)
    updated = await deployments.set_progress(
        conn, step.deployment_id, steps_done=counts.done, status=rolled
    )
    if rolled != current.status and rolled in ("succeeded", "failed", "partial"):
        await announce(conn, updated)


# --- 5: progress roll-up ----------------------------------------------------------------


def roll_up(status: c.DeploymentStatus, counts: StepCounts) -> c.DeploymentStatus:
    """Return a deployment's status given its step counts (a finished one keeps its own)."""
    if status not in ("pending", "running") or counts.done != counts.total:
        return status
    if counts.failed == 0:
        return "succeeded"
    return "failed" if counts.failed == counts.total else "partial"


async def announce(conn: Conn, deployment: DeploymentRecord) -> None:
    """Emit deployment.completed (succeeded, partial) or deployment.failed."""
    kind = c.DEPLOYMENT_FAILED if deployment.status == "failed" else c.DEPLOYMENT_COMPLETED
    await emit(
        conn,
        kind,
        c.DeploymentEvent(
            workspace_id=deployment.workspace_id,
            deployment_id=deployment.id,
            connection_id=deployment.connection_id,
            status=deployment.status,
        ),
    )
