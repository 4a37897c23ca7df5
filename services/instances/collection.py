"""Call an app for a data source's records: check the collection spec, build requests, read pages.

A collection spec (``libs.common.contracts.data_records``) is checked when a data source is
saved (:func:`check_collection`, every problem named by its field). Its request templates
are resolved with :mod:`libs.common.expressions` (the one expression language) over
``{id, record, cursor, page, updatedSince}``; an ``id`` put into a *path* is URL-quoted
first, so a record id can never address another resource.

Pages: a list request and what the answer says of the next page (cursor, page number or
``Link`` header) make the next request (:func:`next_page`). A request is plain data
(:class:`AppRequest`): a sync stores the next one with each page, and a live listing hands it
to the caller as an opaque cursor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from libs.common import expressions
from libs.common.contracts import instances as c
from libs.common.errors import InvalidInput

MAX_CURSOR = 8192


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _path_problems(expression: str | None, field: str) -> list[dict[str, str]]:
    if expression is None:
        return []
    try:
        expressions.compile_expression(expression, field)
    except expressions.ExpressionError as exc:
        return [_problem(exc.field, exc.reason)]
    return []


def check_collection(collection: c.CollectionSpec | None, sync: c.SyncSpec | None) -> None:
    """Refuse a collection (and sync) spec that cannot work, naming every bad field (422)."""
    found: list[dict[str, str]] = []
    if collection is not None:
        listing = collection.list
        found += _path_problems(listing.items_path, "collection.list.itemsPath")
        found += expressions.check(listing.path, "collection.list.path")
        found += expressions.check(listing.query, "collection.list.query")
        if isinstance(listing.pagination, c.CursorPagination):
            found += _path_problems(
                listing.pagination.cursor_path, "collection.list.pagination.cursorPath"
            )
        found += _path_problems(collection.id_path, "collection.idPath")
        found += _path_problems(collection.updated_at_path, "collection.updatedAtPath")
        calls: dict[str, c.RecordCall | None] = {
            "get": collection.get,
            "create": collection.create,
            "update": collection.update,
            "delete": collection.delete,
        }
        for name, call in calls.items():
            if call is None:
                continue
            where = f"collection.{name}"
            found += expressions.check(call.path, f"{where}.path")
            found += expressions.check(call.query, f"{where}.query")
            found += expressions.check(call.body, f"{where}.body")
            found += _path_problems(call.record_path, f"{where}.recordPath")
    if sync is not None:
        if collection is None:
            found.append(_problem("sync", "a sync needs a collection to read"))
        elif sync.mode == "incremental" and collection.list.updated_since is None:
            found.append(
                _problem(
                    "sync.mode",
                    "an incremental sync needs collection.list.updatedSince "
                    "(how to ask for changes only)",
                )
            )
    if found:
        raise InvalidInput(
            f"the data source is not valid: {found[0]['field']}: {found[0]['message']}",
            details=found,
        )


# --- requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AppRequest:
    """One request to the app, as the connections proxy takes it."""

    method: c.RecordMethod
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None

    def to_json(self) -> dict[str, Any]:
        """Return the request as JSON (stored with a sync's page, or put in a cursor)."""
        return {"method": self.method, "path": self.path, "query": [list(q) for q in self.query]}

    @classmethod
    def from_json(cls, value: Any) -> AppRequest:
        """Return the listing request :meth:`to_json` gave; ValueError if ``value`` is not one."""
        if not isinstance(value, dict):
            raise ValueError("not a request")
        method, path, query = value.get("method"), value.get("path"), value.get("query")
        if method != "GET" or not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("not a request")
        if not isinstance(query, list) or not all(
            isinstance(q, list) and len(q) == 2 and all(isinstance(v, str) for v in q)
            for q in query
        ):
            raise ValueError("not a request")
        return cls(method, path, tuple((k, v) for k, v in query))


def encode_request(request: AppRequest) -> str:
    """Return a live listing's opaque cursor for the next page."""
    raw = json.dumps(request.to_json(), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_request(cursor: str) -> AppRequest:
    """Return the request a cursor of :func:`encode_request` stands for (422 on ``cursor``)."""
    try:
        return AppRequest.from_json(
            json.loads(base64.b64decode(cursor.encode(), altchars=b"-_", validate=True))
        )
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not valid", details=[{"field": "cursor"}]) from exc


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _query(template: dict[str, Any], scope: dict[str, Any], field: str) -> list[tuple[str, str]]:
    resolved = expressions.resolve(template, scope, field)
    pairs: list[tuple[str, str]] = []
    for name, value in resolved.items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append((name, _text(item)))
    return pairs


def _path(template: str, scope: dict[str, Any], field: str) -> str:
    """Resolve a path template; ids are URL-quoted so they stay one path segment."""
    quoted = {k: quote(v, safe="") if isinstance(v, str) else v for k, v in scope.items()}
    path = expressions.resolve(template, quoted, field)
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidInput(
            f"{field} must resolve to a path starting with /", code="bad_request_spec"
        )
    return path


def record_request(
    spec: c.RecordCall, method: c.RecordMethod, scope: dict[str, Any], field: str
) -> AppRequest:
    """Return the request of a get/create/update/delete spec with ``scope``'s values."""
    body = expressions.resolve(spec.body, scope, f"{field}.body") if spec.body is not None else None
    return AppRequest(
        method,
        _path(spec.path, scope, f"{field}.path"),
        tuple(_query(spec.query, scope, f"{field}.query")),
        body,
    )


def since_value(spec: c.UpdatedSinceSpec, since: datetime) -> str:
    """Return ``since`` as the list's updatedSince parameter wants it."""
    if spec.format == "epoch":
        return str(int(since.timestamp()))
    if spec.format == "epoch_ms":
        return str(int(since.timestamp() * 1000))
    return since.astimezone(UTC).isoformat().replace("+00:00", "Z")


def first_page(spec: c.ListSpec, since: datetime | None) -> AppRequest:
    """Return the request of the first page (changed since ``since`` when given and supported)."""
    scope: dict[str, Any] = {"updatedSince": since.isoformat() if since else None}
    query = _query(spec.query, scope, "collection.list.query")
    pagination = spec.pagination
    if isinstance(pagination, c.PagePagination):
        query.append((pagination.param, str(pagination.start)))
        if pagination.size_param and pagination.size:
            query.append((pagination.size_param, str(pagination.size)))
    if since is not None and spec.updated_since is not None:
        query.append((spec.updated_since.param, since_value(spec.updated_since, since)))
    return AppRequest("GET", _path(spec.path, scope, "collection.list.path"), tuple(query))


_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


def next_link(headers: list[tuple[str, str]]) -> str | None:
    """Return the URL of ``rel="next"`` in the answer's Link headers, if any."""
    for name, value in headers:
        if name.lower() != "link":
            continue
        for url, params in _LINK.findall(value):
            rels = re.findall(r'rel\s*=\s*"?([^";]+)"?', params)
            if any("next" in r.split() for r in rels):
                return str(url)
    return None


def _replace(
    query: tuple[tuple[str, str], ...], name: str, value: str
) -> tuple[tuple[str, str], ...]:
    return (*((k, v) for k, v in query if k != name), (name, value))


def next_page(
    spec: c.ListSpec, sent: AppRequest, data: Any, headers: list[tuple[str, str]], items: list[Any]
) -> AppRequest | None:
    """Return the request of the page after ``sent``'s answer, or None when it was the last."""
    pagination = spec.pagination
    if pagination is None or not items:
        return None
    if isinstance(pagination, c.CursorPagination):
        cursor = expressions.search(
            pagination.cursor_path, data, "collection.list.pagination.cursorPath"
        )
        if cursor in (None, "", False):
            return None
        return AppRequest("GET", sent.path, _replace(sent.query, pagination.param, _text(cursor)))
    if isinstance(pagination, c.PagePagination):
        if pagination.size is not None and len(items) < pagination.size:
            return None
        current = dict(sent.query).get(pagination.param, str(pagination.start))
        try:
            number = int(current) + 1
        except ValueError:
            return None
        return AppRequest("GET", sent.path, _replace(sent.query, pagination.param, str(number)))
    link = next_link(headers)
    if link is None:
        return None
    return _link_request(sent, link)


def _link_request(sent: AppRequest, link: str) -> AppRequest | None:
    """Return the proxy request of a next link: its path relative to the API base.

    The link is absolute (``https://api.example/v2/contacts?page=2``) while the proxy joins a
    path onto the integration's base; the base's own path is what the link's path has before
    the list path we sent (``/v2``), so it is cut off. A link to another resource keeps its
    whole path.
    """
    parts = urlsplit(link)
    path = parts.path or "/"
    own = sent.path.split("?", 1)[0]
    if not parts.scheme and not parts.netloc and path.startswith("/"):
        relative = path
    elif own != "/" and path.endswith(own):
        relative = own
    else:
        relative = path
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    if relative == own and query == sent.query:
        return None  # the app points at the page we just read: stop rather than loop
    return AppRequest("GET", relative, query)


# --- answers ----------------------------------------------------------------------------


def page_items(spec: c.ListSpec, data: Any) -> list[Any]:
    """Return a page's records (``itemsPath`` over the answer); a non-list is no records."""
    found = expressions.search(spec.items_path, data, "collection.list.itemsPath")
    return found if isinstance(found, list) else []


def record_id(collection: c.CollectionSpec, record: Any) -> str | None:
    """Return a record's id (``idPath``) as text, or None when it has none."""
    try:
        found = expressions.search(collection.id_path, record, "collection.idPath")
    except expressions.ExpressionError:
        return None
    if found is None or isinstance(found, dict | list | bool) or found == "":
        return None
    return str(found)[:512]


def parse_time(value: Any) -> datetime | None:
    """Return an ISO-8601 string or epoch number (seconds or milliseconds) as a time."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def updated_at(collection: c.CollectionSpec, record: Any) -> datetime | None:
    """Return a record's ``updatedAtPath`` value as a time, if it has one."""
    if collection.updated_at_path is None:
        return None
    try:
        return parse_time(expressions.search(collection.updated_at_path, record))
    except expressions.ExpressionError:
        return None


def record_of(spec: c.RecordCall, data: Any) -> Any:
    """Return the record in a get/create/update answer (``recordPath``, default the answer)."""
    if spec.record_path is None:
        return data
    return expressions.search(spec.record_path, data, "recordPath")


def canonical_json(record: Any) -> str:
    """Return a record's canonical JSON: sorted keys, no spaces (what is hashed and stored)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(canonical: str) -> bytes:
    """Return the hash a sync compares: SHA-256 of the record's canonical JSON."""
    return hashlib.sha256(canonical.encode()).digest()
