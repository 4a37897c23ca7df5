"""Revisioned definitions: the handler steps actions and field mappings share.

An action and a field mapping are each a scope fixed when it is created and a
*definition* kept at every revision. Whichever it is, the steps here are the same:

* ``find``: the newest revision in the caller's (admin) workspace, or ``NotFound``;
* ``patch``: the given parts over the current definition, checked by the resource, written
  only over the revision the editor read (``revision_required`` when none is sent,
  ``revision_conflict`` with ``currentRevision`` when another edit came first);
* ``delete``: the definition with its revisions and instances, in one transaction;
* ``page``, ``revisions``, ``revision``: keyset pages by key and the history.

Each resource passes its store functions and the noun its errors use (``Store``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from libs.common.contracts.base import Context
from libs.common.db import Conn
from libs.common.errors import Conflict, InvalidInput, NotFound
from libs.common.paging import decode_cursor, keyset_page


class Record(Protocol):
    """What a stored definition row has: its scope key, workspace, revision and definition."""

    @property
    def workspace_id(self) -> UUID: ...

    @property
    def key(self) -> str: ...

    @property
    def revision(self) -> int: ...

    @property
    def definition(self) -> BaseModel: ...


class Paged(Protocol):
    """A list request: its cursor and page size."""

    @property
    def cursor(self) -> str | None: ...

    @property
    def limit(self) -> int: ...


RecordT = TypeVar("RecordT", bound=Record)
DefinitionT = TypeVar("DefinitionT", bound=BaseModel)
RevisionT = TypeVar("RevisionT")
ListT = TypeVar("ListT", bound=Paged)


@dataclass(frozen=True)
class Store(Generic[RecordT, DefinitionT, RevisionT, ListT]):
    """One resource's store functions, its definition model and the noun its errors use."""

    noun: str
    definition: type[DefinitionT]
    select: Callable[[Conn, UUID, str], Awaitable[RecordT | None]]
    update: Callable[[Conn, RecordT, int, DefinitionT], Awaitable[RecordT | None]]
    delete: Callable[[Conn, UUID, str], Awaitable[tuple[bool, int]]]
    select_page: Callable[[Conn, UUID, ListT, str | None, int], Awaitable[list[RecordT]]]
    select_revisions: Callable[[Conn, UUID, str], Awaitable[list[RevisionT]]]
    select_revision: Callable[[Conn, UUID, str, int], Awaitable[RevisionT | None]]


class Revisioned(Generic[RecordT, DefinitionT, RevisionT, ListT]):
    """The shared steps of a revisioned definition's handlers, over one resource's store."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        store: Store[RecordT, DefinitionT, RevisionT, ListT],
    ) -> None:
        self._pool = pool
        self._store = store

    async def find(self, ctx: Context, key: str) -> RecordT:
        """Return the definition at its newest revision; ``NotFound`` when there is none."""
        workspace_id = ctx.admin_workspace()
        async with self._pool.acquire() as conn:
            record = await self._store.select(conn, workspace_id, key)
        if record is None:
            raise NotFound(f"{self._store.noun} {key} not found")
        return record

    async def patch(
        self,
        ctx: Context,
        key: str,
        revision: int | None,
        given: dict[str, Any],
        check: Callable[[RecordT, DefinitionT], Awaitable[None]],
    ) -> RecordT:
        """Write the given parts as the next revision, only over ``revision``, once checked."""
        if revision is None:
            raise InvalidInput(
                "send the revision you edited (If-Match header or revision)",
                code="revision_required",
                details=[{"field": "revision"}],
            )
        current = await self.find(ctx, key)
        changed = current.definition.model_dump(by_alias=False) | given
        definition = self._store.definition.model_validate(changed)
        await check(current, definition)
        async with self._pool.acquire() as conn:
            updated = await self._store.update(conn, current, revision, definition)
            if updated is None:
                latest = await self._store.select(conn, current.workspace_id, current.key)
                now = latest.revision if latest else None
                raise Conflict(
                    f"revision {revision} is not the current one ({now}); reload and edit again",
                    code="revision_conflict",
                    details={"currentRevision": now},
                )
        return updated

    async def delete(self, ctx: Context, key: str) -> int:
        """Delete the definition with its revisions and instances; return how many instances."""
        workspace_id = ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            deleted, instances = await self._store.delete(conn, workspace_id, key)
        if not deleted:
            raise NotFound(f"{self._store.noun} {key} not found")
        return instances

    async def page(self, ctx: Context, req: ListT) -> tuple[list[RecordT], str | None]:
        """Return one page of definitions by key and the cursor of the next (or None)."""
        workspace_id = ctx.admin_workspace()
        after = decode_cursor(req.cursor)[0] if req.cursor else None
        async with self._pool.acquire() as conn:
            rows = await self._store.select_page(conn, workspace_id, req, after, req.limit + 1)
        return keyset_page(rows, req.limit, lambda r: (r.key,))

    async def revisions(self, ctx: Context, key: str) -> list[RevisionT]:
        """Return the definition's revisions, newest first."""
        current = await self.find(ctx, key)
        async with self._pool.acquire() as conn:
            return await self._store.select_revisions(conn, current.workspace_id, current.key)

    async def revision(self, ctx: Context, key: str, n: int) -> RevisionT:
        """Return one revision of the definition; ``NotFound`` when it has none ``n``."""
        current = await self.find(ctx, key)
        async with self._pool.acquire() as conn:
            found = await self._store.select_revision(conn, current.workspace_id, current.key, n)
        if found is None:
            raise NotFound(f"revision {n} not found")
        return found
