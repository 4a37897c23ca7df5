"""Answer ``tether.instances.field_mapping_instances.*``: read, customise, upgrade, reset, run.

A field-mapping instance is a field mapping on one connection, built by deployments
(``field_mapping_deploy.py``) on the connection's data-source ``fieldsSchema``: a base
revision, a customisation (``field_mapping_customization.py`` over the one mechanism in
``libs/common/customization.py``), the schema it follows and what broke when a mapped
field disappeared. Who may do what: admins anything; a customer sees, customises (by
field choice) and runs only their own instances.

Running maps one record: ``import`` evaluates each effective ``importValue`` expression
over the external record and converts the value to its app field's type; ``export`` the
``exportValue`` expressions over the app record, to the external fields' types. A broken
instance does not run (409 ``field_mapping_broken`` naming the field).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from libs.common.bus import Bus
from libs.common.contracts import field_mappings as c
from libs.common.contracts.base import Context
from libs.common.customization import customer_customization
from libs.common.db import Conn
from libs.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from libs.common.paging import keyset_page, uuid_after
from services.instances import field_mapping_customization as custom
from services.instances import field_mapping_rules as rules
from services.instances.deployments import visible_connection
from services.instances.store import field_mappings as store
from services.instances.store.field_mappings import FieldMappingInstanceRecord, FieldMappingRecord


async def base_definition(
    conn: Conn, mapping: FieldMappingRecord, revision: int
) -> c.FieldMappingDefinition:
    """Return the mapping's definition at ``revision``."""
    if revision == mapping.revision:
        return mapping.definition
    stored = await store.select_revision(conn, mapping.workspace_id, mapping.key, revision)
    if stored is None:
        raise NotFound(f"revision {revision} of field mapping {mapping.key} not found")
    return stored.definition


def view(
    record: FieldMappingInstanceRecord,
    mapping: FieldMappingRecord,
    base: c.FieldMappingDefinition,
) -> c.FieldMappingInstance:
    """Return an instance with its effective mapping and, per app field, what may feed it."""
    import_value, export_value = custom.apply(base, record.customization)
    external = rules.external_fields(record.fields_schema)
    customized = custom.customized_fields(record.customization)
    fields = {
        name: c.AppField(
            type=kind,
            source=rules.reference(import_value.get(name)),
            value=import_value.get(name),
            customized=name in customized,
            options=[f.name for f in external if rules.compatible(f.type, kind)],
        )
        for name, kind in rules.fields_of(base.app_schema).items()
    }
    return c.FieldMappingInstance(
        **record.model_dump(exclude={"workspace_id", "archived_at", "fields_schema", "problems"}),
        latest_revision=mapping.revision,
        outdated=record.base_revision < mapping.revision,
        app_schema=base.app_schema,
        import_value=import_value,
        export_value=export_value,
        fields=fields,
        external_fields=external,
        broken=bool(record.problems),
        problems=record.problems,
        archived=record.archived_at is not None,
    )


def run_mapping(
    record: FieldMappingInstanceRecord,
    base: c.FieldMappingDefinition,
    direction: c.Direction,
    record_in: dict[str, Any],
) -> dict[str, Any]:
    """Map one record with an instance (409 when it is broken or archived)."""
    if record.archived_at is not None:
        raise Conflict("the field-mapping instance is archived", code="field_mapping_archived")
    if record.problems:
        first = record.problems[0]
        raise Conflict(
            f"the field mapping is broken: {first.message}",
            code="field_mapping_broken",
            details=[p.model_dump(mode="json") for p in record.problems],
        )
    import_value, export_value = custom.apply(base, record.customization)
    if direction == "import":
        types = rules.fields_of(base.app_schema)
        return rules.map_record(import_value, types, record_in, "importValue")
    types = rules.fields_of(record.fields_schema)
    return rules.map_record(export_value, types, record_in, "exportValue")


