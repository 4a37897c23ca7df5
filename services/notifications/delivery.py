"""A delivery's life on the job engine, in the order it is lived.

1. **Recorded** (:func:`record_delivery`), in the transaction of whoever creates it (the
   event consumer, a test send): the ``deliveries`` row and, for a queued one, its job of
   queue ``deliveries`` commit together. A delivery exists before anyone attempts it.
2. **Attempted** (:meth:`Deliverer.handle`, the job's handler): read the delivery and its
   endpoint, sign with every live secret, post once (:mod:`sender`), then record the
   attempt and the endpoint's health in one transaction. A replica killed in between
   loses the attempt's record, never the delivery: the job's lease runs out and another
   replica attempts it again (at least once; receivers dedupe on ``webhook-id``).
3. **Retried** on the schedule (``TETHER_DELIVERY_SCHEDULE``: the delay before each
   attempt, the first included); a 429's ``Retry-After`` stretches one delay. A job has
   as many attempts as the schedule has entries; a crash or a lost lease counts as one.
4. **Finished** (:func:`on_finish`, in the transaction that records the job's outcome):
   the delivery becomes ``succeeded``, ``failed`` or stays ``pending`` until its next
   attempt. Redelivery moves a delivery onto a fresh job; only that job's outcome counts.

Endpoints are partitions: a job's ``partition_key`` is its endpoint's id, and the queue's
partition limit is ``TETHER_ENDPOINT_CONCURRENCY``. So one endpoint never has more than
that many attempts in flight, and the engine's partition fairness serves every other
endpoint's head before a deep (dead) endpoint's next job.

Disabling: a 410 disables the endpoint at once; so does an attempt that fails when the
endpoint has failed every attempt for ``TETHER_ENDPOINT_DISABLE_AFTER`` seconds. Either
way ``endpoint.disabled`` goes out through the outbox (and so, through the consumer, to
the workspace's other endpoints). A disabled or deleted endpoint's remaining jobs fail
without a request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

import asyncpg
import structlog

from libs.common import jobs
from libs.common.contracts import notifications as c
from libs.common.crypto import Keyring
from libs.common.db import Conn
from libs.common.jobs import Job, JobFailure, JobSpec, Outcome, QueueOptions
from libs.common.outbox import emit
from services.notifications import signing
from services.notifications.metrics import NotificationsMetrics
from services.notifications.sender import Sender, Sent
from services.notifications.settings import NotificationsOptions
from services.notifications.store import deliveries, endpoints
from services.notifications.store.deliveries import DeliveryRecord
from services.notifications.store.endpoints import EndpointRecord

log = structlog.get_logger(__name__)

QUEUE = "deliveries"
DELIVER_JOB = "deliver"
GONE_REASON = "the endpoint answered 410 Gone"


def queue_options(options: NotificationsOptions) -> QueueOptions:
    """Return how the ``deliveries`` queue's workers lease and poll."""
    return QueueOptions(
        lease=options.delivery_lease,
        partition_limit=options.endpoint_concurrency,
        poll_interval=options.delivery_poll_interval,
    )


def delivery_id(event_id: UUID, endpoint_id: UUID) -> str:
    """Return the webhook-id of an event's delivery to an endpoint (the same every time)."""
    return "msg_" + uuid5(event_id, str(endpoint_id)).hex


def new_delivery_id() -> str:
    """Return a webhook-id for a delivery of no event (a test send)."""
    return "msg_" + uuid4().hex


