"""Opaque keyset cursors: what a page ended at, encoded so clients cannot depend on it."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from libs.common.errors import InvalidInput


def encode_cursor(*parts: object) -> str:
    """Return an opaque cursor for the position after a page's last item."""
    return base64.urlsafe_b64encode("\x1f".join(str(p) for p in parts).encode()).decode()


def decode_cursor(cursor: str, count: int = 1) -> list[str]:
    """Return the ``count`` parts of a cursor we made; refuse anything else (422 on ``cursor``)."""
    try:
        parts = (
            base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode().split("\x1f")
        )
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("cursor is not valid", details=[{"field": "cursor"}]) from exc
    if len(parts) != count or not all(parts):
        raise InvalidInput("cursor is not valid", details=[{"field": "cursor"}])
    return parts


def decode_uuid_cursor(cursor: str) -> UUID:
    """Return the id a one-part cursor points after, when ids are UUIDs."""
    try:
        return UUID(decode_cursor(cursor)[0])
    except ValueError as exc:
        raise InvalidInput("cursor is not valid", details=[{"field": "cursor"}]) from exc


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """Return the (timestamp, key) a two-part cursor points after (an aware timestamp)."""
    at, key = decode_cursor(cursor, 2)
    try:
        position = datetime.fromisoformat(at)
    except ValueError as exc:
        raise InvalidInput("cursor is not valid", details=[{"field": "cursor"}]) from exc
    if position.tzinfo is None:
        raise InvalidInput("cursor is not valid", details=[{"field": "cursor"}])
    return position, key


def decode_time_uuid_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Return the (timestamp, id) a two-part cursor points after, when ids are UUIDs."""
    position, key = decode_time_cursor(cursor)
    try:
        return position, UUID(key)
    except ValueError as exc:
        raise InvalidInput("cursor is not valid", details=[{"field": "cursor"}]) from exc


def uuid_after(cursor: str | None) -> UUID | None:
    """Return the id a page request's cursor points after (None: the first page)."""
    return decode_uuid_cursor(cursor) if cursor else None


T = TypeVar("T")


def split_page(rows: Sequence[T], limit: int) -> tuple[list[T], bool]:
    """Return the first ``limit`` rows and whether there are more.

    Queries fetch ``limit + 1`` rows: the extra one only says that another page exists.
    """
    return list(rows[:limit]), len(rows) > limit


def keyset_page(
    rows: Sequence[T], limit: int, position: Callable[[T], tuple[object, ...]]
) -> tuple[list[T], str | None]:
    """Return the first ``limit`` rows and the cursor of the page after them (None: no more).

    The cursor encodes ``position`` of the page's last row: what the next query starts after.
    """
    page, more = split_page(rows, limit)
    return page, encode_cursor(*position(page[-1])) if more and page else None
