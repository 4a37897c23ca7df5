"""Contracts: every subject served by exactly one service; every model round-trips JSON."""

from __future__ import annotations

import ast
import json
import re
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel

from libs.common.config import SERVICES
from libs.common.contracts import ALL_EVENTS, ALL_OPERATIONS, SERVICE_CONTRACTS
from libs.common.contracts.base import Contract, Request
from tests.conftest import ROOT, Stack


def _models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for op in ALL_OPERATIONS:
        found[op.request.__qualname__] = op.request
        found[op.reply.__qualname__] = op.reply
    for ev in ALL_EVENTS:
        found[ev.model.__qualname__] = ev.model
    return list(found.values())


def _sample(annotation: Any) -> Any:
    """Return a valid sample value for a field annotation (non-None where optional)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *meta = get_args(annotation)
        pattern = next((m.pattern for m in meta if getattr(m, "pattern", None)), None)
        if pattern is None:
            pattern = next(
                (
                    x.pattern
                    for m in meta
                    for x in getattr(m, "metadata", [])
                    if getattr(x, "pattern", None)
                ),
                None,
            )
        return _for_pattern(pattern) if pattern else _sample(inner)
    if origin is Literal:
        return get_args(annotation)[0]
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return _sample(options[0])
    if origin is tuple:
        return [_sample(a) for a in get_args(annotation)]
    if origin in (list, set):
        return [_sample(get_args(annotation)[0])] if get_args(annotation) else []
    if origin is dict:
        value_type = get_args(annotation)[1] if get_args(annotation) else str
        return {"k": _sample(value_type) if value_type is not Any else "v"}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _instance(annotation).model_dump(mode="json")
    return {
        str: "x",
        int: 1,
        float: 1.5,
        bool: True,
        UUID: str(uuid4()),
        datetime: datetime.now(UTC).isoformat(),
    }.get(annotation, "x")


def _for_pattern(pattern: str) -> str:
    """Return a string matching one of the patterns contracts use."""
    samples = ("https://example.com/x", "/x", "abc", "*", "msg_" + "0" * 32, "https://example.com")
    for candidate in samples:
        if re.match(pattern, candidate):
            return candidate
    raise AssertionError(f"no sample for pattern {pattern}")


def _instance(model: type[BaseModel]) -> BaseModel:
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        lower = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
        pattern = next((m.pattern for m in field.metadata if getattr(m, "pattern", None)), None)
        shortest = next(
            (m.min_length for m in field.metadata if getattr(m, "min_length", None)), None
        )
        if default in (None, [], {}):
            if shortest and field.annotation is str:
                values[name] = "x" * shortest
            elif pattern:
                values[name] = _for_pattern(pattern)
            else:
                values[name] = lower if lower is not None else _sample(field.annotation)
        else:
            values[name] = default
    values.pop("ctx", None)
    return model.model_validate(values)


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__qualname__)
def test_contract_model_round_trips_json(model: type[BaseModel]) -> None:
    assert issubclass(model, Contract)
    assert model.model_config.get("frozen")
    # Requests refuse unknown fields; replies and events ignore them (additive changes).
    expected = "forbid" if issubclass(model, Request) else "ignore"
    assert model.model_config.get("extra") == expected
    instance = _instance(model)
    wire = instance.model_dump_json()
    assert model.model_validate_json(wire) == instance
    assert "_" not in "".join(k for k in json.loads(wire) if k != "ctx"), "wire keys are camelCase"
    model.model_json_schema()


def test_contract_subjects_follow_the_naming_rules() -> None:
    for op in ALL_OPERATIONS:
        parts = op.subject.split(".")
        assert (parts[0], len(parts)) == ("tether", 4), op.subject
        assert parts[1] in SERVICES, op.subject
    for ev in ALL_EVENTS:
        parts = ev.subject.split(".")
        assert (parts[:2], len(parts)) == (["tether", "evt"], 5), ev.subject
        assert parts[2] in SERVICES, ev.subject
    for name, module in SERVICE_CONTRACTS.items():
        assert all(op.service == name for op in module.OPERATIONS)
        assert all(ev.service == name for ev in module.EVENTS)
    subjects = [op.subject for op in ALL_OPERATIONS] + [ev.subject for ev in ALL_EVENTS]
    assert len(subjects) == len(set(subjects))


async def test_contract_every_subject_served_by_exactly_one_service(stack: Stack) -> None:
    """Ask every running service ($SRV.INFO) what it serves; compare with the contracts."""
    inbox = stack.bus.nc.new_inbox()
    sub = await stack.bus.nc.subscribe(inbox)
    await stack.bus.nc.publish("$SRV.INFO", b"", reply=inbox)
    served: dict[str, list[str]] = {}
    seen_services: set[str] = set()
    while seen_services != set(SERVICES):
        msg = await sub.next_msg(timeout=5)
        info = json.loads(msg.data)
        if info["name"] not in SERVICES or info["name"] in seen_services:
            continue  # another test's throw-away service, or a second replica
        seen_services.add(info["name"])
        for ep in info["endpoints"]:
            served.setdefault(ep["subject"], []).append(info["name"])
    await sub.unsubscribe()
    expected = {op.subject: [op.service] for op in ALL_OPERATIONS}
    assert served == expected


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_architecture_services_never_import_each_other() -> None:
    for path in (ROOT / "libs").rglob("*.py"):
        if path.is_relative_to(ROOT / "libs" / "cli"):
            continue  # the CLI is the composition root: it starts, wires and inspects services
        bad = {n for n in _imports(path) if n == "services" or n.startswith("services.")}
        assert not bad, f"{path} imports a service: {bad}"
    for svc in (*SERVICES, "gateway"):
        for path in (ROOT / "services" / svc).rglob("*.py"):
            bad = {
                n
                for n in _imports(path)
                if n.startswith("services.") and not n.startswith(f"services.{svc}")
            }
            assert not bad, f"{path} imports another service: {bad}"
