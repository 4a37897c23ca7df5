"""Find, by reading the code, which other services' subjects each service calls."""

from __future__ import annotations

import ast
from pathlib import Path

from libs.common.contracts import ALL_EVENTS, ALL_OPERATIONS, SERVICE_CONTRACTS
from tests.conftest import ROOT

_MODULES = {f"libs.common.contracts.{name}": name for name in SERVICE_CONTRACTS}


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Map local names to contract modules (``from libs.common.contracts import connections as cc``)."""
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "libs.common.contracts":
            for alias in node.names:
                if alias.name in SERVICE_CONTRACTS:
                    found[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in _MODULES:
            pass
    return found


def referenced(service: str) -> set[str]:
    """Return the subjects (operations and events) of *other* services that ``service`` names.

    Read once per process, when the tests are collected: CPython 3.11.7's ``ast.parse``
    can fail with ``SystemError: AST constructor recursion depth mismatch`` after another
    test in the same worker caught a ``RecursionError`` (absurdly deep JSON in a token).
    """
    return set(_REFERENCED[service])


def _referenced(service: str) -> frozenset[str]:
    by_attr: dict[tuple[str, str], set[str]] = {}
    for m, contracts in SERVICE_CONTRACTS.items():
        for name in dir(contracts):
            value = getattr(contracts, name)
            # One operation or event, or a tuple of them (``connections.EVENTS``).
            items = value if isinstance(value, tuple) else (value,)
            named = {s for item in items if isinstance(s := getattr(item, "subject", None), str)}
            if named:
                by_attr[(m, name)] = named
    subjects: set[str] = set()
    for path in (ROOT / "services" / service).rglob("*.py"):
        tree = ast.parse(Path(path).read_text())
        aliases = _aliases(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                module = aliases[node.value.id]
                if module != service:
                    subjects |= by_attr.get((module, node.attr), set())
    return frozenset(subjects)


_REFERENCED = {
    path.name: _referenced(path.name)
    for path in (ROOT / "services").iterdir()
    if path.is_dir() and not path.name.startswith("_")
}


def calls(service: str) -> set[str]:
    """Return the request subjects of other services that ``service`` calls."""
    ops = {op.subject for op in ALL_OPERATIONS}
    return {s for s in referenced(service) if s in ops}


def consumes(service: str) -> set[str]:
    """Return the event subjects of other services that ``service`` listens to."""
    events = {ev.subject for ev in ALL_EVENTS}
    return {s for s in referenced(service) if s in events}
