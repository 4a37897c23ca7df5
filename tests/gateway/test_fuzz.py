"""Fuzz every route of the gateway's OpenAPI document: no input may be answered with a 5xx.

Schemathesis generates requests from ``/openapi.json`` (valid ones and, in negative mode,
ones that break the schema) and sends them to the real in-process stack, once as an admin
and once as a customer, each route in a fresh workspace seeded with one of everything, so
that generated bodies also reach existing rows (path parameters are either generated or
the seeded ids).

Schemathesis sends with ``requests``, which blocks; the stack runs in the session's event
loop. So each test runs its Hypothesis search in a worker thread (``asyncio.to_thread``)
while the loop keeps serving, and hands the loop back the little async work the thread
needs (``run_coroutine_threadsafe``). Generation is derandomized and keeps no example
database, so every run sends the same requests (it cannot be flaky);
``TETHER_FUZZ_EXAMPLES`` asks for a longer search, ``TETHER_FUZZ_SEED`` for another one.

The routes that change the workspace's own token rules (``PATCH /workspace`` with its
settings and public keys, secret rotation) come last, and every one of their examples gets
a workspace of its own: one example's new rules can never lock the next one out.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from services.gateway.openapi import build_openapi
from services.gateway.routes import ROUTES
from services.gateway.system_status import with_system_status
from tests.conftest import Stack, WorkspaceFactory, WorkspaceHandle, bearer
from tests.fakes.any_app import AnyApp

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("TETHER_FUZZ_EXAMPLES", "20"))
SEED = os.environ.get("TETHER_FUZZ_SEED")
DOC = with_system_status(build_openapi(ROUTES))
SCHEMA = schemathesis.openapi.from_dict(DOC)
TOKEN_RULES = ("PATCH /workspace", "POST /workspace/secret/rotate")
LABELS = [f"{r.method} {r.openapi_path}" for r in ROUTES] + ["GET /system/status"]
ORDINARY = [label for label in LABELS if label not in TOKEN_RULES]


@pytest.fixture(scope="module")
async def app() -> AsyncIterator[AnyApp]:
    """The app the seeded integration points at (the proxy and the test request reach it)."""
    async with AnyApp() as fake:
        yield fake


@dataclass
class Seed:
    """A workspace with one of everything, and the path parameters that name them."""

    ws: WorkspaceHandle
    admin: dict[str, str]
    customer: dict[str, str]
    ids: dict[str, dict[str, Any]] = field(default_factory=dict)

    def known(self, path: str) -> dict[str, Any]:
        """Return the seeded values of ``path``'s parameters (by its first segment)."""
        values = dict(self.ids.get(path.split("/")[1], {}))
        if path.startswith("/connections/"):
            values["connectionId"] = values["id"]
        return {k: v for k, v in values.items() if "{" + k + "}" in path}


async def _post(http: aiohttp.ClientSession, seed: Seed, path: str, body: Any) -> dict[str, Any]:
    async with http.post(seed.ws.url(path), json=body, headers=seed.admin) as resp:
        assert resp.status in (200, 201, 202), f"seeding {path}: {await resp.text()}"
        return dict(await resp.json())


async def _seed(ws: WorkspaceHandle, app_url: str) -> Seed:
    """Give ``ws`` a customer, an integration, a connection, definitions, a flow and more."""
    seed = Seed(ws, bearer(await ws.admin_token()), bearer(await ws.customer_token("c-1")))
    async with aiohttp.ClientSession() as http:
        await _post(http, seed, "/customers", {"id": "c-1", "name": "Ada", "fields": {"a": 1}})
        await _post(
            http,
            seed,
            "/integrations",
            {
                "key": "crm",
                "name": "CRM",
                "auth": {"type": "api_key"},
                "api": {"baseUrl": app_url, "headers": {"X-Api-Key": "{apiKey}"}},
                "test": {"path": "/me", "accountIdField": "id"},
            },
        )
        connection = await _post(
            http,
            seed,
            "/connections",
            {"customerId": "c-1", "integrationKey": "crm", "credentials": {"apiKey": "k-1"}},
        )
        await _post(
            http,
            seed,
            "/app-event-types",
            {
                "key": "contact-created",
                "integrationKey": "crm",
                "name": "Contact created",
                "subscribe": {"path": "/hooks", "idPath": "id"},
            },
        )
        await _post(
            http,
            seed,
            "/data-sources",
            {
                "key": "contacts",
                "integrationKey": "crm",
                "name": "Contacts",
                "fields": {"path": "/fields", "itemsPath": "fields"},
            },
        )
        flow = await _post(
            http,
            seed,
            "/flows",
            {"key": "f-1", "level": "universal", "name": "F", "trigger": {"type": "api"}},
        )
        instance = await _post(
            http, seed, "/flow-instances", {"flowId": flow["id"], "connectionId": connection["id"]}
        )
        deployment = await _post(http, seed, f"/connections/{connection['id']}/deploy", {})
        session = await _post(
            http, seed, "/connect-sessions", {"integrationKey": "crm", "customerId": "c-1"}
        )
    seed.ids = {
        "customers": {"id": "c-1"},
        "users": {"id": "c-1"},
        "integrations": {"key": "crm"},
        "connections": {"id": connection["id"]},
        "connect": {"token": session["url"].rsplit("/", 1)[-1]},
        "app-event-types": {"key": "contact-created"},
        "data-sources": {"key": "contacts"},
        "deployments": {"id": deployment["id"]},
        "flows": {"id": flow["id"], "n": 1},
        "flow-instances": {"id": instance["id"]},
    }
    return seed


