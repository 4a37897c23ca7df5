"""Keep the events a durable consumer failed on where an operator can see them.

Each service's schema has a ``dead_letters`` table (a common migration), one row per
consumer and stream message. :class:`~libs.common.outbox.EventConsumer` writes the row on
every failed delivery while retries remain (so it knows when the failures began), deletes
it when a retry succeeds, and marks it given up (``gave_up_at``) when it stops trying.
``tether.<service>.dead_letters.list`` lists the rows for the system principal only:
like the relay, this is system work across workspaces.

A row keeps the payload as received, cut at :data:`PAYLOAD_LIMIT` (events carry ids, not
secrets), and the error on one line as :func:`describe` words it: the same rule as a log
line, never a secret; the traceback is in the consumer's log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import ValidationError

from libs.common.bus import Endpoint, endpoint
from libs.common.contracts.base import EventType
from libs.common.contracts.dead_letters import (
    DeadLetter,
    DeadLetterListRequest,
    DeadLetterPage,
    dead_letters_operation,
)
from libs.common.db import Conn
from libs.common.errors import InvalidInput, TetherError
from libs.common.paging import decode_cursor, keyset_page

PAYLOAD_LIMIT = 16 * 1024
"""Bytes of a payload a dead letter keeps."""
ERROR_LIMIT = 1000
"""Characters of an error a dead letter keeps."""
UNANSWERED = (
    "its last delivery went unanswered (the process stopped, the handler hung, "
    "or an older version had already delivered it that often)"
)
"""The error of a message given up without a known failure, when none was recorded before."""

RECORD_FAILURE_SQL = """
INSERT INTO dead_letters (consumer, stream_seq, subject, event_id, workspace_id, payload,
    payload_size, error, deliveries, gave_up_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, $10), $9, CASE WHEN $11 THEN now() END)
ON CONFLICT (consumer, stream_seq) DO UPDATE SET
    event_id = coalesce(EXCLUDED.event_id, dead_letters.event_id),
    workspace_id = coalesce(EXCLUDED.workspace_id, dead_letters.workspace_id),
    error = coalesce($8, dead_letters.error),
    deliveries = greatest(EXCLUDED.deliveries, dead_letters.deliveries),
    last_failed_at = now(),
    gave_up_at = coalesce(dead_letters.gave_up_at, EXCLUDED.gave_up_at)
"""
FORGET_FAILURE_SQL = """
DELETE FROM dead_letters WHERE consumer = $1 AND stream_seq = $2 AND gave_up_at IS NULL
"""
_COLUMNS = """
id, consumer, stream_seq, subject, event_id, workspace_id, payload, payload_size, error,
deliveries, first_failed_at, last_failed_at, gave_up_at
"""
LIST_DEAD_LETTERS_SQL = f"""
SELECT {_COLUMNS} FROM dead_letters
WHERE ($1::text IS NULL OR consumer = $1)
  AND ($2 OR gave_up_at IS NOT NULL)
  AND ($3::bigint IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $4
"""


@dataclass(frozen=True)
class Failure:
    """One failed delivery of a stream message to a consumer.

    ``error`` None means the failure is not known (the delivery nobody answered): the
    row keeps the error an earlier attempt recorded, or says :data:`UNANSWERED`.
    """

    consumer: str
    stream_seq: int
    subject: str
    data: bytes
    deliveries: int
    error: str | None
    event_id: UUID | None = None
    workspace_id: UUID | None = None

    @classmethod
    def of(
        cls,
        consumer: str,
        stream_seq: int,
        subject: str,
        data: bytes,
        deliveries: int,
        error: str | None,
        types: Mapping[str, EventType[Any]],
    ) -> Failure:
        """Describe a failed delivery, with the event's ids when its payload reads."""
        event = None
        kind = types.get(subject)
        if kind is not None:
            with contextlib.suppress(ValidationError):
                event = kind.model.model_validate_json(data)
        return cls(
            consumer,
            stream_seq,
            subject,
            data,
            deliveries,
            error,
            event.event_id if event else None,
            event.workspace_id if event else None,
        )


def describe(exc: BaseException) -> str:
    """Word an exception for a dead letter: one line, no input values, capped."""
    if isinstance(exc, ValidationError):
        problems = exc.errors(include_url=False, include_input=False)
        text = "unreadable event: " + "; ".join(
            f"{'.'.join(map(str, p['loc'])) or '(root)'}: {p['msg']}" for p in problems[:5]
        )
    elif isinstance(exc, TetherError):
        text = f"{exc.code}: {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())[:ERROR_LIMIT]


def _payload(data: bytes) -> str:
    # PostgreSQL text cannot hold NUL: show it as the replacement character.
    return data[:PAYLOAD_LIMIT].decode("utf-8", "replace").replace("\x00", "\ufffd")


async def record_failure(conn: Conn, failure: Failure, *, gave_up: bool) -> None:
    """Write (or bring up to date) the message's row; ``gave_up`` makes it final."""
    await conn.execute(
        RECORD_FAILURE_SQL,
        failure.consumer,
        failure.stream_seq,
        failure.subject,
        failure.event_id,
        failure.workspace_id,
        _payload(failure.data),
        len(failure.data),
        failure.error,
        failure.deliveries,
        UNANSWERED,
        gave_up,
    )


async def forget_failure(conn: Conn, consumer: str, stream_seq: int) -> None:
    """Delete the row of a message a retry has now handled (a given-up row stays)."""
    await conn.execute(FORGET_FAILURE_SQL, consumer, stream_seq)


async def list_dead_letters(
    conn: Conn, consumer: str | None, *, include_retrying: bool, before: int | None, limit: int
) -> list[tuple[int, DeadLetter]]:
    """Return (row id, dead letter) pairs, newest first, before the row id given."""
    rows = await conn.fetch(LIST_DEAD_LETTERS_SQL, consumer, include_retrying, before, limit)
    return [
        (r["id"], DeadLetter.model_validate({k: v for k, v in r.items() if k != "id"}))
        for r in rows
    ]


def dead_letters_endpoint(
    service: str, pool: asyncpg.Pool[Any]
) -> Endpoint[DeadLetterListRequest, DeadLetterPage]:
    """Return the service's ``tether.<service>.dead_letters.list`` endpoint."""

    async def list_(req: DeadLetterListRequest) -> DeadLetterPage:
        req.ctx.require_system()
        before = None
        if req.cursor:
            try:
                before = int(decode_cursor(req.cursor)[0])
            except ValueError as exc:
                raise InvalidInput("cursor is not valid", details=[{"field": "cursor"}]) from exc
        async with pool.acquire() as conn:
            found = await list_dead_letters(
                conn,
                req.consumer,
                include_retrying=req.include_retrying,
                before=before,
                limit=req.limit + 1,
            )
        page, cursor = keyset_page(found, req.limit, lambda row: (row[0],))
        return DeadLetterPage(items=[letter for _, letter in page], cursor=cursor)

    return endpoint(dead_letters_operation(service), list_)
