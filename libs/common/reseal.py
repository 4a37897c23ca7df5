"""Re-seal stored values under the active master key: online, in short batches, resumable.

Every service that keeps sealed values lists its sealed columns (``services/<svc>/sealed.py``)
and serves :func:`keys_endpoints`: ``tether.<svc>.keys.status`` (values per master key)
and ``tether.<svc>.keys.reseal`` (move a slice onto the active key). Both are for the
``system`` principal only. ``tether keys …`` drives them.

How a new master key reaches every replica (services read ``TETHER_MASTER_KEYS`` once,
at start; a restart is the only reload, so no key ever travels over the bus):

1. add the new key to every replica's ``TETHER_MASTER_KEYS`` *second* — it opens, it
   does not seal — and roll the replicas;
2. move it *first* — now it seals — and roll again. Every replica could open it before
   any replica sealed with it, so a rolling restart never leaves a value unreadable;
3. re-seal the rest: ``tether keys reseal`` calls ``keys.reseal`` until no row of any
   sealed column is under another key (``tether keys status`` shows the counts);
4. remove the old key and roll.

``tether keys rotate`` runs all four against the ``make run`` stack (it rewrites
``.tether/master.keys`` and has ``tether up`` roll its services, new process before old).

What re-sealing guarantees:

* **Online.** A batch is one short transaction: one ``SELECT … FOR UPDATE SKIP LOCKED``
  of at most ``batch_size`` rows, then one ``UPDATE``. A row another transaction holds
  (a token refresh waiting on its provider) is skipped, never waited for; the next sweep
  takes it. Live traffic waits at most one batch for a row of that batch.
* **Nothing lost or reverted.** Only the data key is re-wrapped
  (:meth:`~libs.common.crypto.Keyring.rotate`): the value's ciphertext stays, so no stale
  plaintext can be written back. The ``UPDATE`` applies only where the column still
  holds the ciphertext that was read (under the row lock it cannot have changed; the
  condition keeps the promise should the locking ever change). A write that lands after
  the batch replaces the re-sealed value with its own, sealed under the new key (step 2).
* **No side effects.** ``version`` and ``updated_at`` stay: the plaintext did not change,
  so a refresh's optimistic version check and every cache stay valid. No event is emitted.
* **Resumable.** Progress is the data itself: a row is done when its envelope names the
  active key. A crash loses at most the batch in flight (rolled back); running again
  continues (a cursor only saves re-reading finished rows); two sweeps at once are safe.
* **Honest.** A value that cannot be opened (an unknown key, a damaged envelope) is left
  as it is, counted as ``failed`` and logged by its primary key (never its content); it keeps
  the old key from looking retirable in ``keys.status``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import structlog

from libs.common.bus import Endpoint, endpoint
from libs.common.contracts.keys import (
    KeysResealed,
    KeysResealRequest,
    KeysStatus,
    KeysStatusRequest,
    ResealCursor,
    SealedColumnStatus,
    keys_operations,
)
from libs.common.crypto import DecryptionFailed, Keyring
from libs.common.db import Conn
from libs.common.errors import Conflict, InvalidInput

log = structlog.get_logger(__name__)


class Row(Protocol):
    """A row's columns by name (an asyncpg ``Record``, a dict)."""

    def __getitem__(self, name: str, /) -> Any: ...


