"""Answer element-definition operations: app-event types and data sources, and fan-outs."""

from __future__ import annotations

from typing import Any

import asyncpg
import jmespath
import jmespath.exceptions

from libs.common.contracts import instances as c
from libs.common.crypto import Keyring, associated_data
from libs.common.errors import InvalidInput, NotFound
from services.instances import planner, store

STATIC_SECRET_PURPOSE = "app-event-static-secret"
_AET_SPEC_FIELDS = (
    "subscribe",
    "unsubscribe",
    "lookup",
    "signature",
    "events_path",
    "delivery_id_header",
)


def _check_paths(**expressions: str | None) -> None:
    """Refuse a JMESPath expression that does not compile, naming its field."""
    for field, expression in expressions.items():
        if expression is None:
            continue
        try:
            jmespath.compile(expression)
        except jmespath.exceptions.JMESPathError as exc:
            raise InvalidInput(
                f"{field} is not a valid JMESPath expression: {exc}", details=[{"field": field}]
            ) from exc


def _check_data_source(req: c.DataSourceCreateRequest | c.DataSourcePatchRequest) -> None:
    _check_paths(
        **{
            "fields.itemsPath": req.fields.items_path if req.fields else None,
            "initialState.statePath": req.initial_state.state_path if req.initial_state else None,
        }
    )


