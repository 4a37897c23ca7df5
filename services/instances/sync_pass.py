"""Run one sync pass of a data-source instance, page by page, resumable after a crash.

A pass is a job of queue ``syncs`` (``libs/common/jobs.py``) whose partition is the
instance id, with a partition limit of 1: two passes of one instance never run at once,
whichever replica claims them. What a pass guarantees:

* **Page by page, exactly once.** Each page's records, their events and the request of the
  next page commit in one transaction, under the pass row's lock and only if the pass is
  still where this worker read it from. A worker killed mid-page loses only that page's
  uncommitted work; the job is claimed again when its lease ends and the pass resumes at
  the stored next page. No page's events are ever emitted twice.
* **Change detection.** A new id is ``data_record.created`` (so is one that comes back
  after a deletion), a changed content hash ``data_record.updated``; an unchanged record
  emits nothing (``store/records.py``).
* **Deletes only after a completed full pass.** When the last page is stored, a ``full``
  pass marks deleted the live records it did not see — unless that is more than the
  sync's ``massDeleteThreshold`` percent of the live records: then the pass is ``held``,
  nothing is deleted, and no other pass runs until an admin confirms or discards it
  (``syncs.py``). A failed or unfinished pass deletes nothing; ``incremental`` passes
  never delete.
* **Failures sorted.** An app that is down, slow or rate-limiting fails the attempt
  transiently (retried with backoff, resuming at the same page); an app that refuses the
  request, or a spec that cannot read the answer, fails the pass. A job that gives up
  fails its pass (``on_finish``).
"""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg
import structlog

from libs.common.contracts import instances as c
from libs.common.db import Conn
from libs.common.errors import TetherError
from libs.common.jobs import Job, JobFailure, Outcome
from services.instances.collection import (
    AppRequest,
    canonical_json,
    content_hash,
    first_page,
    next_page,
    page_items,
    record_id,
    updated_at,
)
from services.instances.collection_calls import AppCaller, transient, wait_of
from services.instances.metrics import InstancesMetrics
from services.instances.store import data_source_instances, definitions, syncs
from services.instances.store.data_source_instances import DataSourceInstanceRecord
from services.instances.store.definitions import DataSourceRecord
from services.instances.store.records import (
    IncomingRecord,
    apply_records,
    count_unseen,
    mark_unseen_deleted,
)
from services.instances.store.syncs import PassRecord
from services.instances.sync_events import emit_records

log = structlog.get_logger(__name__)

SYNC_JOB = "sync"
DEFAULT_SYNC = c.SyncSpec(interval_minutes=60, mode="full")
"""How a pass runs when asked for on a data source that has a collection but no sync."""


def incoming(collection: c.CollectionSpec, items: list[object]) -> list[IncomingRecord]:
    """Return a page's records with their ids and hashes (a repeated id: the last one wins)."""
    found: dict[str, IncomingRecord] = {}
    for item in items:
        rid = record_id(collection, item)
        if rid is None:
            continue
        text = canonical_json(item)
        found[rid] = IncomingRecord(rid, content_hash(text), text, updated_at(collection, item))
    return list(found.values())


async def finish_deletions(
    conn: Conn,
    instance: DataSourceInstanceRecord,
    integration_key: str,
    current: PassRecord,
) -> int:
    """Mark deleted what a completed full pass did not see and emit the events; count them."""
    gone = await mark_unseen_deleted(
        conn, instance.workspace_id, instance.id, current.id, current.started_at
    )
    return await emit_records(
        conn, instance, integration_key, (("deleted", rid, None) for rid in gone)
    )