@dataclass(frozen=True)
class SealedColumn:
    """One column of sealed values, and how to rebuild a row's associated data."""

    table: str
    column: str
    key: tuple[tuple[str, str], ...]
    """The primary key's (column, SQL type) pairs, in its index order."""
    aad: Callable[[Row], bytes]
    """The associated data a row's value was sealed with, from the row's columns."""
    reads: tuple[str, ...] = ()
    """Further columns ``aad`` needs (beyond the key)."""

    @property
    def name(self) -> str:
        """Return ``table.column``."""
        return f"{self.table}.{self.column}"

    @property
    def _key_list(self) -> str:
        return ", ".join(name for name, _ in self.key)

    def select_sql(self, *, first: bool) -> str:
        """Return the batch query: rows not under key $1, after the cursor ($3…), locked."""
        columns = ", ".join(dict.fromkeys([*(name for name, _ in self.key), *self.reads]))
        after = ""
        if not first:
            params = ", ".join(f"${i + 3}::{kind}" for i, (_, kind) in enumerate(self.key))
            after = f"\n  AND ({self._key_list}) > ({params})"
        return f"""
SELECT {columns}, {self.column} AS sealed FROM {self.table}
WHERE {self.column} IS NOT NULL AND split_part({self.column}, '.', 2) <> $1{after}
ORDER BY {self._key_list}
LIMIT $2
FOR UPDATE SKIP LOCKED
"""

    def update_sql(self) -> str:
        """Return the batch write: each key's value, only where it is still the one read."""
        arrays = ", ".join(f"${i + 1}::{kind}[]" for i, (_, kind) in enumerate(self.key))
        n = len(self.key)
        names = ", ".join(f"k{i}" for i in range(n))
        match = " AND ".join(f"t.{name} = v.k{i}" for i, (name, _) in enumerate(self.key))
        return f"""
UPDATE {self.table} AS t SET {self.column} = v.resealed
FROM unnest({arrays}, ${n + 1}::text[], ${n + 2}::text[]) AS v({names}, sealed, resealed)
WHERE {match} AND t.{self.column} = v.sealed
"""

    def count_sql(self) -> str:
        """Return the rows per master key id."""
        return f"""
SELECT split_part({self.column}, '.', 2) AS kid, count(*) AS n FROM {self.table}
WHERE {self.column} IS NOT NULL GROUP BY 1 ORDER BY 1
"""


@dataclass(frozen=True)
class Batch:
    """What one batch did."""

    resealed: int
    failed: int
    last: tuple[Any, ...] | None
    """The key of the last row read (None when none was)."""
    exhausted: bool
    """The sweep reached the end of the column."""


async def reseal_batch(
    conn: Conn,
    keyring: Keyring,
    column: SealedColumn,
    after: Sequence[Any] | None,
    limit: int,
) -> Batch:
    """Re-seal up to ``limit`` rows after ``after`` in one short transaction."""
    args: list[Any] = [keyring.active_kid, limit]
    if after is not None:
        args.extend(after)
    async with conn.transaction():
        rows = await conn.fetch(column.select_sql(first=after is None), *args)
        keys: list[list[Any]] = [[] for _ in column.key]
        sealed: list[str] = []
        resealed: list[str] = []
        failed = 0
        for row in rows:
            try:
                new = keyring.rotate(row["sealed"], column.aad(row))
            except DecryptionFailed as exc:
                failed += 1
                log.warning(
                    "reseal_row_failed",
                    column=column.name,
                    row=[str(row[name]) for name, _ in column.key],
                    error=exc.message,
                )
                continue
            for values, (name, _) in zip(keys, column.key, strict=True):
                values.append(row[name])
            sealed.append(row["sealed"])
            resealed.append(new)
        written = 0
        if resealed:
            status = await conn.execute(column.update_sql(), *keys, sealed, resealed)
            written = int(status.split()[-1])
    last = tuple(rows[-1][name] for name, _ in column.key) if rows else None
    return Batch(written, failed, last, exhausted=len(rows) < limit)


async def column_status(conn: Conn, keyring: Keyring, column: SealedColumn) -> SealedColumnStatus:
    """Count one column's rows per master key id."""
    by_kid = {row["kid"]: int(row["n"]) for row in await conn.fetch(column.count_sql())}
    return SealedColumnStatus(
        table=column.table,
        column=column.column,
        total=sum(by_kid.values()),
        done=by_kid.get(keyring.active_kid, 0),
        by_kid=by_kid,
    )