def _aet_spec(values: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for name in _AET_SPEC_FIELDS:
        value = values.get(name)
        if value is None:
            continue
        camel = {"events_path": "eventsPath", "delivery_id_header": "deliveryIdHeader"}.get(
            name, name
        )
        spec[camel] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    return spec


class Elements:
    """Definition handlers."""

    def __init__(self, pool: asyncpg.Pool[Any], keyring: Keyring) -> None:
        self._pool = pool
        self._keyring = keyring

    # -- app-event types -------------------------------------------------------------------

    async def list_app_event_types(self, req: c.AppEventTypeListRequest) -> c.AppEventTypePage:
        """List app-event types."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            rows = await store.list_app_event_types(conn, workspace_id, req.integration_key)
        return c.AppEventTypePage(items=[r.public() for r in rows])

    async def create_app_event_type(self, req: c.AppEventTypeCreateRequest) -> c.AppEventType:
        """Define an app-event type."""
        workspace_id = req.ctx.admin_workspace()
        self._check(req)
        spec = _aet_spec({name: getattr(req, name) for name in _AET_SPEC_FIELDS})
        async with self._pool.acquire() as conn:
            record = await store.insert_app_event_type(
                conn, workspace_id, req.key, req.integration_key, req.name, spec,
                self._seal(workspace_id, req.key, req.static_secret),
            )  # fmt: skip
        return record.public()

    async def get_app_event_type(self, req: c.AppEventTypeGetRequest) -> c.AppEventType:
        """Read one app-event type."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            record = await store.select_app_event_type(conn, workspace_id, req.key)
        if record is None:
            raise NotFound(f"app-event type {req.key} not found")
        return record.public()

    async def patch_app_event_type(self, req: c.AppEventTypePatchRequest) -> c.AppEventType:
        """Change an app-event type; the next deployment applies it."""
        workspace_id = req.ctx.admin_workspace()
        self._check(req)
        async with self._pool.acquire() as conn, conn.transaction():
            # Locked: the row is written back whole, so nothing may change it in between
            # (another patch, or a master-key re-seal of the static secret).
            record = await store.select_app_event_type(conn, workspace_id, req.key, for_update=True)
            if record is None:
                raise NotFound(f"app-event type {req.key} not found")
            given = req.model_fields_set
            spec = {
                **record.spec,
                **_aet_spec({n: getattr(req, n) for n in _AET_SPEC_FIELDS if n in given}),
            }
            secret = (
                self._seal(workspace_id, req.key, req.static_secret)
                if "static_secret" in given
                else record.static_secret_sealed
            )
            updated = await store.update_app_event_type(
                conn, record, req.name or record.name, spec, secret
            )
        return updated.public()

    async def delete_app_event_type(self, req: c.AppEventTypeDeleteRequest) -> c.Deleted:
        """Delete an app-event type; deploying removes its subscriptions."""
        return await self._delete("app_event_types", req.ctx, req.key)

    def _check(self, req: c.AppEventTypeCreateRequest | c.AppEventTypePatchRequest) -> None:
        _check_paths(
            **{
                "subscribe.idPath": req.subscribe.id_path if req.subscribe else None,
                "eventsPath": req.events_path,
                "lookup.itemsPath": req.lookup.items_path if req.lookup else None,
            }
        )
        static = req.signature is not None and req.signature.secret == "static"
        if static and not req.static_secret and isinstance(req, c.AppEventTypeCreateRequest):
            raise InvalidInput(
                "a static signature needs staticSecret", details=[{"field": "staticSecret"}]
            )

    def _seal(self, workspace_id: Any, key: str, secret: str | None) -> str | None:
        if not secret:
            return None
        return self._keyring.encrypt(
            secret.encode(), associated_data(workspace_id, key, STATIC_SECRET_PURPOSE)
        )

    # -- data sources ----------------------------------------------------------------------

    async def list_data_sources(self, req: c.DataSourceListRequest) -> c.DataSourcePage:
        """List data sources."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            rows = await store.list_data_sources(conn, workspace_id, req.integration_key)
        return c.DataSourcePage(items=[r.public() for r in rows])

    async def create_data_source(self, req: c.DataSourceCreateRequest) -> c.DataSource:
        """Define a data source."""
        workspace_id = req.ctx.admin_workspace()
        _check_data_source(req)
        spec = {
            "fields": req.fields.model_dump(mode="json") if req.fields else None,
            "initialState": req.initial_state.model_dump(mode="json")
            if req.initial_state
            else None,
        }
        async with self._pool.acquire() as conn:
            record = await store.insert_data_source(
                conn, workspace_id, req.key, req.integration_key, req.name, spec
            )
        return record.public()

    async def get_data_source(self, req: c.DataSourceGetRequest) -> c.DataSource:
        """Read one data source."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            record = await store.select_data_source(conn, workspace_id, req.key)
        if record is None:
            raise NotFound(f"data source {req.key} not found")
        return record.public()

    async def patch_data_source(self, req: c.DataSourcePatchRequest) -> c.DataSource:
        """Change a data source; the next deployment applies it."""
        workspace_id = req.ctx.admin_workspace()
        _check_data_source(req)
        async with self._pool.acquire() as conn, conn.transaction():
            record = await store.select_data_source(conn, workspace_id, req.key)
            if record is None:
                raise NotFound(f"data source {req.key} not found")
            spec = dict(record.spec)
            if "fields" in req.model_fields_set:
                spec["fields"] = req.fields.model_dump(mode="json") if req.fields else None
            if "initial_state" in req.model_fields_set:
                spec["initialState"] = (
                    req.initial_state.model_dump(mode="json") if req.initial_state else None
                )
            updated = await store.update_data_source(conn, record, req.name or record.name, spec)
        return updated.public()

    async def delete_data_source(self, req: c.DataSourceDeleteRequest) -> c.Deleted:
        """Delete a data source."""
        return await self._delete("data_sources", req.ctx, req.key)

    async def _delete(self, table: str, ctx: Any, key: str) -> c.Deleted:
        workspace_id = ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            if not await store.delete_element(conn, table, workspace_id, key):
                raise NotFound(f"{key} not found")
        return c.Deleted(deleted=True)

    # -- fan-outs --------------------------------------------------------------------------

    async def deploy_app_event_type(self, req: c.DeployElementRequest) -> c.FanOut:
        """Redeploy every connected connection of the app-event type's integration."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            record = await store.select_app_event_type(conn, workspace_id, req.key)
        if record is None:
            raise NotFound(f"app-event type {req.key} not found")
        return await self.fan_out(workspace_id, record.integration_key, f"definition:{req.key}")

    async def deploy_data_source(self, req: c.DeployElementRequest) -> c.FanOut:
        """Redeploy every connected connection of the data source's integration."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            record = await store.select_data_source(conn, workspace_id, req.key)
        if record is None:
            raise NotFound(f"data source {req.key} not found")
        return await self.fan_out(workspace_id, record.integration_key, f"definition:{req.key}")

    async def fan_out(self, workspace_id: Any, integration_key: str, reason: str) -> c.FanOut:
        """Start a deployment for every connected connection of an integration (one transaction)."""
        async with self._pool.acquire() as conn, conn.transaction():
            connections = await store.list_connected(conn, workspace_id, integration_key)
            for known in connections:
                await planner.start(conn, known, reason)
        return c.FanOut(deployments=len(connections), integration_key=integration_key)