class SyncRunner:
    """The handler of queue ``syncs``: run (or resume) one pass of one instance."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        caller: AppCaller,
        metrics: InstancesMetrics | None = None,
    ) -> None:
        """Read apps through ``caller``; with ``metrics``, count passes and changed records."""
        self._pool = pool
        self._caller = caller
        self._metrics = metrics

    async def on_finish(self, conn: Conn, job: Job, outcome: Outcome) -> None:
        """Fail the pass of a job that gave up (:func:`on_finish`), counting it as failed."""
        await on_finish(conn, job, outcome)
        if outcome.status == "failed" and self._metrics is not None:
            self._metrics.sync_pass("failed")

    async def handle(self, job: Job) -> None:
        """Run the pass a ``sync`` job stands for (payload ``{instanceId}``)."""
        workspace_id = job.workspace_id
        instance_id = UUID(str(job.payload.get("instanceId")))
        if workspace_id is None:
            raise JobFailure("a sync job names its workspace")
        async with self._pool.acquire() as conn:
            instance = await data_source_instances.select_data_source_instance(
                conn, workspace_id, instance_id
            )
            definition = (
                await definitions.select_data_source(conn, workspace_id, instance.data_source_key)
                if instance is not None
                else None
            )
        if instance is None or instance.status == "archived":
            log.info("sync_skipped", instance_id=str(instance_id), reason="no instance")
            return
        if definition is None or definition.collection is None:
            raise JobFailure("the data source has no collection to sync")
        current = await self._open(instance, definition)
        if current is None:
            log.info("sync_skipped", instance_id=str(instance_id), reason="held")
            return
        log.info("sync_pass_running", instance_id=str(instance_id), pass_id=str(current.id))
        while current is not None and current.next_request is not None:
            current = await self._page(instance, definition, current)
        if current is not None:
            await self._finish(instance, definition, current)

    async def _open(
        self, instance: DataSourceInstanceRecord, definition: DataSourceRecord
    ) -> PassRecord | None:
        """Return the running pass to resume, or a new one; None while a pass is held."""
        assert definition.collection is not None
        sync = definition.sync or DEFAULT_SYNC
        async with self._pool.acquire() as conn, conn.transaction():
            existing = await syncs.open_pass(conn, instance.workspace_id, instance.id)
            if existing is not None:
                return None if existing.status == "held" else existing
            since = None
            if sync.mode == "incremental":
                since = await syncs.last_complete_start(conn, instance.workspace_id, instance.id)
            first = first_page(definition.collection.list, since)
            created = await syncs.insert_pass(
                conn, uuid4(), instance, mode=sync.mode, since=since, first=first.to_json()
            )
            if created is None:  # opened by another worker in between
                again = await syncs.open_pass(conn, instance.workspace_id, instance.id)
                return again if again is not None and again.status == "running" else None
            return created

    async def _fail(self, current: PassRecord, error: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await syncs.lock_pass(conn, current.workspace_id, current.id)
            if locked.status == "running":
                await syncs.end_pass(conn, locked, "failed", error=error[:500])

    async def _page(
        self,
        instance: DataSourceInstanceRecord,
        definition: DataSourceRecord,
        current: PassRecord,
    ) -> PassRecord | None:
        """Read and store one page; return the pass as it now is (None: another worker has it)."""
        collection = definition.collection
        assert collection is not None
        assert current.next_request is not None
        request = AppRequest.from_json(current.next_request)
        try:
            answer = await self._caller.send(
                instance.workspace_id,
                instance.connection_id,
                request,
                request_id=f"sync-{current.id}",
            )
            items = page_items(collection.list, answer.data)
            following = next_page(collection.list, request, answer.data, answer.headers, items)
        except TetherError as exc:
            if transient(exc):
                raise JobFailure(exc.message, transient=True, retry_after=wait_of(exc)) from exc
            await self._fail(current, exc.message)
            raise JobFailure(exc.message) from exc
        records = incoming(collection, items)
        full = current.mode == "full"
        next_json = following.to_json() if following is not None else None
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await syncs.lock_pass(conn, current.workspace_id, current.id)
            if (
                locked.status != "running"
                or locked.pages != current.pages
                or locked.next_request != current.next_request
            ):
                log.warning("sync_pass_moved_on", pass_id=str(current.id))
                return None
            changes = await apply_records(
                conn,
                instance.workspace_id,
                instance.id,
                records,
                seen_pass=current.id if full else None,
            )
            await emit_records(
                conn,
                instance,
                definition.integration_key,
                ((ch.kind, ch.record_id, ch.data) for ch in changes),
            )
            created = sum(1 for ch in changes if ch.kind == "created")
            await syncs.advance_pass(
                conn,
                locked,
                next_request=next_json,
                records=len(records),
                created=created,
                updated=len(changes) - created,
            )
        if self._metrics is not None:
            self._metrics.records_synced(created=created, updated=len(changes) - created)
        return locked.model_copy(
            update={
                "next_request": next_json,
                "pages": locked.pages + 1,
                "records": locked.records + len(records),
                "created": locked.created + created,
                "updated": locked.updated + len(changes) - created,
            }
        )

    async def _finish(
        self,
        instance: DataSourceInstanceRecord,
        definition: DataSourceRecord,
        current: PassRecord,
    ) -> None:
        """End a pass whose pages are all stored: delete (or hold) in a full pass."""
        sync = definition.sync or DEFAULT_SYNC
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await syncs.lock_pass(conn, current.workspace_id, current.id)
            if locked.status != "running" or locked.next_request is not None:
                return
            if locked.mode != "full":
                await syncs.end_pass(conn, locked, "completed")
                self._count_pass("completed")
                return
            unseen, live = await count_unseen(
                conn, instance.workspace_id, instance.id, locked.id, locked.started_at
            )
            if unseen and unseen * 100 > sync.mass_delete_threshold * live:
                await syncs.end_pass(conn, locked, "held", would_delete=unseen, live_records=live)
                self._count_pass("held")
                log.warning(
                    "sync_pass_held", pass_id=str(locked.id), would_delete=unseen, live=live
                )
                return
            deleted = await finish_deletions(conn, instance, definition.integration_key, locked)
            await syncs.end_pass(conn, locked, "completed", deleted=deleted)
        log.info("sync_pass_completed", pass_id=str(current.id), deleted=deleted)
        self._count_pass("completed")
        if self._metrics is not None:
            self._metrics.records_synced(deleted=deleted)

    def _count_pass(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.sync_pass(outcome)


async def on_finish(conn: Conn, job: Job, outcome: Outcome) -> None:
    """Fail the running pass of a sync job that gave up (the job's ``on_finish``)."""
    if outcome.status != "failed" or job.workspace_id is None:
        return
    instance_id = UUID(str(job.payload.get("instanceId")))
    await syncs.fail_running(conn, job.workspace_id, instance_id, (outcome.error or "failed")[:500])