def body(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    """Return the Standard Webhooks body ``{type, timestamp, data}`` as sent."""
    return json.dumps(
        {"type": event_type, "timestamp": occurred_at.isoformat(), "data": data},
        separators=(",", ":"),
    )


def delay_after(schedule: tuple[float, ...], attempt: int, retry_after: float | None) -> float:
    """Return the seconds between ``attempt`` (1-based) and the next one.

    The schedule lists the delay before each attempt; a 429's ``Retry-After`` is honoured
    when it asks for longer (never beyond the schedule's longest delay).
    """
    scheduled = schedule[min(attempt, len(schedule) - 1)]
    if retry_after is not None:
        return max(scheduled, min(retry_after, max(schedule)))
    return scheduled


def job_spec(
    workspace_id: UUID,
    endpoint_id: UUID,
    delivery: str,
    job_id: UUID,
    options: NotificationsOptions,
) -> JobSpec:
    """Return the job that attempts ``delivery`` (first attempt now, partitioned by endpoint)."""
    return JobSpec(
        id=job_id,
        queue=QUEUE,
        kind=DELIVER_JOB,
        payload={"delivery_id": delivery},
        workspace_id=workspace_id,
        partition_key=str(endpoint_id),
        max_attempts=len(options.delivery_schedule),
    )


async def record_delivery(
    conn: Conn,
    workspace_id: UUID,
    endpoint_id: UUID,
    *,
    delivery: str,
    event_id: UUID | None,
    event_type: str,
    payload: str,
    options: NotificationsOptions | None,
) -> DeliveryRecord | None:
    """Record a pending delivery and (given ``options``) its job; None if it existed."""
    job_id = uuid4() if options is not None else None
    record = await deliveries.insert_delivery(
        conn,
        delivery,
        workspace_id,
        endpoint_id,
        event_id=event_id,
        event_type=event_type,
        body=payload,
        job_id=job_id,
    )
    if record is not None and options is not None:
        assert job_id is not None
        await jobs.enqueue(conn, job_spec(workspace_id, endpoint_id, delivery, job_id, options))
    return record


def live_secrets(keyring: Keyring, endpoint: EndpointRecord, now: datetime) -> list[str]:
    """Return the secrets that sign now: the current one, and the previous during the overlap."""
    found = [signing.unseal(keyring, endpoint.workspace_id, endpoint.id, endpoint.secret_sealed)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_sealed and expires is not None and expires > now:
        found.append(
            signing.unseal(
                keyring,
                endpoint.workspace_id,
                endpoint.id,
                endpoint.previous_secret_sealed,
                previous=True,
            )
        )
    return found


async def judge(
    conn: Conn,
    endpoint: EndpointRecord,
    delivery: DeliveryRecord,
    sent: Sent,
    options: NotificationsOptions,
) -> str | None:
    """Record an attempt and its verdict on the endpoint; return why it was disabled (or None)."""
    await deliveries.record_attempt(conn, delivery.workspace_id, delivery.id, sent.attempt)
    too_long = await endpoints.record_health(
        conn,
        endpoint.workspace_id,
        endpoint.id,
        ok=sent.ok,
        disable_after=options.endpoint_disable_after,
    )
    reason = None
    if sent.attempt.status_code == 410:
        reason = GONE_REASON
    elif too_long:
        reason = f"every attempt failed for {options.endpoint_disable_after:g} s"
    if reason is not None and await endpoints.disable(
        conn, endpoint.workspace_id, endpoint.id, reason
    ):
        log.warning("endpoint_disabled", endpoint_id=str(endpoint.id), reason=reason)
        await emit(
            conn,
            c.ENDPOINT_DISABLED,
            c.EndpointDisabledEvent(
                workspace_id=endpoint.workspace_id, endpoint_id=endpoint.id, reason=reason
            ),
        )
        return reason
    return None


class Deliverer:
    """The ``deliver`` job's handler: one attempt per call."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        keyring: Keyring,
        sender: Sender,
        options: NotificationsOptions,
        metrics: NotificationsMetrics | None = None,
    ) -> None:
        """Deliver through ``sender``; with ``metrics``, count and time every attempt."""
        self._pool = pool
        self._keyring = keyring
        self._sender = sender
        self._options = options
        self._metrics = metrics

    async def handle(self, job: Job) -> None:
        """Attempt the job's delivery; raise JobFailure unless the endpoint took it."""
        workspace_id = job.workspace_id
        delivery_ref = str(job.payload.get("delivery_id", ""))
        if workspace_id is None:
            raise JobFailure("a delivery job has a workspace")
        async with self._pool.acquire() as conn:
            delivery = await deliveries.get_delivery(conn, workspace_id, delivery_ref)
            endpoint = None
            if delivery is not None:
                endpoint = await endpoints.get_endpoint(conn, workspace_id, delivery.endpoint_id)
        if delivery is None:
            raise JobFailure("the delivery no longer exists")
        if endpoint is None:
            self._count("skipped")
            raise JobFailure("the endpoint was deleted")
        if not endpoint.enabled:
            self._count("skipped")
            raise JobFailure("the endpoint is disabled")
        sent = await self._sender.send(
            endpoint.url,
            delivery.id,
            delivery.body,
            live_secrets(self._keyring, endpoint, datetime.now(UTC)),
        )
        async with self._pool.acquire() as conn, conn.transaction():
            disabled = await judge(conn, endpoint, delivery, sent, self._options)
        log.info(
            "delivery_attempted",
            delivery_id=delivery.id,
            endpoint_id=str(endpoint.id),
            status=sent.attempt.status_code,
            ms=sent.attempt.duration_ms,
            attempt=job.attempts,
        )
        seconds = sent.attempt.duration_ms / 1000
        if sent.ok:
            self._count("delivered", seconds)
            return
        error = sent.attempt.error or "failed"
        if disabled is not None:
            self._count("gone" if disabled == GONE_REASON else "disabled", seconds)
            if self._metrics is not None:
                self._metrics.endpoint_disabled()
            raise JobFailure(f"{error}; {disabled}: disabled")
        self._count("retrying" if job.attempts < job.max_attempts else "failed", seconds)
        raise JobFailure(
            error,
            transient=True,
            retry_after=delay_after(
                self._options.delivery_schedule, job.attempts, sent.retry_after
            ),
        )

    def _count(self, outcome: str, seconds: float | None = None) -> None:
        if self._metrics is not None:
            self._metrics.attempted(outcome, seconds)


async def on_finish(conn: Conn, job: Job, outcome: Outcome) -> None:
    """Write where the delivery stands (the job's ``on_finish``, in its outcome's transaction)."""
    if job.workspace_id is None:
        return
    await deliveries.set_outcome(
        conn,
        job.workspace_id,
        str(job.payload.get("delivery_id", "")),
        job.id,
        status=outcome.status,
        next_attempt_at=outcome.retry_at,
        error=None if outcome.status == "succeeded" else outcome.error,
    )
