"""Answer ``tether.instances.data_sources.*``: define data sources, deploy them."""

from __future__ import annotations

import asyncpg

from libs.common.contracts import instances as c
from libs.common.errors import NotFound
from libs.common.rows import reply
from services.instances import elements
from services.instances.collection import check_collection
from services.instances.settings import InstancesOptions
from services.instances.store import definitions
from services.instances.store.definitions import DataSourceSpec


def _check(req: c.DataSourceCreateRequest | c.DataSourcePatchRequest) -> None:
    elements.check_paths(
        {
            "fields.itemsPath": req.fields.items_path if req.fields else None,
            "initialState.statePath": req.initial_state.state_path if req.initial_state else None,
        }
    )
    if isinstance(req, c.DataSourceCreateRequest):  # a patch is checked once merged
        check_collection(req.collection, req.sync)


class DataSources:
    """Data source handlers, one per operation."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], options: InstancesOptions) -> None:
        self._pool = pool
        self._options = options

    async def list(self, req: c.DataSourceListRequest) -> c.DataSourcePage:
        """List data sources."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            rows = await definitions.list_data_sources(conn, workspace_id, req.integration_key)
        return c.DataSourcePage(items=[reply(c.DataSource, r) for r in rows])

    async def create(self, req: c.DataSourceCreateRequest) -> c.DataSource:
        """Define a data source."""
        workspace_id = req.ctx.admin_workspace()
        _check(req)
        spec = DataSourceSpec(
            fields=req.fields,
            initial_state=req.initial_state,
            collection=req.collection,
            sync=req.sync,
        )
        async with self._pool.acquire() as conn:
            record = await definitions.insert_data_source(
                conn, workspace_id, req.integration_key, req.key, name=req.name, spec=spec
            )
        return reply(c.DataSource, record)

    async def get(self, req: c.DataSourceGetRequest) -> c.DataSource:
        """Read one data source."""
        select = definitions.select_data_source
        return reply(
            c.DataSource, await elements.find(self._pool, req.ctx, req.key, select, "data source")
        )

    async def patch(self, req: c.DataSourcePatchRequest) -> c.DataSource:
        """Change a data source; the next deployment applies it (``null`` removes a part)."""
        workspace_id = req.ctx.admin_workspace()
        _check(req)
        given = req.model_fields_set
        async with self._pool.acquire() as conn, conn.transaction():
            record = await definitions.select_data_source(conn, workspace_id, req.key)
            if record is None:
                raise NotFound(f"data source {req.key} not found")
            spec = DataSourceSpec(
                fields=req.fields if "fields" in given else record.fields,
                initial_state=req.initial_state
                if "initial_state" in given
                else record.initial_state,
                collection=req.collection if "collection" in given else record.collection,
                sync=req.sync if "sync" in given else record.sync,
            )
            check_collection(spec.collection, spec.sync)
            updated = await definitions.update_data_source(
                conn, record, name=req.name or record.name, spec=spec
            )
        return reply(c.DataSource, updated)

    async def delete(self, req: c.DataSourceDeleteRequest) -> c.Deleted:
        """Delete a data source."""
        return await elements.delete(self._pool, "data_sources", req.ctx, req.key)

    async def deploy(self, req: c.DeployElementRequest) -> c.FanOut:
        """Redeploy every connected connection of the data source's integration."""
        return await elements.redeploy(
            self._pool,
            req.ctx,
            req.key,
            definitions.select_data_source,
            self._options,
            "data source",
        )