class FieldMappingInstances:
    """Field-mapping instance handlers, one per operation."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], bus: Bus) -> None:
        self._pool = pool
        self._bus = bus

    async def _load(
        self, conn: Conn, ctx: Context, instance_id: UUID
    ) -> tuple[FieldMappingInstanceRecord, FieldMappingRecord]:
        workspace_id = ctx.workspace()
        if ctx.principal == "anonymous":
            raise Forbidden("this operation needs a token")
        record = await store.select_instance(conn, workspace_id, instance_id)
        if record is None or not ctx.sees(record.customer_id):
            raise NotFound("field-mapping instance not found")
        mapping = await store.select_mapping(conn, workspace_id, record.field_mapping_key)
        if mapping is None:  # deleted meanwhile: its instances go with it
            raise NotFound("field-mapping instance not found")
        return record, mapping

    async def _view(
        self, conn: Conn, record: FieldMappingInstanceRecord, mapping: FieldMappingRecord
    ) -> c.FieldMappingInstance:
        return view(record, mapping, await base_definition(conn, mapping, record.base_revision))

    async def get(self, req: c.FieldMappingInstanceGetRequest) -> c.FieldMappingInstance:
        """Read an instance with its effective mapping and each app field's options."""
        async with self._pool.acquire() as conn:
            record, mapping = await self._load(conn, req.ctx, req.id)
            return await self._view(conn, record, mapping)

    async def list(self, req: c.FieldMappingInstanceListRequest) -> c.FieldMappingInstancePage:
        """List instances by id (a customer's own)."""
        workspace_id = req.ctx.workspace()
        customer_id, visible = req.ctx.customer_filter(req.customer_id)
        if not visible:
            return c.FieldMappingInstancePage(items=[], cursor=None)
        async with self._pool.acquire() as conn:
            rows = await store.list_instances(
                conn,
                workspace_id,
                connection_id=req.connection_id,
                key=req.field_mapping_key,
                customer_id=customer_id,
                after=uuid_after(req.cursor),
                limit=req.limit + 1,
            )
            page, cursor = keyset_page(rows, req.limit, lambda r: (r.id,))
            mappings = {
                key: await store.select_mapping(conn, workspace_id, key)
                for key in {r.field_mapping_key for r in page}
            }
            items = [
                await self._view(conn, r, found)
                for r in page
                if (found := mappings[r.field_mapping_key]) is not None
            ]
        return c.FieldMappingInstancePage(items=items, cursor=cursor)

    async def patch(self, req: c.FieldMappingInstancePatchRequest) -> c.FieldMappingInstance:
        """Customise by field choice (customers, admins) or by a whole patch (admins).

        Only the entries this request changes are checked against both schemas (422
        ``invalid_mapping`` naming each); what stays broken stays listed in ``problems``.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            record, mapping = await self._load(conn, req.ctx, req.id)
            base = await base_definition(conn, mapping, record.base_revision)
            customization = record.customization
            if req.customization is not None:
                if req.ctx.principal == "customer":
                    customer_customization(customization, req.customization)  # refuses: 403
                customization = req.customization
            if req.fields:
                app = rules.fields_of(base.app_schema)
                unknown = [name for name in req.fields if name not in app]
                if unknown:
                    raise InvalidInput(
                        f"fields.{unknown[0]}: {unknown[0]} is not a field of appSchema",
                        code="invalid_mapping",
                        details=[
                            {"field": f"fields.{n}", "message": f"{n} is not a field of appSchema"}
                            for n in unknown
                        ],
                    )
                customization = custom.choose(base, customization, req.fields)
            changed = custom.changed_entries(record.customization, customization)
            custom.check(
                base,
                customization,
                changed,
                record.fields_schema,
                by_field=req.customization is None,
            )
            problems = custom.broken(customization, record.fields_schema)
            updated = await store.update_instance(
                conn, record, customization, record.base_revision, problems
            )
            return await self._view(conn, updated, mapping)

    async def upgrade(self, req: c.FieldMappingInstanceUpgradeRequest) -> c.FieldMappingInstance:
        """Carry the customisation onto the newest revision, or refuse listing the conflicts."""
        req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            record, mapping = await self._load(conn, req.ctx, req.id)
            if record.base_revision == mapping.revision:
                return await self._view(conn, record, mapping)
            old = await base_definition(conn, mapping, record.base_revision)
            found = custom.conflicts(old, mapping.definition, record.customization)
            if not found:
                changed = list(custom.entries(record.customization))
                try:
                    custom.check(
                        mapping.definition,
                        record.customization,
                        changed,
                        record.fields_schema,
                        by_field=False,
                    )
                except InvalidInput as exc:
                    found = [
                        {"path": d.get("field", ""), "reason": d.get("message", "")}
                        for d in exc.details or []
                    ]
            if found:
                raise Conflict(
                    f"the customisation conflicts with revision {mapping.revision}"
                    f" at {found[0]['path']}",
                    code="upgrade_conflict",
                    details=found,
                )
            updated = await store.update_instance(
                conn, record, record.customization, mapping.revision, record.problems
            )
            return await self._view(conn, updated, mapping)

    async def reset(self, req: c.FieldMappingInstanceResetRequest) -> c.FieldMappingInstance:
        """Drop the customisation and move to the newest revision (nothing is broken then)."""
        req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            record, mapping = await self._load(conn, req.ctx, req.id)
            updated = await store.update_instance(conn, record, {}, mapping.revision, [])
            return await self._view(conn, updated, mapping)

    async def run(self, req: c.FieldMappingInstanceRunRequest) -> c.FieldMappingRunResult:
        """Map one record with an instance (its owner or an admin)."""
        async with self._pool.acquire() as conn:
            record, mapping = await self._load(conn, req.ctx, req.id)
            base = await base_definition(conn, mapping, record.base_revision)
        return c.FieldMappingRunResult(output=run_mapping(record, base, req.direction, req.input))

    async def run_on_connection(
        self, req: c.FieldMappingRunOnConnectionRequest
    ) -> c.FieldMappingRunResult:
        """Map one record with a connection's instance of a field mapping (services only)."""
        req.ctx.require_system()
        known = await visible_connection(self._pool, self._bus, req.ctx, req.connection_id)
        async with self._pool.acquire() as conn:
            workspace_id = known.workspace_id
            record = await store.select_connection_instance(
                conn, workspace_id, known.id, req.field_mapping_key
            )
            mapping = await store.select_mapping(conn, workspace_id, req.field_mapping_key)
            if record is None or mapping is None:
                raise NotFound(
                    f"the connection has no instance of field mapping {req.field_mapping_key}",
                    code="field_mapping_instance_not_found",
                )
            base = await base_definition(conn, mapping, record.base_revision)
        return c.FieldMappingRunResult(output=run_mapping(record, base, req.direction, req.input))
