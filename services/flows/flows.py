"""Answer flow operations: create, read, revise (optimistically locked), archive, history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from libs.common.bus import Bus
from libs.common.contracts import connections, identity, instances
from libs.common.contracts import flows as c
from libs.common.contracts.base import Context
from libs.common.errors import Conflict, InvalidInput, NotFound
from libs.common.outbox import emit
from libs.common.paging import keyset_page, uuid_after
from services.flows import store
from services.flows.store import FlowRecord
from services.flows.validation import check_scope, require_valid

Change = Callable[[c.FlowDefinition], c.FlowDefinition]
"""What a revision does to the current definition."""


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", details=[{"field": field, "message": message}])


def _reply(record: FlowRecord) -> c.Flow:
    return c.Flow.model_validate(record, from_attributes=True)


class Flows:
    """Flow handlers."""

    def __init__(self, pool: asyncpg.Pool[Any], bus: Bus) -> None:
        self._pool = pool
        self._bus = bus

    async def _check_references(
        self,
        ctx: Context,
        level: c.Level,
        integration_key: str | None,
        customer_id: str | None,
        trigger: c.Trigger,
    ) -> None:
        """Refuse a flow whose integration, customer or trigger element does not exist."""
        try:
            if integration_key:
                await self._bus.call(
                    connections.INTEGRATIONS_GET,
                    connections.IntegrationGetRequest(key=integration_key, ctx=ctx),
                )
        except NotFound as exc:
            raise _invalid("integrationKey", f"no integration {integration_key}") from exc
        try:
            if level == "customer" and customer_id:
                await self._bus.call(
                    identity.CUSTOMERS_GET, identity.CustomerGetRequest(id=customer_id, ctx=ctx)
                )
        except NotFound as exc:
            raise _invalid("customerId", f"no customer {customer_id}") from exc
        try:
            if isinstance(trigger, c.AppEventTrigger):
                field = "trigger.appEventTypeKey"
                owner = (
                    await self._bus.call(
                        instances.APP_EVENT_TYPES_GET,
                        instances.AppEventTypeGetRequest(key=trigger.app_event_type_key, ctx=ctx),
                    )
                ).integration_key
            elif isinstance(trigger, c.DataRecordTrigger):
                field = "trigger.dataSourceKey"
                owner = (
                    await self._bus.call(
                        instances.DATA_SOURCES_GET,
                        instances.DataSourceGetRequest(key=trigger.data_source_key, ctx=ctx),
                    )
                ).integration_key
            else:
                return
        except (NotFound, InvalidInput) as exc:
            raise _invalid(field, "no such element") from exc
        if owner != integration_key:
            raise _invalid(field, f"the element belongs to integration {owner}")

    async def create(self, req: c.FlowCreateRequest) -> c.Flow:
        """Create a flow after checking its level, graph, configs and references."""
        workspace_id = req.ctx.admin_workspace()
        definition = req.definition()
        check_scope(req.level, req.integration_key, req.customer_id, req.trigger)
        require_valid(definition)
        await self._check_references(
            req.ctx, req.level, req.integration_key, req.customer_id, req.trigger
        )
        async with self._pool.acquire() as conn, conn.transaction():
            record = await store.insert_flow(
                conn,
                id=uuid4(),
                workspace_id=workspace_id,
                key=req.key,
                level=req.level,
                integration_key=req.integration_key,
                customer_id=req.customer_id,
                definition=definition,
            )
            await emit(
                conn,
                c.FLOW_CREATED,
                c.FlowEvent(workspace_id=workspace_id, flow_id=record.id, revision=1),
            )
        return _reply(record)

    async def get(self, req: c.FlowGetRequest) -> c.Flow:
        """Read a flow."""
        return _reply(await self._flow(req.ctx, req.id))

    async def _flow(self, ctx: Context, flow_id: UUID) -> FlowRecord:
        workspace_id = ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            record = await store.select_flow(conn, workspace_id, flow_id)
        if record is None:
            raise NotFound("flow not found")
        return record

    async def put(self, req: c.FlowPutRequest) -> c.Flow:
        """Replace the definition (next revision)."""
        definition = req.definition()
        return await self._revise(req.ctx, req.id, req.revision, lambda _: definition)

    async def patch(self, req: c.FlowPatchRequest) -> c.Flow:
        """Change the given parts (next revision)."""
        given = req.given()
        return await self._revise(
            req.ctx, req.id, req.revision, lambda d: d.model_copy(update=given)
        )

    async def _revise(
        self, ctx: Context, flow_id: UUID, revision: int | None, change: Change
    ) -> c.Flow:
        if revision is None:
            raise InvalidInput(
                "send the revision you edited (If-Match header or revision)",
                code="revision_required",
                details=[{"field": "revision"}],
            )
        current = await self._flow(ctx, flow_id)
        if current.archived_at is not None:
            raise Conflict("the flow is archived", code="flow_archived")
        definition = c.FlowDefinition.model_validate(change(current.definition).model_dump())
        check_scope(current.level, current.integration_key, current.customer_id, definition.trigger)
        require_valid(definition)
        await self._check_references(
            ctx, current.level, current.integration_key, current.customer_id, definition.trigger
        )
        async with self._pool.acquire() as conn, conn.transaction():
            updated = await store.update_flow(
                conn, current.workspace_id, flow_id, revision, definition
            )
            if updated is None:
                latest = await store.select_flow(conn, current.workspace_id, flow_id)
                now = latest.revision if latest else None
                raise Conflict(
                    f"revision {revision} is not the current one ({now}); reload and edit again",
                    code="revision_conflict",
                    details={"currentRevision": now},
                )
            await emit(
                conn,
                c.FLOW_UPDATED,
                c.FlowEvent(
                    workspace_id=current.workspace_id, flow_id=flow_id, revision=updated.revision
                ),
            )
        return _reply(updated)

    async def delete(self, req: c.FlowDeleteRequest) -> c.FlowDeleted:
        """Delete a flow, or archive it while instances exist."""
        current = await self._flow(req.ctx, req.id)
        async with self._pool.acquire() as conn, conn.transaction():
            deleted, archived = await store.remove_flow(conn, current.workspace_id, req.id)
            if archived is not None:
                await emit(
                    conn,
                    c.FLOW_ARCHIVED,
                    c.FlowEvent(
                        workspace_id=current.workspace_id,
                        flow_id=req.id,
                        revision=archived.revision,
                    ),
                )
        return c.FlowDeleted(deleted=deleted, archived=archived is not None)

    async def list(self, req: c.FlowListRequest) -> c.FlowPage:
        """List flows by id."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            rows = await store.list_flows(
                conn,
                workspace_id,
                level=req.level,
                integration_key=req.integration_key,
                customer_id=req.customer_id,
                include_archived=req.include_archived,
                after=uuid_after(req.cursor),
                limit=req.limit + 1,
            )
        page, cursor = keyset_page(rows, req.limit, lambda r: (r.id,))
        return c.FlowPage(items=[_reply(r) for r in page], cursor=cursor)

    async def revisions(self, req: c.FlowRevisionsRequest) -> c.FlowRevisionPage:
        """List a flow's revisions, newest first."""
        current = await self._flow(req.ctx, req.id)
        async with self._pool.acquire() as conn:
            return c.FlowRevisionPage(
                items=await store.select_revisions(conn, current.workspace_id, req.id)
            )

    async def revision(self, req: c.FlowRevisionGetRequest) -> c.FlowRevision:
        """Read one revision."""
        current = await self._flow(req.ctx, req.id)
        async with self._pool.acquire() as conn:
            found = await store.select_revision(conn, current.workspace_id, req.id, req.n)
        if found is None:
            raise NotFound(f"revision {req.n} not found")
        return found
