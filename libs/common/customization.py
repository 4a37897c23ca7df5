"""Customise a definition per instance with a JSON Merge Patch, and carry it onto new revisions.

The one customisation mechanism of Tether (flow instances, action instances, field
mappings): each kind of definition says what its *customisable document* is (a JSON
object; flows: ``{"nodes": …, "parameters": {}}``, actions: their request parts and
``parameters``), and a customisation is an RFC 7396 merge patch over it. ``parameters`` in
the document holds an instance's parameter *values* (the schema is not customisable).

* :func:`merge` applies a customisation to a document (neither is changed).
* :func:`conflicts` is the three-way rule of an upgrade from an old revision to a new one:
  for every value the customisation sets, the base must not have changed it between the
  two revisions (or must have changed it to the same value); an entry of a *collection*
  (a flow's node, an action's per-integration implementation) the customisation sets
  must still exist. Every disagreement is listed as ``{path, reason}``; an empty list
  means the customisation applies as it is to the new revision.
* :func:`require_upgradable` is what an upgrade answers: 409 ``upgrade_conflict`` listing
  the conflicts, or the problems of the effective definition the new revision would make.
* A reset drops the customisation and moves to the newest revision: nothing to compute.
* :func:`parameter_problems` checks an instance's parameter values against the schema its
  definition declares.
* :class:`Effective` keeps revisions, and the effective definitions instances make of
  them, in memory (the one I/O-free cache of both; its loader does the reading).
* :func:`customer_customization` is who may customise what, separate from who may *see*
  an instance: an admin replaces the whole customisation, a customer sets only
  ``parameters`` (``enabled`` is not part of the customisation).

Everything here is pure but :class:`Effective` (which awaits the loader it is given):
no I/O, inputs never changed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

import json_merge_patch
from jsonschema import Draft202012Validator

from libs.common.cache import TtlCache
from libs.common.errors import Conflict, Forbidden, InvalidInput

K = TypeVar("K", bound=Hashable)
D = TypeVar("D")

_MISSING = object()

PARAMETERS = "parameters"
"""The document key that holds an instance's parameter values."""


def copy_json(value: Any) -> Any:
    """Copy JSON data (a JSON round trip is several times faster than copy.deepcopy)."""
    return json.loads(json.dumps(value))


def merge(document: dict[str, Any], customization: dict[str, Any]) -> dict[str, Any]:
    """Return ``document`` with the merge patch ``customization`` applied (both untouched)."""
    merged = json_merge_patch.merge(copy_json(document), copy_json(customization))
    return merged if isinstance(merged, dict) else {}


def parameter_values(merged: dict[str, Any]) -> dict[str, Any]:
    """Return the parameter values a merged document holds ({} when none or not an object)."""
    values = merged.get(PARAMETERS)
    return values if isinstance(values, dict) else {}