@dataclass(frozen=True)
class Sweep:
    """What a bounded run of batches did, and where the next one continues."""

    resealed: int
    failed: int
    cursor: ResealCursor | None


async def reseal(
    pool: asyncpg.Pool[Any],
    keyring: Keyring,
    columns: Sequence[SealedColumn],
    *,
    cursor: ResealCursor | None = None,
    batch_size: int = 500,
    budget: float = 2.0,
    max_batches: int | None = None,
) -> Sweep:
    """Run batches from ``cursor`` until every column is swept or ``budget`` seconds passed.

    Each batch takes its own pooled connection, so nothing is held between batches.
    """
    index, after = _position(columns, cursor)
    started = time.monotonic()
    resealed = failed = batches = 0
    while index < len(columns):
        column = columns[index]
        async with pool.acquire() as conn:
            batch = await reseal_batch(conn, keyring, column, after, batch_size)
        resealed += batch.resealed
        failed += batch.failed
        batches += 1
        if batch.exhausted:
            index, after = index + 1, None
        else:
            after = batch.last
        if time.monotonic() - started >= budget or batches == max_batches:
            break
    if index >= len(columns):
        return Sweep(resealed, failed, None)
    return Sweep(
        resealed,
        failed,
        ResealCursor(
            column=columns[index].name, after=[str(v) for v in after] if after is not None else []
        ),
    )


def _position(
    columns: Sequence[SealedColumn], cursor: ResealCursor | None
) -> tuple[int, tuple[Any, ...] | None]:
    """Return the column index and key a cursor points at."""
    if cursor is None:
        return 0, None
    names = [c.name for c in columns]
    if cursor.column not in names:
        raise InvalidInput(f"no sealed column {cursor.column}", details=[{"field": "cursor"}])
    index = names.index(cursor.column)
    if not cursor.after:
        return index, None
    if len(cursor.after) != len(columns[index].key):
        raise InvalidInput(
            "the cursor does not fit the column's key", details=[{"field": "cursor"}]
        )
    return index, tuple(cursor.after)


def keys_endpoints(
    service: str, pool: asyncpg.Pool[Any], keyring: Keyring, columns: Sequence[SealedColumn]
) -> list[Endpoint[Any, Any]]:
    """Return ``tether.<service>.keys.status`` and ``.keys.reseal`` over ``columns``."""
    status_op, reseal_op = keys_operations(service)

    async def statuses() -> list[SealedColumnStatus]:
        async with pool.acquire() as conn:
            return [await column_status(conn, keyring, column) for column in columns]

    async def status(req: KeysStatusRequest) -> KeysStatus:
        req.ctx.require_system()
        return KeysStatus(
            service=service,
            active_kid=keyring.active_kid,
            kids=list(keyring.kids),
            columns=await statuses(),
        )

    async def reseal_slice(req: KeysResealRequest) -> KeysResealed:
        req.ctx.require_system()
        if req.kid is not None and req.kid != keyring.active_kid:
            raise Conflict(
                f"this {service} replica seals under key {keyring.active_kid}, not {req.kid}: "
                "roll every replica onto the new TETHER_MASTER_KEYS first",
                code="master_key_not_active",
            )
        sweep = await reseal(
            pool,
            keyring,
            columns,
            cursor=req.cursor,
            batch_size=req.batch_size,
            budget=req.budget,
        )
        progress = await statuses()
        log.info(
            "keys_resealed",
            kid=keyring.active_kid,
            resealed=sweep.resealed,
            failed=sweep.failed,
            remaining=sum(c.total - c.done for c in progress),
            swept=sweep.cursor is None,
        )
        return KeysResealed(
            service=service,
            active_kid=keyring.active_kid,
            resealed=sweep.resealed,
            failed=sweep.failed,
            cursor=sweep.cursor,
            columns=progress,
        )

    return [endpoint(status_op, status), endpoint(reseal_op, reseal_slice)]
