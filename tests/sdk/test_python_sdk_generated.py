"""The SDK's generated modules follow the live API: a new route cannot be missed."""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import tether_client
from tether_client import _async_resources, _operations, _resources

from tests.conftest import ROOT, Stack

SDK = ROOT / "sdk" / "python"


def generator() -> ModuleType:
    """Import ``sdk/python/tools/generate.py`` (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(
        "tether_sdk_generate", SDK / "tools" / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


async def live_openapi(stack: Stack) -> dict[str, object]:
    """Return the running gateway's ``/openapi.json``."""
    async with aiohttp.ClientSession() as http, http.get(f"{stack.gateway_url}/openapi.json") as r:
        assert r.status == 200, await r.text()
        doc: dict[str, object] = await r.json()
        return doc


async def test_python_sdk_generated_code_matches_the_live_openapi(stack: Stack) -> None:
    """Regenerating from the live document changes nothing in the committed modules."""
    generated = generator().generate(await live_openapi(stack))
    package = Path(tether_client.__file__).parent
    stale = []
    for name, source in generated.items():
        committed = (package / name).read_text()
        if committed != source:
            diff = difflib.unified_diff(
                committed.splitlines(), source.splitlines(), name, f"{name} (live)", lineterm=""
            )
            stale.append("\n".join(list(diff)[:40]))
    assert not stale, (
        "the SDK is out of date with the API; with a stack running (make run), regenerate it:\n"
        "  .venv/bin/python sdk/python/tools/generate.py --openapi http://127.0.0.1:8080/openapi.json\n"
        + "\n".join(stale)
    )


async def test_python_sdk_every_backend_route_has_a_method(stack: Stack) -> None:
    """Each route a token may call is an operation of the SDK.

    An alias route (the same operation id under another path) shares its original's
    method; the proxy's one method takes every HTTP method of its path.
    """
    doc = await live_openapi(stack)
    described = {
        (op.method, op.path)
        for op in vars(_operations).values()
        if isinstance(op, tether_client._transport.Operation)
    }
    paths = doc["paths"]
    assert isinstance(paths, dict)
    routes = [
        (method.upper(), path, op)
        for path, item in paths.items()
        for method, op in item.items()
        if "security" in op  # public pages and inbound webhooks are not for backends
    ]
    generated_ids = {
        op["operationId"] for method, path, op in routes if (method, path) in described
    }
    described_paths = {path for _, path in described}
    missing = [
        f"{method} {path}"
        for method, path, op in routes
        if (method, path) not in described
        and op["operationId"] not in generated_ids
        and not (path in described_paths and not _answers_json(op))
    ]
    assert not missing
    assert len(described) > 100


def _answers_json(op: dict[str, Any]) -> bool:
    return any(status.startswith("2") for status in op["responses"])


def test_python_sdk_sync_and_async_resources_match() -> None:
    """Both clients have the same resources, methods and parameters."""
    sync_classes = {
        name: cls
        for name, cls in vars(_resources).items()
        if name.endswith("Resource") and inspect.isclass(cls)
    }
    for name, cls in sync_classes.items():
        twin = getattr(_async_resources, f"Async{name}")
        methods = {n for n in vars(cls) if not n.startswith("_")}
        assert methods == {n for n in vars(twin) if not n.startswith("_")}, name
        for method in methods:
            sync_params = inspect.signature(getattr(cls, method)).parameters
            async_params = inspect.signature(getattr(twin, method)).parameters
            assert list(sync_params) == list(async_params), f"{name}.{method}"
            assert inspect.iscoroutinefunction(getattr(twin, method)) or inspect.isasyncgenfunction(
                getattr(twin, method)
            )
