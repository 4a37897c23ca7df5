"""Answer ``tether.instances.synced_records.list``: read the stored copy of the records."""

from __future__ import annotations

from datetime import UTC

import asyncpg

from libs.common.contracts import instances as c
from libs.common.paging import decode_time_cursor, keyset_page
from services.instances.store import records
from services.instances.sync_views import visible_instance


class SyncedRecords:
    """Synced-record handlers."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self._pool = pool

    async def list(self, req: c.SyncedRecordListRequest) -> c.SyncedRecordPage:
        """Return stored records by when they last changed (deleted ones with ``deletedAt``).

        ``changedSince`` keeps those changed after that time; the cursor continues a listing.
        """
        after = decode_time_cursor(req.cursor) if req.cursor else None
        since = req.changed_since
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # a time without a zone is read as UTC
        async with self._pool.acquire() as conn:
            instance = await visible_instance(conn, req.ctx, req.id, archived=True)
            rows = await records.list_synced(
                conn,
                instance.workspace_id,
                instance.id,
                changed_since=since,
                after=after,
                limit=req.limit + 1,
            )
        page, cursor = keyset_page(
            rows, req.limit, lambda r: (r.last_modified_at.isoformat(), r.id)
        )
        return c.SyncedRecordPage(items=page, cursor=cursor)
