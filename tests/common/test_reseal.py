"""Re-sealing under a new master key: batches, resumption, live writes, rows it cannot open."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from structlog.testing import capture_logs

from libs.common.config import SERVICES
from libs.common.contracts import SERVICE_CONTRACTS
from libs.common.contracts.base import Context
from libs.common.contracts.keys import SEALED_SERVICES, KeysStatusRequest, keys_operations
from libs.common.crypto import Keyring, associated_data, generate_master_key, kid_of
from libs.common.db import create_pool
from libs.common.errors import Forbidden
from libs.common.reseal import Row, SealedColumn, column_status, reseal, reseal_batch
from tests.conftest import SYSTEM, Infra, Stack, WorkspaceHandle

OLD, NEW = generate_master_key("old"), generate_master_key("new")
OLD_RING = Keyring.from_setting(OLD)
BOTH = Keyring.from_setting(f"{NEW},{OLD}")  # step 2: the new key seals, the old one opens
NEW_ONLY = Keyring.from_setting(NEW)  # step 4: the old key is gone


def _aad(row: Row) -> bytes:
    return associated_data(row["workspace_id"], row["id"], "test-secret")


ITEMS = SealedColumn("items", "secret_sealed", (("id", "uuid"),), _aad, reads=("workspace_id",))


@dataclass
class Table:
    """A scratch table of sealed values in its own schema."""

    pool: asyncpg.Pool[Any]
    workspace_id: UUID

    async def add(self, n: int, ring: Keyring = OLD_RING) -> dict[UUID, bytes]:
        """Insert ``n`` rows sealed with ``ring``; return their plaintexts by id."""
        rows = {uuid4(): secrets.token_bytes(16) for _ in range(n)}
        await self.pool.executemany(
            "INSERT INTO items (id, workspace_id, secret_sealed) VALUES ($1, $2, $3)",
            [(i, self.workspace_id, ring.encrypt(v, self.aad(i))) for i, v in rows.items()],
        )
        return rows

    def aad(self, row_id: UUID) -> bytes:
        return _aad({"workspace_id": self.workspace_id, "id": row_id})

    async def sealed(self) -> dict[UUID, str]:
        rows = await self.pool.fetch("SELECT * FROM items WHERE secret_sealed IS NOT NULL")
        return {r["id"]: r["secret_sealed"] for r in rows}

    async def opened(self, ring: Keyring) -> dict[UUID, bytes]:
        return {i: ring.decrypt(s, self.aad(i)) for i, s in (await self.sealed()).items()}

    async def kids(self) -> dict[str, int]:
        async with self.pool.acquire() as conn:
            return (await column_status(conn, BOTH, ITEMS)).by_kid


@pytest.fixture
async def table(infra: Infra) -> AsyncIterator[Table]:
    schema = f"reseal_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(infra.database_url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    await admin.execute(
        f"CREATE TABLE {schema}.items (id uuid PRIMARY KEY, workspace_id uuid NOT NULL,"
        " secret_sealed text)"
    )
    pool = await create_pool(infra.database_url, schema, min_size=1, max_size=4)
    try:
        yield Table(pool, uuid4())
    finally:
        await pool.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def test_reseal_moves_every_row_so_the_old_key_can_go(table: Table) -> None:
    plain = await table.add(23)
    await table.pool.execute(
        "INSERT INTO items (id, workspace_id) VALUES ($1, $2)", uuid4(), uuid4()
    )
    sweep = await reseal(table.pool, BOTH, [ITEMS], batch_size=4)
    assert (sweep.resealed, sweep.failed, sweep.cursor) == (23, 0, None)
    assert await table.kids() == {"new": 23}  # the NULL row is no sealed value
    assert await table.opened(NEW_ONLY) == plain
    again = await reseal(table.pool, BOTH, [ITEMS], batch_size=4)
    assert again.resealed == 0  # done rows are recognised by their key id


async def test_reseal_resumes_after_a_crash(table: Table) -> None:
    """A sweep stopped after one batch, then one killed inside a batch: running again finishes."""
    plain = await table.add(20)
    first = await reseal(table.pool, BOTH, [ITEMS], batch_size=6, max_batches=1)
    assert first.resealed == 6
    assert first.cursor is not None  # …and the cursor is lost with the crashed process
    assert await table.kids() == {"new": 6, "old": 14}

    class Crashing(Keyring):
        calls = 0

        def rotate(self, sealed: str, aad: bytes) -> str:
            self.calls += 1
            if self.calls > 3:
                raise RuntimeError("killed mid-batch")
            return super().rotate(sealed, aad)

    crashing = Crashing.from_setting(f"{NEW},{OLD}")
    with pytest.raises(RuntimeError, match="killed"):
        await reseal(table.pool, crashing, [ITEMS], batch_size=6)
    assert await table.kids() == {"new": 6, "old": 14}  # the batch in flight rolled back whole

    resumed = await reseal(table.pool, BOTH, [ITEMS], batch_size=6)
    assert (resumed.resealed, resumed.cursor) == (14, None)
    assert await table.opened(NEW_ONLY) == plain


async def test_reseal_continues_from_its_cursor(table: Table) -> None:
    await table.add(9)
    done, cursor, calls = 0, None, 0
    while True:
        sweep = await reseal(table.pool, BOTH, [ITEMS], cursor=cursor, batch_size=2, max_batches=1)
        done, cursor, calls = done + sweep.resealed, sweep.cursor, calls + 1
        if cursor is None:
            break
    assert (done, calls) == (9, 5)


async def test_reseal_skips_a_locked_row_and_never_reverts_a_live_write(
    table: Table, infra: Infra
) -> None:
    """A refresh holds a row while re-sealing runs: it is not waited for, and its write wins."""
    plain = await table.add(10)
    busy = next(iter(plain))
    schema = await table.pool.fetchval("SELECT current_schema()")
    refresh = await asyncpg.connect(infra.database_url, server_settings={"search_path": schema})
    try:
        tx = refresh.transaction()
        await tx.start()
        await refresh.execute("SELECT * FROM items WHERE id = $1 FOR UPDATE", busy)
        # Not waited for: the sweep finishes while the row stays locked.
        sweep = await asyncio.wait_for(reseal(table.pool, BOTH, [ITEMS], batch_size=3), 5)
        assert sweep.resealed == 9
        assert kid_of((await table.sealed())[busy]) == "old"
        # The refresh writes its new value (sealed by a replica already on the new key).
        renewed = b"renewed-token"
        await refresh.execute(
            "UPDATE items SET secret_sealed = $2 WHERE id = $1",
            busy,
            BOTH.encrypt(renewed, table.aad(busy)),
        )
        await tx.commit()
    finally:
        await refresh.close()
    assert (await reseal(table.pool, BOTH, [ITEMS], batch_size=3)).resealed == 0
    assert (await table.opened(NEW_ONLY))[busy] == renewed


async def test_reseal_batch_writes_only_over_the_ciphertext_it_read(table: Table) -> None:
    """The write is conditional: a value changed after the read is never overwritten."""
    await table.add(3)
    changed = next(iter(await table.sealed()))
    newer = BOTH.encrypt(b"newer", table.aad(changed))
    async with table.pool.acquire() as conn:
        # Stand in for a writer that slipped in between the batch's read and its write
        # (impossible under the row lock today; the condition must hold regardless).
        rows = await conn.fetch("SELECT id, workspace_id, secret_sealed FROM items")
        await conn.execute("UPDATE items SET secret_sealed = $2 WHERE id = $1", changed, newer)
        status = await conn.execute(
            ITEMS.update_sql(),
            [r["id"] for r in rows],
            [r["secret_sealed"] for r in rows],
            [BOTH.rotate(r["secret_sealed"], table.aad(r["id"])) for r in rows],
        )
    assert status == "UPDATE 2"
    assert (await table.opened(NEW_ONLY))[changed] == b"newer"


async def test_reseal_counts_and_keeps_values_it_cannot_open(table: Table) -> None:
    plain = await table.add(4)
    ghost = Keyring.from_setting(generate_master_key("ghost"))
    stray = uuid4()
    await table.pool.execute(
        "INSERT INTO items (id, workspace_id, secret_sealed) VALUES ($1, $2, $3)",
        stray,
        table.workspace_id,
        ghost.encrypt(b"x", table.aad(stray)),
    )
    async with table.pool.acquire() as conn:
        with capture_logs() as logs:
            batch = await reseal_batch(conn, BOTH, ITEMS, None, 100)
    assert (batch.resealed, batch.failed, batch.exhausted) == (4, 1, True)
    [failed] = [e for e in logs if e["event"] == "reseal_row_failed"]
    assert (failed["column"], failed["row"]) == ("items.secret_sealed", [str(stray)])
    assert "ghost" in failed["error"]  # which key is missing; never the value
    assert await table.kids() == {"ghost": 1, "new": 4}
    sealed = await table.sealed()
    assert ghost.decrypt(sealed.pop(stray), table.aad(stray)) == b"x"  # left as it was
    assert {i: NEW_ONLY.decrypt(s, table.aad(i)) for i, s in sealed.items()} == plain


async def test_keys_subjects_answer_operators_only(
    stack: Stack, workspace: WorkspaceHandle
) -> None:
    status_op, reseal_op = keys_operations("identity")
    admin = Context(workspace_id=UUID(workspace.id), principal="admin")
    with pytest.raises(Forbidden):
        await stack.bus.call(status_op, KeysStatusRequest(ctx=admin))
    status = await stack.bus.call(status_op, KeysStatusRequest(ctx=SYSTEM))
    assert status.service == "identity"
    assert status.active_kid == "test1"
    [secret, previous] = status.columns
    assert (secret.table, secret.column) == ("workspaces", "secret_sealed")
    assert secret.total >= 1
    assert secret.by_kid == {"test1": secret.total}
    assert previous.column == "previous_secret_sealed"
    assert reseal_op.subject == "tether.identity.keys.reseal"


SEALED_COLUMNS_SQL = """
SELECT table_schema, table_name, column_name FROM information_schema.columns
WHERE table_schema = ANY($1::text[]) AND column_name LIKE '%\\_sealed'
"""
PRIMARY_KEY_SQL = """
SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = $1::regclass AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)
"""


async def test_every_sealed_column_is_declared_for_rotation(stack: Stack) -> None:
    """A new ``*_sealed`` column that nobody declares would keep an old key alive forever."""
    declared: dict[str, list[SealedColumn]] = {}
    for service in SERVICES:
        try:
            module = __import__(f"services.{service}.sealed", fromlist=["SEALED"])
        except ModuleNotFoundError:
            continue
        declared[service] = list(module.SEALED)
    assert set(declared) == set(SEALED_SERVICES)
    for service in SEALED_SERVICES:  # and each of them serves the keys subjects
        assert {op.subject for op in keys_operations(service)} <= {
            op.subject for op in SERVICE_CONTRACTS[service].OPERATIONS
        }
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        rows = await conn.fetch(SEALED_COLUMNS_SQL, list(SERVICES))
        found = {(r["table_schema"], r["table_name"], r["column_name"]) for r in rows}
        assert found == {
            (service, c.table, c.column) for service, cols in declared.items() for c in cols
        }
        for service, cols in declared.items():
            for c in cols:
                key = [
                    r["attname"] for r in await conn.fetch(PRIMARY_KEY_SQL, f"{service}.{c.table}")
                ]
                assert key == [name for name, _ in c.key], c.name
    finally:
        await conn.close()
