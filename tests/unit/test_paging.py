"""Keyset pages: the first ``limit`` rows, and a cursor only when another page exists."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from libs.common.errors import InvalidInput
from libs.common.paging import (
    decode_cursor,
    decode_time_cursor,
    decode_time_uuid_cursor,
    encode_cursor,
    keyset_page,
    uuid_after,
)


def test_keyset_page_cursor_points_after_the_last_row_kept() -> None:
    page, cursor = keyset_page([1, 2, 3], 2, lambda n: (n, "x"))
    assert page == [1, 2]
    assert cursor is not None
    assert decode_cursor(cursor, 2) == ["2", "x"]


@pytest.mark.parametrize("rows", [[], [1], [1, 2]])
def test_keyset_page_without_more_rows_has_no_cursor(rows: list[int]) -> None:
    assert keyset_page(rows, 2, lambda n: (n,)) == (rows, None)


def test_uuid_after_reads_its_own_cursor_and_refuses_others() -> None:
    last = uuid4()
    _, cursor = keyset_page([last, uuid4()], 1, lambda u: (u,))
    assert uuid_after(cursor) == last
    assert uuid_after(None) is None
    assert uuid_after("") is None
    with pytest.raises(InvalidInput):
        uuid_after("bm90LWEtdXVpZA==")  # "not-a-uuid"


def test_time_cursors_read_their_own_and_refuse_naive_or_malformed_ones() -> None:
    at, last = datetime(2026, 11, 30, 12, 0, tzinfo=UTC), uuid4()
    cursor = encode_cursor(at.isoformat(), last)
    assert decode_time_uuid_cursor(cursor) == (at, last)
    assert decode_time_cursor(cursor) == (at, str(last))
    for bad in (
        encode_cursor("2026-11-30T12:00:00", last),  # no zone: not one of ours
        encode_cursor("yesterday", last),
        encode_cursor(at.isoformat()),
    ):
        with pytest.raises(InvalidInput):
            decode_time_cursor(bad)
    with pytest.raises(InvalidInput):
        decode_time_uuid_cursor(encode_cursor(at.isoformat(), "not-a-uuid"))
