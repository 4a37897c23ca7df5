"""Answer customer operations, and keep customers in step with the tokens that name them."""

from __future__ import annotations

import copy
from typing import Any
from uuid import UUID

import asyncpg
import json_merge_patch

from libs.common.bus import Kept
from libs.common.cache import TtlCache
from libs.common.contracts import identity as c
from libs.common.contracts.base import Context, EventType
from libs.common.db import Conn
from libs.common.errors import Conflict, Forbidden, NotFound
from libs.common.outbox import emit
from libs.common.paging import decode_cursor, keyset_page
from libs.common.rows import reply
from services.identity import store
from services.identity.fields import CUSTOMER, Source, field_errors, require_valid
from services.identity.store import CustomerRecord

KEEP_ME_SECONDS = 3600.0
"""How long the gateway may answer ``/customers/me`` again (it caps this at its own TTL)."""


def merge_fields(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a PATCH's ``fields`` as a JSON Merge Patch (RFC 7396) to a customer's fields.

    A null deletes a key, an object merges into the object it meets (recursively), any
    other value replaces what was there: the same rules as every customisation in Tether.
    """
    merged: dict[str, Any] = json_merge_patch.merge(copy.deepcopy(current), patch)
    return merged


def customer_reply(record: CustomerRecord, errors: list[c.FieldError] | None = None) -> c.Customer:
    """Return the customer as the API shows it, with the schema check's result when given."""
    if errors is None:
        return c.Customer.model_validate(record, from_attributes=True)
    return reply(c.Customer, record, fields_valid=not errors, fields_errors=errors or None)


def _changes(before: CustomerRecord, after: CustomerRecord) -> list[str]:
    return [k for k in ("name", "fields") if getattr(before, k) != getattr(after, k)]


class Customers:
    """Customer handlers."""

    def __init__(self, pool: asyncpg.Pool[Any], cache: TtlCache[tuple[UUID, str], CustomerRecord]):
        self._pool = pool
        self._cache = cache

    async def _schema(self, conn: Conn, workspace_id: UUID) -> dict[str, Any] | None:
        record = await store.get_workspace(conn, workspace_id)
        return record.settings.customer_fields_schema

    async def _event(
        self,
        conn: Conn,
        kind: EventType[c.CustomerEvent],
        workspace_id: UUID,
        customer_id: str,
        changes: list[str],
    ) -> None:
        await emit(
            conn,
            kind,
            c.CustomerEvent(workspace_id=workspace_id, customer_id=customer_id, changes=changes),
        )

    async def _cached(self, workspace_id: UUID, customer_id: str) -> CustomerRecord | None:
        """Return the customer from memory, reading (and remembering) it on a miss."""
        key = (workspace_id, customer_id)
        record = self._cache.get(key)
        if record is None:
            generation = self._cache.generation  # a change dropped meanwhile: do not keep it
            async with self._pool.acquire() as conn:
                record = await store.select_customer(conn, workspace_id, customer_id)
            if record is not None:
                self._cache.put(key, record, since=generation)
        return record

    def forget(self, workspace_id: UUID, customer_id: str) -> None:
        """Drop a customer from memory (it changed here or in another replica)."""
        self._cache.drop((workspace_id, customer_id))

    async def create_in(
        self,
        conn: Conn,
        workspace_id: UUID,
        schema: dict[str, Any] | None,
        customer_id: str,
        name: str | None,
        fields: dict[str, Any],
        source: Source = CUSTOMER,
    ) -> CustomerRecord | None:
        """Create a customer in the caller's transaction unless the id exists (then None).

        Fields are checked only when the row is new (a failure rolls the caller back), and
        ``customer.created`` is queued with the row: concurrent creators race on
        ``INSERT … ON CONFLICT DO NOTHING``, so exactly one of them creates and says so.
        """
        created = await store.insert_customer_if_new(conn, workspace_id, customer_id, name, fields)
        if created is not None:
            require_valid(schema, fields, source)
            await self._event(conn, c.CUSTOMER_CREATED, workspace_id, customer_id, [])
        return created

    async def sync(
        self,
        workspace_id: UUID,
        schema: dict[str, Any] | None,
        customer_id: str,
        name: str | None = None,
        fields: dict[str, Any] | None = None,
        source: Source = CUSTOMER,
    ) -> CustomerRecord:
        """Create the customer on first sight; apply ``name`` and ``fields`` when given and new.

        This is what a token does for the customer it names, and what other services ask
        for (``customers.ensure``) when they store something for a customer. An archived
        customer is refused. A known customer with nothing new costs no query (it is served
        from memory); ``schema`` is only consulted when the customer is new or its fields
        change.
        """
        existing = await self._cached(workspace_id, customer_id)
        if existing is None:
            async with self._pool.acquire() as conn, conn.transaction():
                created = await self.create_in(
                    conn, workspace_id, schema, customer_id, name, fields or {}, source
                )
            if created is not None:
                return created
            existing = await self._cached(workspace_id, customer_id)
            assert existing is not None
        if existing.archived_at is not None:
            raise Forbidden("this customer is archived", code="customer_archived")
        new_name = name if name is not None else existing.name
        new_fields = fields if fields is not None else existing.fields
        if (new_name, new_fields) == (existing.name, existing.fields):
            return existing
        if fields is not None:
            require_valid(schema, new_fields, source)
        async with self._pool.acquire() as conn, conn.transaction():
            updated = await store.update_customer_if_changed(
                conn, workspace_id, customer_id, new_name, new_fields
            )
            if updated is not None:
                changes = _changes(existing, updated)
                await self._event(conn, c.CUSTOMER_UPDATED, workspace_id, customer_id, changes)
        self.forget(workspace_id, customer_id)
        return updated or existing

    async def ensure(self, req: c.CustomerEnsureRequest) -> c.Customer:
        """Make sure a customer exists for another service's record of them (services only)."""
        req.ctx.require_system()
        workspace_id = req.ctx.workspace()
        schema = None
        if await self._cached(workspace_id, req.id) is None:  # the schema matters when new
            async with self._pool.acquire() as conn:
                schema = await self._schema(conn, workspace_id)
        return customer_reply(await self.sync(workspace_id, schema, req.id))

    def _visible(self, ctx: Context, customer_id: str) -> UUID:
        """Return the workspace when the caller may see ``customer_id`` (else 404, not 403)."""
        workspace_id = ctx.workspace()
        if ctx.principal == "anonymous":
            raise Forbidden("this operation needs a token")
        if not ctx.sees(customer_id):
            raise NotFound("customer not found")
        return workspace_id

    async def list(self, req: c.CustomerListRequest) -> c.CustomerPage:
        """List the workspace's customers, ordered by id."""
        workspace_id = req.ctx.admin_workspace()
        after = decode_cursor(req.cursor)[0] if req.cursor else None
        async with self._pool.acquire() as conn:
            rows = await store.list_customers(
                conn,
                workspace_id,
                search=req.search or None,
                after=after,
                include_archived=req.include_archived,
                limit=req.limit + 1,
            )
        page, cursor = keyset_page(rows, req.limit, lambda r: (r.id,))
        return c.CustomerPage(items=[customer_reply(r) for r in page], cursor=cursor)

    async def create(self, req: c.CustomerCreateRequest) -> c.Customer:
        """Create a customer; an id that exists is a conflict."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            require_valid(await self._schema(conn, workspace_id), req.fields)
            created = await store.insert_customer_if_new(
                conn, workspace_id, req.id, req.name, req.fields
            )
            if created is None:
                raise Conflict(f"customer {req.id} exists", code="customer_exists")
            await self._event(conn, c.CUSTOMER_CREATED, workspace_id, req.id, [])
        return customer_reply(created, [])

    async def get(self, req: c.CustomerGetRequest) -> c.Customer:
        """Read one customer, with whether their fields still match the schema."""
        workspace_id = self._visible(req.ctx, req.id)
        async with self._pool.acquire() as conn:
            record = await store.select_customer(conn, workspace_id, req.id)
            if record is None:
                raise NotFound("customer not found")
            schema = await self._schema(conn, workspace_id)
        return customer_reply(record, field_errors(schema, record.fields))

    async def me(self, req: c.CustomerMeRequest) -> Kept[c.Customer]:
        """Read the calling customer."""
        record = await self._cached(req.ctx.workspace(), req.ctx.customer())
        if record is None:
            raise NotFound("customer not found")
        # Every change of a customer is an event the gateway hears: it may keep this.
        return Kept(customer_reply(record), KEEP_ME_SECONDS)

    async def patch(self, req: c.CustomerPatchRequest) -> c.Customer:
        """Merge fields (null deletes a key) and set the name when given."""
        workspace_id = req.ctx.admin_workspace()
        return await self._write(workspace_id, req.id, req, merge=True)

    async def put(self, req: c.CustomerPutRequest) -> c.Customer:
        """Replace name and fields."""
        workspace_id = req.ctx.admin_workspace()
        return await self._write(workspace_id, req.id, req, merge=False)

    async def _write(
        self,
        workspace_id: UUID,
        customer_id: str,
        req: c.CustomerPatchRequest | c.CustomerPutRequest,
        *,
        merge: bool,
    ) -> c.Customer:
        async with self._pool.acquire() as conn, conn.transaction():
            current = await store.select_customer(conn, workspace_id, customer_id, for_update=True)
            if current is None:
                raise NotFound("customer not found")
            if merge:
                name = req.name if "name" in req.model_fields_set else current.name
                fields = merge_fields(current.fields, req.fields or {})
            else:
                name, fields = req.name, dict(req.fields or {})
            require_valid(await self._schema(conn, workspace_id), fields)
            updated = await store.update_customer_if_changed(
                conn, workspace_id, customer_id, name, fields
            )
            if updated is None:
                return customer_reply(current, [])
            await self._event(
                conn, c.CUSTOMER_UPDATED, workspace_id, customer_id, _changes(current, updated)
            )
        self.forget(workspace_id, customer_id)
        return customer_reply(updated, [])

    async def archive(self, req: c.CustomerArchiveRequest) -> c.Customer:
        """Archive a customer; their tokens stop working in every gateway."""
        return await self._set_archived(req.ctx, req.id, archived=True)

    async def restore(self, req: c.CustomerRestoreRequest) -> c.Customer:
        """Restore an archived customer."""
        return await self._set_archived(req.ctx, req.id, archived=False)

    async def _set_archived(self, ctx: Context, customer_id: str, *, archived: bool) -> c.Customer:
        workspace_id = ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            changed = await store.set_archived(conn, workspace_id, customer_id, archived)
            if changed is None:
                current = await store.select_customer(conn, workspace_id, customer_id)
                if current is None:
                    raise NotFound("customer not found")
                return customer_reply(current)
            kind = c.CUSTOMER_ARCHIVED if archived else c.CUSTOMER_RESTORED
            await self._event(conn, kind, workspace_id, customer_id, ["archived"])
        self.forget(workspace_id, customer_id)
        return customer_reply(changed)
