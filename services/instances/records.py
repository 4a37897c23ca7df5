"""Answer ``tether.instances.records.*``: the app's records, live, through the connection.

Each operation finds the data-source instance the caller may use (``sync_views.py``), builds
the request from the data source's collection spec (``collection.py``) and sends it through
the connections proxy (``collection_calls.py``, which maps the app's errors: 4xx → 422
``app_rejected``, 5xx or unreachable → 502 ``app_unavailable``, too slow → 504
``app_timeout``). Writes carry the caller's ``Idempotency-Key`` to the app. Nothing here
touches the synced copy: the next sync pass sees the change.
"""

from __future__ import annotations

from typing import Any, TypeVar

import asyncpg

from libs.common.contracts import instances as c
from libs.common.contracts.base import Request
from libs.common.errors import Conflict
from services.instances.collection import (
    AppRequest,
    decode_request,
    encode_request,
    first_page,
    next_page,
    page_items,
    record_id,
    record_of,
    record_request,
    updated_at,
)
from services.instances.collection_calls import AppAnswer, AppCaller
from services.instances.store.data_source_instances import DataSourceInstanceRecord
from services.instances.sync_views import collection_of, target_instance


def _record(collection: c.CollectionSpec, data: Any, fallback_id: str = "") -> c.DataRecord:
    return c.DataRecord(
        id=record_id(collection, data) or fallback_id,
        data=data,
        updated_at=updated_at(collection, data),
    )


S = TypeVar("S", bound=c.RecordCall)


def _spec(spec: S | None, operation: str, key: str) -> S:
    if spec is None:
        raise Conflict(
            f"data source {key} does not define how to {operation} a record",
            code="operation_not_defined",
        )
    return spec


class Records:
    """Live record handlers, one per operation."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], caller: AppCaller) -> None:
        self._pool = pool
        self._caller = caller

    async def _target(
        self, req: c.RecordTarget
    ) -> tuple[DataSourceInstanceRecord, c.CollectionSpec]:
        async with self._pool.acquire() as conn:
            instance = await target_instance(conn, req)
            _, collection = await collection_of(conn, instance)
        return instance, collection

    async def _send(
        self,
        req: Request,
        instance: DataSourceInstanceRecord,
        request: AppRequest,
        idempotency_key: str | None = None,
    ) -> AppAnswer:
        return await self._caller.send(
            instance.workspace_id,
            instance.connection_id,
            request,
            idempotency_key=idempotency_key,
            request_id=req.ctx.request_id,
        )

    async def list(self, req: c.RecordListRequest) -> c.DataRecordPage:
        """Return one page of the app's records and the cursor of the next (null: last)."""
        instance, collection = await self._target(req)
        request = decode_request(req.cursor) if req.cursor else first_page(collection.list, None)
        answer = await self._send(req, instance, request)
        items = page_items(collection.list, answer.data)
        following = next_page(collection.list, request, answer.data, answer.headers, items)
        return c.DataRecordPage(
            items=[_record(collection, item) for item in items],
            cursor=encode_request(following) if following is not None else None,
        )

    async def get(self, req: c.RecordGetRequest) -> c.DataRecord:
        """Read one record from the app."""
        instance, collection = await self._target(req)
        spec = _spec(collection.get, "read", instance.data_source_key)
        request = record_request(
            spec, spec.method, {"id": req.record_id, "record": None}, "collection.get"
        )
        answer = await self._send(req, instance, request)
        return _record(collection, record_of(spec, answer.data), req.record_id)

    async def create(self, req: c.RecordCreateRequest) -> c.DataRecord:
        """Create a record in the app; the reply is the record the app answered with."""
        instance, collection = await self._target(req)
        spec = _spec(collection.create, "create", instance.data_source_key)
        scope = {"id": None, "record": req.record}
        request = record_request(spec, spec.method, scope, "collection.create")
        answer = await self._send(req, instance, request, req.idempotency_key)
        created = record_of(spec, answer.data)
        return _record(collection, created if created is not None else req.record)

    async def update(self, req: c.RecordUpdateRequest) -> c.DataRecord:
        """Change a record in the app; the reply is what the app answered (or what was sent)."""
        instance, collection = await self._target(req)
        spec = _spec(collection.update, "update", instance.data_source_key)
        scope = {"id": req.record_id, "record": req.record}
        request = record_request(spec, spec.method, scope, "collection.update")
        answer = await self._send(req, instance, request, req.idempotency_key)
        changed = record_of(spec, answer.data)
        return _record(collection, changed if changed is not None else req.record, req.record_id)

    async def delete(self, req: c.RecordDeleteRequest) -> c.RecordDeleted:
        """Delete a record in the app."""
        instance, collection = await self._target(req)
        spec = _spec(collection.delete, "delete", instance.data_source_key)
        request = record_request(
            spec, spec.method, {"id": req.record_id, "record": None}, "collection.delete"
        )
        await self._send(req, instance, request, req.idempotency_key)
        return c.RecordDeleted(id=req.record_id, deleted=True)
