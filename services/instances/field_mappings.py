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
from libs.common.errors import NotFound
from services.instances import field_mapping_rules as rules
from services.instances.revisioned import Revisioned, Store
from services.instances.store import definitions
from services.instances.store import field_mappings as store
from services.instances.store.field_mappings import FieldMappingRecord

STORE = Store(
    noun="field mapping",
    definition=c.FieldMappingDefinition,
    select=store.select_mapping,
    update=store.update_mapping,
    delete=store.delete_mapping,
    select_page=store.list_mappings,
    select_revisions=store.select_revisions,
    select_revision=store.select_revision,
)
"""Where field mappings' definitions and revisions are kept (``revisioned``'s steps use it)."""


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
        self._revisioned = Revisioned(pool, STORE)
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

    async def get(self, req: c.FieldMappingGetRequest) -> c.FieldMapping:
        """Read a field mapping at its newest revision."""
        return reply(await self._revisioned.find(req.ctx, req.key))

    async def patch(self, req: c.FieldMappingPatchRequest) -> c.FieldMapping:
        """Change the given parts of a field mapping (the next revision)."""

        async def check(current: FieldMappingRecord, definition: c.FieldMappingDefinition) -> None:
            await self._check(
                req.ctx,
                current.level,
                current.integration_key,
                current.customer_id,
                current.data_source_key,
                definition,
            )

        return reply(
            await self._revisioned.patch(req.ctx, req.key, req.revision, req.given(), check)
        )

    async def delete(self, req: c.FieldMappingDeleteRequest) -> c.FieldMappingDeleted:
        """Delete a field mapping with its revisions and instances."""
        instances = await self._revisioned.delete(req.ctx, req.key)
        return c.FieldMappingDeleted(deleted=True, instances=instances)

    async def list(self, req: c.FieldMappingListRequest) -> c.FieldMappingPage:
        """List field mappings by key."""
        page, cursor = await self._revisioned.page(req.ctx, req)
        return c.FieldMappingPage(items=[reply(r) for r in page], cursor=cursor)

    async def revisions(self, req: c.FieldMappingRevisionsRequest) -> c.FieldMappingRevisionPage:
        """List a field mapping's revisions, newest first."""
        return c.FieldMappingRevisionPage(items=await self._revisioned.revisions(req.ctx, req.key))

    async def revision(self, req: c.FieldMappingRevisionGetRequest) -> c.FieldMappingRevision:
        """Read one revision of a field mapping."""
        return await self._revisioned.revision(req.ctx, req.key, req.n)
