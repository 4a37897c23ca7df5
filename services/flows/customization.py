"""Apply a customer's customisation (a JSON Merge Patch) and carry it onto a new revision.

The customisable document of a flow is ``{"nodes": <its nodes>, "parameters": {}}``;
a customisation is an RFC 7396 merge patch over it. Upgrading is three-way: for every
value the customisation sets, the base must not have changed it between the old and the
new revision (or must have changed it to the same value); a node the customisation
touches must still exist. Otherwise the upgrade is refused with the list of conflicts.

Who may customise what is a rule of its own, separate from who may *see* an instance: an
admin replaces the whole customisation, a customer only its ``parameters``
(:func:`customer_customization`).
"""

from __future__ import annotations

import json
from typing import Any

import json_merge_patch

from libs.common.contracts import flows as c
from libs.common.errors import Forbidden

_MISSING = object()


def document(definition: c.FlowDefinition) -> dict[str, Any]:
    """Return the customisable part of a definition."""
    return {
        "nodes": {k: n.model_dump(mode="json") for k, n in definition.nodes.items()},
        "parameters": {},
    }


def apply(
    definition: c.FlowDefinition, customization: dict[str, Any]
) -> tuple[c.FlowDefinition, dict[str, Any]]:
    """Return the effective definition and parameter values (inputs untouched)."""
    merged = json_merge_patch.merge(document(definition), _copy(customization))
    nodes = merged.get("nodes") if isinstance(merged, dict) else None
    params = merged.get("parameters") if isinstance(merged, dict) else None
    effective = definition.model_copy(
        update={"nodes": {k: c.Node.model_validate(v) for k, v in (nodes or {}).items()}}
    )
    return effective, params if isinstance(params, dict) else {}


def customer_customization(current: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
    """Return ``current`` with a customer's parameter values set (``None`` drops them).

    A customer may change only parameter values (and ``enabled``, which is not part of the
    customisation); anything else they send is refused.
    """
    if set(requested) - {"parameters"}:
        raise Forbidden(
            "customers may change only parameter values and enabled",
            code="customization_forbidden",
        )
    changed = {**current, "parameters": requested.get("parameters")}
    if changed["parameters"] is None:
        del changed["parameters"]
    return changed


def _copy(value: Any) -> Any:
    """Copy JSON data (a JSON round trip is several times faster than copy.deepcopy)."""
    return json.loads(json.dumps(value))


def leaves(patch: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Return (path, value) for every value a merge patch sets or deletes."""
    if isinstance(patch, dict):  # an empty object changes nothing: no leaves
        return [leaf for k, v in patch.items() for leaf in leaves(v, (*prefix, str(k)))]
    return [(prefix, patch)]


def _at(doc: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return _MISSING
        doc = doc[part]
    return doc


def conflicts(
    old: c.FlowDefinition, new: c.FlowDefinition, customization: dict[str, Any]
) -> list[dict[str, str]]:
    """Return the places where the customisation and the new revision disagree."""
    before, after = document(old), document(new)
    found: list[dict[str, str]] = []
    for path, value in leaves(customization):
        if len(path) >= 2 and path[0] == "nodes":
            node = path[1]
            if node in before["nodes"] and node not in after["nodes"] and value is not None:
                found.append(
                    {
                        "path": ".".join(path),
                        "reason": f"node {node} was removed by the new revision",
                    }
                )
                continue
        was, now = _at(before, path), _at(after, path)
        if was != now and now != (_MISSING if value is None else value):
            found.append(
                {"path": ".".join(path), "reason": "the new revision changed this value too"}
            )
    return found
