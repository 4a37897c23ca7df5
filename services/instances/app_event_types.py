"""Answer ``tether.instances.app_event_types.*``: define app-event types, deploy them."""

from __future__ import annotations

import asyncpg

from libs.common.contracts import instances as c
from libs.common.crypto import Keyring
from libs.common.errors import InvalidInput, NotFound
from libs.common.rows import reply
from services.instances import elements
from services.instances.settings import InstancesOptions
from services.instances.store import definitions
from services.instances.store.definitions import AppEventTypeSpec

# The request fields that make up the stored spec (everything but key, name, secret).
SPEC_FIELDS = frozenset(AppEventTypeSpec.model_fields)


def _check(req: c.AppEventTypeCreateRequest | c.AppEventTypePatchRequest) -> None:
    elements.check_paths(
        {
            "subscribe.idPath": req.subscribe.id_path if req.subscribe else None,
            "eventsPath": req.events_path,
            "lookup.itemsPath": req.lookup.items_path if req.lookup else None,
            "recordEvent.idPath": req.record_event.id_path if req.record_event else None,
            "recordEvent.recordPath": req.record_event.record_path if req.record_event else None,
        }
    )
    static = req.signature is not None and req.signature.secret == "static"
    if static and not req.static_secret and isinstance(req, c.AppEventTypeCreateRequest):
        raise InvalidInput(
            "a static signature needs staticSecret", details=[{"field": "staticSecret"}]
        )


class AppEventTypes:
    """App-event type handlers, one per operation."""

    def __init__(
        self, pool: asyncpg.Pool[asyncpg.Record], keyring: Keyring, options: InstancesOptions
    ) -> None:
        self._pool = pool
        self._keyring = keyring
        self._options = options

    async def list(self, req: c.AppEventTypeListRequest) -> c.AppEventTypePage:
        """List app-event types."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            rows = await definitions.list_app_event_types(conn, workspace_id, req.integration_key)
        return c.AppEventTypePage(items=[reply(c.AppEventType, r) for r in rows])

    async def create(self, req: c.AppEventTypeCreateRequest) -> c.AppEventType:
        """Define an app-event type."""
        workspace_id = req.ctx.admin_workspace()
        _check(req)
        spec = AppEventTypeSpec.model_validate({n: getattr(req, n) for n in SPEC_FIELDS})
        secret = elements.seal_static_secret(
            self._keyring, workspace_id, req.key, req.static_secret
        )
        async with self._pool.acquire() as conn:
            record = await definitions.insert_app_event_type(
                conn,
                workspace_id,
                req.integration_key,
                req.key,
                name=req.name,
                spec=spec,
                secret=secret,
            )
        return reply(c.AppEventType, record)

    async def get(self, req: c.AppEventTypeGetRequest) -> c.AppEventType:
        """Read one app-event type."""
        select = definitions.select_app_event_type
        return reply(
            c.AppEventType,
            await elements.find(self._pool, req.ctx, req.key, select, "app-event type"),
        )

    async def patch(self, req: c.AppEventTypePatchRequest) -> c.AppEventType:
        """Change an app-event type; the next deployment applies it.

        A part given as ``null`` keeps its value (as leaving it out does).
        """
        workspace_id = req.ctx.admin_workspace()
        _check(req)
        given = req.model_fields_set
        changes = {n: getattr(req, n) for n in SPEC_FIELDS & given if getattr(req, n) is not None}
        async with self._pool.acquire() as conn, conn.transaction():
            # Locked: the row is written back whole, so nothing may change it in between
            # (another patch, or a master-key re-seal of the static secret).
            record = await definitions.select_app_event_type(
                conn, workspace_id, req.key, for_update=True
            )
            if record is None:
                raise NotFound(f"app-event type {req.key} not found")
            secret = (
                elements.seal_static_secret(self._keyring, workspace_id, req.key, req.static_secret)
                if "static_secret" in given
                else record.static_secret_sealed
            )
            updated = await definitions.update_app_event_type(
                conn,
                record,
                name=req.name or record.name,
                spec=AppEventTypeSpec.model_validate(
                    {**record.spec.model_dump(by_alias=False), **changes}
                ),
                secret=secret,
            )
        return reply(c.AppEventType, updated)

    async def delete(self, req: c.AppEventTypeDeleteRequest) -> c.Deleted:
        """Delete an app-event type; deploying removes its subscriptions."""
        return await elements.delete(self._pool, "app_event_types", req.ctx, req.key)

    async def deploy(self, req: c.DeployElementRequest) -> c.FanOut:
        """Redeploy every connected connection of the app-event type's integration."""
        return await elements.redeploy(
            self._pool,
            req.ctx,
            req.key,
            definitions.select_app_event_type,
            self._options,
            "app-event type",
        )