@dataclass
class Finding:
    """One request that was answered with a 5xx (or not answered at all)."""

    request: str
    outcome: str


def _strategy(label: str, known: dict[str, Any]) -> st.SearchStrategy[Case[Any]]:
    """Return valid and invalid requests to ``label``, half of them naming seeded rows.

    Negative cases that only drop the token are left out: every route refuses those alike,
    and they would spend the examples that should reach the handlers.
    """
    method, path = label.split(" ", 1)
    operation = SCHEMA[path][method]
    fixed: list[dict[str, Any]] = [{}, known] if known else [{}]
    strategies: list[st.SearchStrategy[Case[Any]]] = [
        operation.as_strategy(generation_mode=mode, path_parameters=values or None).filter(
            lambda case: not SCHEMA.is_security_param_negated(case)
        )
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for values in fixed
    ]
    return st.one_of(strategies)


def _fuzz(
    label: str,
    base_url: str,
    known: dict[str, Any],
    headers: Callable[[], dict[str, str]],
) -> list[Finding]:
    """Send generated requests to ``label``; return those answered with a server error.

    Runs in a worker thread: it blocks on ``requests`` while the event loop serves.
    """
    findings: list[Finding] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=SEED is None,
        database=None,
        phases=(Phase.explicit, Phase.generate),  # report every finding, shrink none
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=_strategy(label, known))
    def run(case: Case[Any]) -> None:
        try:
            response = case.call(base_url=base_url, session=session, headers=headers(), timeout=30)
        except requests.RequestException as exc:
            findings.append(Finding(_describe(case), f"no answer: {type(exc).__name__}"))
            return
        if response.status_code >= 500:
            findings.append(
                Finding(_describe(case), f"{response.status_code} {response.text[:300]}")
            )

    search = seed(int(SEED))(run) if SEED else run
    with requests.Session() as session:
        search()
    return findings


def _describe(case: Case[Any]) -> str:
    body = case.body if isinstance(case.body, dict | list | str | int | float | None) else "…"
    shown = json.dumps(body, ensure_ascii=True, default=str)[:400]
    return f"{case.method} {case.formatted_path} query={case.query} body={shown}"


def _report(findings: list[Finding]) -> str:
    return "\n".join(f"  {f.request}\n    → {f.outcome}" for f in findings[:10])


async def test_fuzz_document_is_the_served_one(stack: Stack, http: aiohttp.ClientSession) -> None:
    """The fuzzer reads the very document the gateway serves, and it is valid OpenAPI."""
    async with http.get(stack.gateway_url + "/openapi.json") as resp:
        assert resp.status == 200
        served = await resp.json()
    assert served == json.loads(json.dumps(DOC))
    SCHEMA.validate()
    labels = sorted(op.ok().label for op in SCHEMA.get_all_operations())  # type: ignore[union-attr]  # an Err fails the test, as it should
    assert labels == sorted(LABELS)


@pytest.mark.parametrize("role", ["admin", "customer"])
@pytest.mark.parametrize("label", ORDINARY)
async def test_fuzz_route(
    label: str, role: str, make_workspace: WorkspaceFactory, stack: Stack, app: AnyApp
) -> None:
    seed = await _seed(await make_workspace(), app.url)
    auth = seed.admin if role == "admin" else seed.customer
    findings = await asyncio.to_thread(
        _fuzz, label, stack.gateway_url, seed.known(label.split(" ", 1)[1]), lambda: auth
    )
    assert not findings, f"{label} as {role}: server errors\n{_report(findings)}"


@pytest.mark.parametrize("role", ["admin", "customer"])
@pytest.mark.parametrize("label", TOKEN_RULES)
async def test_fuzz_token_rules_route(
    label: str, role: str, make_workspace: WorkspaceFactory, stack: Stack
) -> None:
    """Fuzz a route that changes how tokens verify, each example in a fresh workspace."""
    loop = asyncio.get_running_loop()

    async def fresh() -> dict[str, str]:
        ws = await make_workspace()
        return bearer(await (ws.admin_token() if role == "admin" else ws.customer_token("c-1")))

    def headers() -> dict[str, str]:
        return on_loop(fresh())

    def on_loop(coro: Coroutine[Any, Any, dict[str, str]]) -> dict[str, str]:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    findings = await asyncio.to_thread(_fuzz, label, stack.gateway_url, {}, headers)
    assert not findings, f"{label} as {role}: server errors\n{_report(findings)}"
