"""Answer flow-instance operations: deploy, read (effective flow), customise, upgrade, reset."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg

from libs.common.bus import Bus
from libs.common.contracts import connections
from libs.common.contracts import flows as c
from libs.common.contracts.base import Context, EventType
from libs.common.customization import Effective, parameter_problems, require_upgradable
from libs.common.db import Conn
from libs.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from libs.common.outbox import emit
from libs.common.paging import keyset_page, uuid_after
from services.flows import store
from services.flows.customization import apply, conflicts, customer_customization
from services.flows.store import FlowRecord, InstanceRecord
from services.flows.validation import fits, require_valid


async def effective(conn: Conn, record: InstanceRecord) -> tuple[c.FlowDefinition, dict[str, Any]]:
    """Return what an instance runs: its base revision with its customisation, and its values.

    Runs snapshot this when they start (``services/flows/runs/start.py``).
    """
    base = await store.select_existing_revision(
        conn, record.workspace_id, record.flow_id, record.base_revision
    )
    return apply(base.definition, record.customization)


class FlowInstances:
    """Flow-instance handlers."""

    def __init__(self, pool: asyncpg.Pool[Any], bus: Bus) -> None:
        self._pool = pool
        self._bus = bus
        # Revisions never change once written: keep the hot ones (and their effective flows).
        self._revisions: Effective[tuple[UUID, int], c.FlowDefinition] = Effective(apply)

    async def _definition(
        self, conn: Conn, workspace_id: UUID, flow_id: UUID, revision: int
    ) -> c.FlowDefinition:
        return await self._revisions.revision(
            (flow_id, revision), lambda: self._read_revision(conn, workspace_id, flow_id, revision)
        )

    @staticmethod
    async def _read_revision(
        conn: Conn, workspace_id: UUID, flow_id: UUID, revision: int
    ) -> c.FlowDefinition:
        found = await store.select_existing_revision(conn, workspace_id, flow_id, revision)
        return found.definition

    async def _view(self, conn: Conn, record: InstanceRecord, flow: FlowRecord) -> c.FlowInstance:
        effective, values = await self._revisions.effective(
            (record.flow_id, record.base_revision),
            record.customization,
            lambda: self._read_revision(
                conn, record.workspace_id, record.flow_id, record.base_revision
            ),
        )
        return c.FlowInstance(
            **record.model_dump(exclude={"workspace_id", "archived_at"}),
            latest_revision=flow.revision,
            outdated=record.base_revision < flow.revision,
            flow=effective,
            parameter_values=values,
            archived=record.archived_at is not None,
        )

    async def _load(
        self, conn: Conn, ctx: Context, instance_id: UUID
    ) -> tuple[InstanceRecord, FlowRecord]:
        workspace_id = ctx.workspace()
        if ctx.principal == "anonymous":
            raise Forbidden("this operation needs a token")
        record = await store.select_instance(conn, workspace_id, instance_id)
        if record is None or not ctx.sees(record.customer_id):
            raise NotFound("flow instance not found")
        flow = await store.select_existing_flow(conn, workspace_id, record.flow_id)
        return record, flow

    async def get(self, req: c.FlowInstanceGetRequest) -> c.FlowInstance:
        """Read an instance with its effective flow."""
        async with self._pool.acquire() as conn:
            record, flow = await self._load(conn, req.ctx, req.id)
            return await self._view(conn, record, flow)

    async def list(self, req: c.FlowInstanceListRequest) -> c.FlowInstancePage:
        """List instances (a customer's own)."""
        workspace_id = req.ctx.workspace()
        customer_id, visible = req.ctx.customer_filter(req.customer_id)
        if not visible:
            return c.FlowInstancePage(items=[], cursor=None)
        async with self._pool.acquire() as conn:
            rows = await store.list_instances(
                conn,
                workspace_id,
                customer_id=customer_id,
                connection_id=req.connection_id,
                flow_id=req.flow_id,
                after=uuid_after(req.cursor),
                limit=req.limit + 1,
            )
            page, cursor = keyset_page(rows, req.limit, lambda r: (r.id,))
            flows = await store.select_flows(conn, workspace_id, list({r.flow_id for r in page}))
            items = [await self._view(conn, r, flows[r.flow_id]) for r in page]
        return c.FlowInstancePage(items=items, cursor=cursor)

    async def create(self, req: c.FlowInstanceCreateRequest) -> c.FlowInstance:
        """Deploy a flow to a connection by hand (the flow's level must fit the connection)."""
        workspace_id = req.ctx.admin_workspace()
        connection = await self._bus.call(
            connections.CONNECTIONS_GET,
            connections.ConnectionGetRequest(id=req.connection_id, ctx=req.ctx),
        )
        async with self._pool.acquire() as conn, conn.transaction():
            flow = await store.select_flow(conn, workspace_id, req.flow_id)
            if flow is None or flow.archived_at is not None:
                raise NotFound("flow not found")
            if not fits(
                flow.level,
                flow.integration_key,
                flow.customer_id,
                customer_id=connection.customer_id,
                integration_key=connection.integration_key,
            ):
                raise InvalidInput(
                    f"a {flow.level}-level flow cannot run on this connection",
                    details=[{"field": "connectionId"}],
                )
            record = await self._insert(
                conn, flow, connection.id, connection.customer_id, connection.integration_key
            )
            if record is None:
                raise Conflict(
                    "this connection already runs this flow", code="flow_instance_exists"
                )
            return await self._view(conn, record, flow)

    async def _insert(
        self,
        conn: Conn,
        flow: FlowRecord,
        connection_id: UUID,
        customer_id: str,
        integration_key: str,
    ) -> InstanceRecord | None:
        record = await store.insert_instance(
            conn,
            id=uuid4(),
            flow=flow,
            connection_id=connection_id,
            customer_id=customer_id,
            integration_key=integration_key,
        )
        if record is not None:
            await self._event(conn, c.FLOW_INSTANCE_CREATED, record)
        return record

    async def patch(self, req: c.FlowInstancePatchRequest) -> c.FlowInstance:
        """Customise and/or switch; customers may only switch and set parameter values."""
        async with self._pool.acquire() as conn, conn.transaction():
            record, flow = await self._load(conn, req.ctx, req.id)
            customization = record.customization
            if req.customization is not None:
                # Who may change what is its own rule: a customer sets only parameter values.
                if req.ctx.principal == "customer":
                    customization = customer_customization(customization, req.customization)
                else:
                    customization = req.customization
            enabled = record.enabled if req.enabled is None else req.enabled
            base = await self._definition(
                conn, record.workspace_id, record.flow_id, record.base_revision
            )
            self._check(base, customization)
            updated = await store.update_instance(
                conn, record, customization, enabled, record.base_revision
            )
            await self._event(conn, c.FLOW_INSTANCE_UPDATED, updated)
            return await self._view(conn, updated, flow)

    def _check(self, base: c.FlowDefinition, customization: dict[str, Any]) -> None:
        """Refuse a customisation whose effective flow or parameter values do not validate."""
        if not isinstance(customization.get("nodes", {}), dict | None):
            raise InvalidInput(
                "customization.nodes must be an object", details=[{"field": "customization.nodes"}]
            )
        try:
            effective, values = apply(base, customization)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                f"the customisation does not apply: {exc}", details=[{"field": "customization"}]
            ) from exc
        require_valid(effective, prefix="flow.")
        problems = parameter_problems(base.parameters, values)
        if problems:
            raise InvalidInput(
                f"{problems[0]['field']}: {problems[0]['message']}", details=problems
            )

    async def upgrade(self, req: c.FlowInstanceUpgradeRequest) -> c.FlowInstance:
        """Carry the customisation onto the newest revision, or refuse listing the conflicts."""
        req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            record, flow = await self._load(conn, req.ctx, req.id)
            if record.base_revision == flow.revision:
                return await self._view(conn, record, flow)
            old = await self._definition(
                conn, record.workspace_id, record.flow_id, record.base_revision
            )
            new = await self._definition(conn, record.workspace_id, record.flow_id, flow.revision)
            require_upgradable(
                flow.revision,
                conflicts(old, new, record.customization),
                lambda: self._check(new, record.customization),
            )
            updated = await store.update_instance(
                conn, record, record.customization, record.enabled, flow.revision
            )
            await self._event(conn, c.FLOW_INSTANCE_UPDATED, updated)
            return await self._view(conn, updated, flow)

    async def reset(self, req: c.FlowInstanceResetRequest) -> c.FlowInstance:
        """Drop the customisation and move the instance to the flow's newest revision.

        Without a customisation there is nothing to carry across, so nothing can conflict:
        the instance runs the newest revision as it is (``enabled`` stays as it was).
        """
        req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            record, flow = await self._load(conn, req.ctx, req.id)
            updated = await store.update_instance(conn, record, {}, record.enabled, flow.revision)
            await self._event(conn, c.FLOW_INSTANCE_UPDATED, updated)
            return await self._view(conn, updated, flow)

    async def ensure(self, req: c.EnsureInstancesRequest) -> c.EnsureInstancesReply:
        """Create the connection's autoDeploy flow instances (or archive them all); idempotent."""
        req.ctx.require_system()
        workspace_id = req.ctx.workspace()
        created = archived = 0
        async with self._pool.acquire() as conn, conn.transaction():
            if req.archive:
                for record in await store.archive_instances(conn, workspace_id, req.connection_id):
                    await self._event(conn, c.FLOW_INSTANCE_ARCHIVED, record)
                    archived += 1
            else:
                for flow in await store.auto_flows(
                    conn, workspace_id, req.integration_key, req.customer_id
                ):
                    if await self._insert(
                        conn, flow, req.connection_id, req.customer_id, req.integration_key
                    ):
                        created += 1
            total = await store.count_connection_instances(conn, workspace_id, req.connection_id)
        return c.EnsureInstancesReply(created=created, archived=archived, total=total)

    async def _event(
        self, conn: Conn, kind: EventType[c.FlowInstanceEvent], record: InstanceRecord
    ) -> None:
        await emit(
            conn,
            kind,
            c.FlowInstanceEvent(
                workspace_id=record.workspace_id,
                flow_instance_id=record.id,
                flow_id=record.flow_id,
                connection_id=record.connection_id,
                customer_id=record.customer_id,
            ),
        )
