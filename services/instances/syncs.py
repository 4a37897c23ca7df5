"""Answer ``tether.instances.syncs.*``: run a pass now, confirm or discard a held one, list passes.

How a pass runs is ``sync_pass.py``'s; this module checks who asks and what state allows.
"""

from __future__ import annotations

import asyncpg
import structlog

from libs.common import jobs
from libs.common.contracts import instances as c
from libs.common.db import Conn
from libs.common.errors import Conflict
from libs.common.paging import decode_time_uuid_cursor, keyset_page
from services.instances.settings import InstancesOptions
from services.instances.store import definitions, syncs
from services.instances.store.data_source_instances import DataSourceInstanceRecord
from services.instances.store.syncs import PassRecord
from services.instances.sync_pass import finish_deletions
from services.instances.sync_schedule import sync_job
from services.instances.sync_views import collection_of, sync_status, visible_instance

log = structlog.get_logger(__name__)


class Syncs:
    """Sync handlers, one per operation."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], options: InstancesOptions) -> None:
        self._pool = pool
        self._options = options

    async def start(self, req: c.SyncRequest) -> c.SyncStatus:
        """Queue a pass now (owner customer or admin); one already waiting is not doubled.

        Refused (409 ``sync_held``) while a pass waits for an admin's confirm or discard.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            instance = await visible_instance(conn, req.ctx, req.id)
            await collection_of(conn, instance)
            current = await syncs.open_pass(conn, instance.workspace_id, instance.id)
            if current is not None and current.status == "held":
                raise Conflict(
                    "a pass is held for review: confirm or discard it first", code="sync_held"
                )
            if not await syncs.has_pending_job(conn, instance.workspace_id, instance.id):
                await jobs.enqueue(
                    conn, sync_job(instance.workspace_id, instance.id, self._options)
                )
            return await sync_status(conn, instance)

    async def confirm(self, req: c.SyncRequest) -> c.SyncStatus:
        """Apply a held pass's deletions (admins only) and emit their events."""
        req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            instance = await visible_instance(conn, req.ctx, req.id)
            held = await self._held(conn, instance)
            definition = await definitions.select_data_source(
                conn, instance.workspace_id, instance.data_source_key
            )
            integration_key = definition.integration_key if definition else ""
            deleted = await finish_deletions(conn, instance, integration_key, held)
            await syncs.end_pass(
                conn,
                held,
                "completed",
                deleted=deleted,
                would_delete=held.would_delete,
                live_records=held.live_records,
            )
            log.info("sync_pass_confirmed", pass_id=str(held.id), deleted=deleted)
            return await sync_status(conn, instance)

    async def discard(self, req: c.SyncRequest) -> c.SyncStatus:
        """Drop a held pass's deletions (admins only): nothing is deleted, syncing resumes."""
        req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            instance = await visible_instance(conn, req.ctx, req.id)
            held = await self._held(conn, instance)
            await syncs.end_pass(
                conn,
                held,
                "discarded",
                would_delete=held.would_delete,
                live_records=held.live_records,
            )
            log.info("sync_pass_discarded", pass_id=str(held.id))
            return await sync_status(conn, instance)

    async def passes(self, req: c.SyncPassListRequest) -> c.SyncPassPage:
        """Return the instance's passes, newest first (whoever may see the instance)."""
        after = decode_time_uuid_cursor(req.cursor) if req.cursor else None
        async with self._pool.acquire() as conn:
            instance = await visible_instance(conn, req.ctx, req.id, archived=True)
            rows = await syncs.list_passes(
                conn, instance.workspace_id, instance.id, after=after, limit=req.limit + 1
            )
        page, cursor = keyset_page(rows, req.limit, lambda r: (r.started_at.isoformat(), r.id))
        return c.SyncPassPage(items=[r.view() for r in page], cursor=cursor)

    @staticmethod
    async def _held(conn: Conn, instance: DataSourceInstanceRecord) -> PassRecord:
        current = await syncs.open_pass(conn, instance.workspace_id, instance.id)
        if current is None or current.status != "held":
            raise Conflict("no pass is held for review", code="sync_not_held")
        return await syncs.lock_pass(conn, current.workspace_id, current.id)
