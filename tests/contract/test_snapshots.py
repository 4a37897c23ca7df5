"""Contract snapshots: an incompatible change fails unless the snapshot changes with it.

`tether contracts schemas` rewrites tests/contract/schemas/. Incompatible means: for what
callers send (requests), a field removed, a new required field, a type narrowed; for
what consumers read (replies, events), a field removed, a required field made optional,
a type widened. Additive changes pass.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from libs.common.contracts.documents import asyncapi, subject_schemas
from tests.conftest import ROOT, Stack

SNAPSHOTS = ROOT / "tests" / "contract" / "schemas"


def _types(schema: dict[str, Any]) -> set[str]:
    if "anyOf" in schema:
        return {t for option in schema["anyOf"] for t in _types(option)}
    if "$ref" in schema:
        return {schema["$ref"].rsplit("/", 1)[-1]}
    kind = schema.get("type")
    if isinstance(kind, list):
        return set(kind)
    if "const" in schema or "enum" in schema:
        return {json.dumps(v) for v in schema.get("enum", [schema.get("const")])}
    return {kind} if kind else {"any"}


def _model_breaks(
    old: dict[str, Any], new: dict[str, Any], where: str, *, inbound: bool
) -> list[str]:
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for name, spec in old_props.items():
        if name not in new_props:
            problems.append(f"{where}.{name} was removed")
            continue
        before, after = _types(spec), _types(new_props[name])
        if "any" in before or "any" in after:
            continue
        if inbound and not before <= after:
            problems.append(
                f"{where}.{name} accepts less than before ({sorted(before)} → {sorted(after)})"
            )
        if not inbound and not after <= before:
            problems.append(f"{where}.{name} may now be {sorted(after - before)}")
    if inbound:
        problems += [
            f"{where}.{name} is newly required"
            for name in sorted(new_req - old_req - set(old_props))
        ]
        problems += [
            f"{where}.{name} became required"
            for name in sorted((new_req - old_req) & set(old_props))
        ]
    else:
        problems += [
            f"{where}.{name} is no longer always present"
            for name in sorted(old_req - new_req)
            if name in new_props
        ]
    return problems


def breaks(old: dict[str, Any], new: dict[str, Any], where: str, *, inbound: bool) -> list[str]:
    """Return the incompatible changes between two JSON Schemas of one message."""
    problems = _model_breaks(old, new, where, inbound=inbound)
    new_defs = new.get("$defs", {})
    for name, spec in old.get("$defs", {}).items():
        if name in new_defs:
            problems += _model_breaks(spec, new_defs[name], f"{where}/{name}", inbound=inbound)
    return problems


def test_contract_snapshots_are_compatible() -> None:
    current = subject_schemas()
    problems: list[str] = []
    snapshots = {p.stem: json.loads(p.read_text()) for p in SNAPSHOTS.glob("*.json")}
    for subject, old in snapshots.items():
        new = current.get(subject)
        if new is None:
            problems.append(f"{subject} is no longer served")
            continue
        for part, inbound in (("request", True), ("reply", False), ("event", False)):
            if part in old:
                problems += breaks(old[part], new[part], f"{subject} {part}", inbound=inbound)
    missing = sorted(set(current) - set(snapshots))
    assert not problems, (
        "incompatible contract changes (run `tether contracts schemas` if intended):\n"
        + "\n".join(problems)
    )
    assert not missing, (
        f"new subjects without a snapshot (run `tether contracts schemas`): {missing}"
    )


@pytest.mark.parametrize(
    ("old", "new", "inbound", "expected"),
    [
        ({"properties": {"a": {"type": "string"}}}, {"properties": {}}, True, "removed"),
        (
            {"properties": {}},
            {"properties": {"b": {"type": "string"}}, "required": ["b"]},
            True,
            "newly required",
        ),
        (
            {"properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}},
            {"properties": {"a": {"type": "string"}}},
            True,
            "accepts less",
        ),
        (
            {"properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"a": {"type": "string"}}},
            False,
            "no longer always",
        ),
        (
            {"properties": {"a": {"type": "string"}}},
            {"properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}},
            False,
            "may now be",
        ),
        (
            {"properties": {}},
            {"properties": {"b": {"type": "string"}}, "required": ["b"]},
            False,
            None,
        ),
        ({"properties": {}}, {"properties": {"b": {"type": "string"}}}, True, None),
    ],
)
def test_contract_compatibility_rules(
    old: dict[str, Any], new: dict[str, Any], inbound: bool, expected: str | None
) -> None:
    found = breaks(old, new, "m", inbound=inbound)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1
        assert expected in found[0]


async def test_gateway_serves_asyncapi(stack: Stack) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.get(stack.gateway_url + "/asyncapi.json") as resp,
    ):
        assert resp.status == 200
        doc = await resp.json()
    assert doc["asyncapi"] == "3.0.0"
    assert doc == json.loads(json.dumps(asyncapi(doc["info"]["version"])))
    addresses = {c["address"] for c in doc["channels"].values() if c["address"]}
    assert set(subject_schemas()) <= addresses
