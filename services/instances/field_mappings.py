"""Answer ``tether.instances.field_mappings.*`` (definitions): define, read, revise, delete, history.

A field mapping's scope (its key, level, the integration or customer the level names, and
its data source) is set when it is created and never changes; everything else is its
*definition*, kept at every revision, written only over the revision the editor read
(``revision`` or ``If-Match``), as actions are. Levels are the actions' ones (universal,
app, customer); the data source must exist, and an app- or customer-level mapping naming
an integration must name the data source's. Every problem is reported at once, each
naming its field (``field_mapping_rules.definition_problems``).
"""

from __future__ import annotations

import asyncpg

from libs.common.bus import Bus
from libs.common.contracts import field_mappings as c
from libs.common.contracts import identity
from libs.common.contracts.actions import Level
from libs.common.contracts.base import Context
from libs.common.errors import Conflict, InvalidInput, NotFound
from libs.common.paging import decode_cursor, keyset_page
from services.instances import field_mapping_rules as rules
from services.instances.store import definitions
from services.instances.store import field_mappings as store
from services.instances.store.field_mappings import FieldMappingRecord


def reply(record: FieldMappingRecord) -> c.FieldMapping:
    """Return a field mapping as its reply: its scope, its newest definition, its revision."""
    return c.FieldMapping.model_validate(
        {
            **record.definition.model_dump(by_alias=False),
            **record.model_dump(exclude={"definition", "workspace_id"}),
        }
    )


class FieldMappings:
    """Field-mapping definition handlers, one per operation."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], bus: Bus) -> None:
        self._pool = pool
        self._bus = bus

    async def _check(
        self,
        ctx: Context,
        level: Level,
        integration_key: str | None,
        customer_id: str | None,
        data_source_key: str,
        definition: c.FieldMappingDefinition,
    ) -> None:
        found = rules.scope_problems(level, integration_key, customer_id)
        found += rules.definition_problems(definition)
        if not found:
            async with self._pool.acquire() as conn:
                source = await definitions.select_data_source(
                    conn, ctx.workspace(), data_source_key
                )
            if source is None:
                found.append(
                    {"field": "dataSourceKey", "message": f"no data source {data_source_key}"}
                )
            elif integration_key and integration_key != source.integration_key:
                found.append(
                    {
                        "field": "integrationKey",
                        "message": f"data source {data_source_key} belongs to integration"
                        f" {source.integration_key}",
                    }
                )
        if not found and customer_id:
            try:
                await self._bus.call(
                    identity.CUSTOMERS_GET, identity.CustomerGetRequest(id=customer_id, ctx=ctx)
                )
            except NotFound:
                found.append({"field": "customerId", "message": f"no customer {customer_id}"})
        if found:
            raise rules.invalid(found)

    async def create(self, req: c.FieldMappingCreateRequest) -> c.FieldMapping:
        """Define a field mapping (revision 1) after checking its scope, definition and data source."""
        workspace_id = req.ctx.admin_workspace()
        definition = req.definition()
        await self._check(
            req.ctx,
            req.level,
            req.integration_key,
            req.customer_id,
            req.data_source_key,
            definition,
        )
        async with self._pool.acquire() as conn:
            record = await store.insert_mapping(conn, workspace_id, req, definition)
        return reply(record)

    async def _find(self, ctx: Context, key: str) -> FieldMappingRecord:
        workspace_id = ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            record = await store.select_mapping(conn, workspace_id, key)
        if record is None:
            raise NotFound(f"field mapping {key} not found")
        return record

    async def get(self, req: c.FieldMappingGetRequest) -> c.FieldMapping:
        """Read a field mapping at its newest revision."""
        return reply(await self._find(req.ctx, req.key))

    async def patch(self, req: c.FieldMappingPatchRequest) -> c.FieldMapping:
        """Change the given parts of a field mapping (the next revision)."""
        if req.revision is None:
            raise InvalidInput(
                "send the revision you edited (If-Match header or revision)",
                code="revision_required",
                details=[{"field": "revision"}],
            )
        current = await self._find(req.ctx, req.key)
        changed = current.definition.model_dump(by_alias=False) | req.given()
        definition = c.FieldMappingDefinition.model_validate(changed)
        await self._check(
            req.ctx,
            current.level,
            current.integration_key,
            current.customer_id,
            current.data_source_key,
            definition,
        )
        async with self._pool.acquire() as conn:
            updated = await store.update_mapping(conn, current, req.revision, definition)
            if updated is None:
                latest = await store.select_mapping(conn, current.workspace_id, current.key)
                now = latest.revision if latest else None
                raise Conflict(
                    f"revision {req.revision} is not the current one ({now}); reload and edit again",
                    code="revision_conflict",
                    details={"currentRevision": now},
                )
        return reply(updated)

    async def delete(self, req: c.FieldMappingDeleteRequest) -> c.FieldMappingDeleted:
        """Delete a field mapping with its revisions and instances."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            deleted, instances = await store.delete_mapping(conn, workspace_id, req.key)
        if not deleted:
            raise NotFound(f"field mapping {req.key} not found")
        return c.FieldMappingDeleted(deleted=True, instances=instances)

    async def list(self, req: c.FieldMappingListRequest) -> c.FieldMappingPage:
        """List field mappings by key."""
        workspace_id = req.ctx.admin_workspace()
        after = decode_cursor(req.cursor)[0] if req.cursor else None
        async with self._pool.acquire() as conn:
            rows = await store.list_mappings(conn, workspace_id, req, after, req.limit + 1)
        page, cursor = keyset_page(rows, req.limit, lambda r: (r.key,))
        return c.FieldMappingPage(items=[reply(r) for r in page], cursor=cursor)

    async def revisions(self, req: c.FieldMappingRevisionsRequest) -> c.FieldMappingRevisionPage:
        """List a field mapping's revisions, newest first."""
        current = await self._find(req.ctx, req.key)
        async with self._pool.acquire() as conn:
            items = await store.select_revisions(conn, current.workspace_id, current.key)
        return c.FieldMappingRevisionPage(items=items)

    async def revision(self, req: c.FieldMappingRevisionGetRequest) -> c.FieldMappingRevision:
        """Read one revision of a field mapping."""
        current = await self._find(req.ctx, req.key)
        async with self._pool.acquire() as conn:
            found = await store.select_revision(conn, current.workspace_id, current.key, req.n)
        if found is None:
            raise NotFound(f"revision {req.n} not found")
        return found