def customer_customization(current: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
    """Return ``current`` with a customer's parameter values set (``None`` drops them).

    A customer may change only parameter values (and ``enabled``, which is not part of the
    customisation); anything else they send is refused with 403 ``customization_forbidden``.
    """
    if set(requested) - {PARAMETERS}:
        raise Forbidden(
            "customers may change only parameter values and enabled",
            code="customization_forbidden",
        )
    changed = {**current, PARAMETERS: requested.get(PARAMETERS)}
    if changed[PARAMETERS] is None:
        del changed[PARAMETERS]
    return changed


def leaves(patch: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Return (path, value) for every value a merge patch sets or deletes."""
    if isinstance(patch, dict):  # an empty object changes nothing: no leaves
        return [leaf for k, v in patch.items() for leaf in leaves(v, (*prefix, str(k)))]
    return [(prefix, patch)]


def value_at(document: Any, path: tuple[str, ...]) -> Any:
    """Return the value at ``path`` in ``document``, or a private marker when absent."""
    for part in path:
        if not isinstance(document, dict) or part not in document:
            return _MISSING
        document = document[part]
    return document


def conflicts(
    before: dict[str, Any],
    after: dict[str, Any],
    customization: dict[str, Any],
    collections: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """Return where ``customization`` and the new revision disagree (three-way).

    ``before`` and ``after`` are the customisable documents of the old and the new
    revision. ``collections`` names the document keys whose entries the customisation may
    reach into, with the noun each entry is called (``{"nodes": "node"}``): an entry that
    the old revision had, the new one dropped and the customisation still sets is a
    conflict of its own ("node send was removed by the new revision").
    """
    found: list[dict[str, str]] = []
    for path, value in leaves(customization):
        where = ".".join(path)
        noun = (collections or {}).get(path[0]) if len(path) >= 2 else None
        if noun is not None and value is not None:
            entry = path[:2]
            if value_at(before, entry) is not _MISSING and value_at(after, entry) is _MISSING:
                found.append(
                    {"path": where, "reason": f"{noun} {path[1]} was removed by the new revision"}
                )
                continue
        was, now = value_at(before, path), value_at(after, path)
        if was != now and now != (_MISSING if value is None else value):
            found.append({"path": where, "reason": "the new revision changed this value too"})
    return found


def parameter_problems(
    schema: dict[str, Any] | None, values: dict[str, Any]
) -> list[dict[str, str]]:
    """Check an instance's parameter values against its definition's parameters schema.

    Each problem names ``customization.parameters.<path>`` (no schema: no problems).
    """
    if not schema:
        return []
    return [
        {
            "field": ".".join(["customization", "parameters", *map(str, e.absolute_path)]),
            "message": e.message,
        }
        for e in Draft202012Validator(schema).iter_errors(values)
    ]


def require_upgradable(
    revision: int, found: list[dict[str, str]], check: Callable[[], Any]
) -> None:
    """Refuse an upgrade to ``revision`` that conflicts, or that makes an invalid definition.

    ``found`` is what :func:`conflicts` returned; when it is empty, ``check`` validates the
    effective definition on the new revision, and the details of the InvalidInput it raises
    become the conflicts (``field`` → ``path``, ``message`` → ``reason``). Any conflict:
    409 ``upgrade_conflict`` naming the first, with every one in ``details``.
    """
    if not found:
        try:
            check()
        except InvalidInput as exc:
            found = [
                {"path": d.get("field", ""), "reason": d.get("message", "")}
                for d in exc.details or []
            ]
    if found:
        raise Conflict(
            f"the customisation conflicts with revision {revision} at {found[0]['path']}",
            code="upgrade_conflict",
            details=found,
        )


class Effective(Generic[K, D]):
    """Revisions of one kind of definition and the effective ones instances make of them.

    A revision never changes once written, and an effective definition is a pure function
    of a revision and a customisation (the kind's ``apply``), so both are kept per process
    (``size`` entries each for ``ttl`` seconds) and never dropped. ``K`` names a revision;
    it must tell a recreated definition's revisions from the deleted one's. What is
    returned is shared by every caller: read it, never change it.
    """

    def __init__(
        self,
        apply: Callable[[D, dict[str, Any]], tuple[D, dict[str, Any]]],
        size: int = 20_000,
        ttl: float = 3600.0,
    ) -> None:
        self._apply = apply
        self._revisions: TtlCache[K, D] = TtlCache(size, ttl)
        self._effective: TtlCache[tuple[K, str], tuple[D, dict[str, Any]]] = TtlCache(size, ttl)

    async def revision(self, key: K, load: Callable[[], Awaitable[D]]) -> D:
        """Return revision ``key``, awaiting ``load`` only when it is not kept yet."""
        found = self._revisions.get(key)
        if found is None:
            found = await load()
            self._revisions.put(key, found)
        return found

    async def effective(
        self, key: K, customization: dict[str, Any], load: Callable[[], Awaitable[D]]
    ) -> tuple[D, dict[str, Any]]:
        """Return revision ``key`` with ``customization`` applied, and the parameter values."""
        # Many instances share a customisation (most share none): compute each one once.
        cache_key = (key, json.dumps(customization, sort_keys=True))
        found = self._effective.get(cache_key)
        if found is None:
            found = self._apply(await self.revision(key, load), customization)
            self._effective.put(cache_key, found)
        return found
