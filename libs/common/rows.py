"""Turn asyncpg rows into models: one call per shape of answer, at the store boundary.

Store functions return models, never ``asyncpg.Record`` s; these three helpers are the
only place that conversion is written::

    one(ConnectionRecord, await conn.fetchrow(...))     # the row must exist
    maybe(ConnectionRecord, await conn.fetchrow(...))   # None when there is no row
    many(ConnectionRecord, await conn.fetch(...))       # a list, possibly empty

Replies are built from records by their field names, not copied by hand:
``Reply.model_validate(record, from_attributes=True)``, or :func:`reply` when the reply
also needs values the record does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from libs.common.errors import Internal

M = TypeVar("M", bound=BaseModel)


def one(model: type[M], row: Mapping[str, Any] | None) -> M:
    """Return ``row`` as ``model``; a missing row here is a bug (the query must return one)."""
    if row is None:
        raise Internal(f"expected a {model.__name__} row, found none")
    return model.model_validate(dict(row))


def maybe(model: type[M], row: Mapping[str, Any] | None) -> M | None:
    """Return ``row`` as ``model``, or None when there was no row."""
    return None if row is None else model.model_validate(dict(row))


def many(model: type[M], rows: Iterable[Mapping[str, Any]]) -> list[M]:
    """Return every row as ``model``."""
    return [model.model_validate(dict(row)) for row in rows]


def reply(model: type[M], source: object, **values: Any) -> M:
    """Return ``model`` built from ``source``'s attributes of the same names, plus ``values``."""
    fields = {name: getattr(source, name) for name in model.model_fields if name not in values}
    return model.model_validate({**fields, **values})
