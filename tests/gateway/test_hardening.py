"""Hardening (#11): hostile input gets a clear 4xx JSON error, never a 500 or a half-write."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Stack, WorkspaceFactory, WorkspaceHandle, another_gateway, bearer
from tests.fakes.any_app import AnyApp


@pytest.fixture(scope="module")
async def roomy_url(stack: Stack) -> AsyncIterator[str]:
    """A second gateway in front of the session's services, with the default 1 MiB body limit."""
    async with another_gateway(stack.infra) as (_, url):
        yield url


async def _send(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    raw: bytes | str,
    headers: dict[str, str],
) -> tuple[int, dict[str, Any]]:
    """Send ``raw`` as a JSON body; return the status and the JSON answer."""
    data = raw.encode() if isinstance(raw, str) else raw
    async with http.request(
        method, url, data=data, headers={**headers, "Content-Type": "application/json"}
    ) as resp:
        assert resp.content_type == "application/json", await resp.text()
        return resp.status, await resp.json()


async def _admin(ws: WorkspaceHandle) -> dict[str, str]:
    return bearer(await ws.admin_token())


async def _integration(http: aiohttp.ClientSession, ws: WorkspaceHandle, key: str) -> None:
    body = {"key": key, "name": "CRM", "auth": {"type": "api_key"}}
    async with http.post(ws.url("/integrations"), json=body, headers=await _admin(ws)) as resp:
        assert resp.status == 201, await resp.text()


async def _flow(http: aiohttp.ClientSession, ws: WorkspaceHandle, admin: dict[str, str]) -> str:
    """Create a universal API-triggered flow ``f`` and return its id."""
    flow = {"key": "f", "level": "universal", "name": "F", "trigger": {"type": "api"}}
    async with http.post(ws.url("/flows"), json=flow, headers=admin) as resp:
        assert resp.status == 201, await resp.text()
        flow_id: str = (await resp.json())["id"]
    return flow_id


def _fields(error: dict[str, Any], code: str = "invalid_input") -> list[str]:
    """Return the fields a 422 names, checking its code (no value is ever quoted back)."""
    assert error["code"] == code, error
    return [d["field"] for d in error.get("details") or []]


async def _refused(resp: aiohttp.ClientResponse, code: str = "invalid_input") -> list[str]:
    """Check that ``resp`` is a 422 with ``code``; return the fields it names."""
    assert resp.status == 422, await resp.text()
    return _fields((await resp.json())["error"], code)


# --- 1, 2: malformed and absurdly nested JSON --------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,  # 100 KB of nothing but nesting: the parser's recursion, not ours
        b'{"a":' * 50_000,
        b'{"id": "c", "fields": ' + b'{"a": ' * 100 + b"1" + b"}" * 101,
    ],
    ids=["arrays", "objects", "parseable-but-too-deep"],
)
async def test_gateway_deep_nesting_is_malformed_json(
    roomy_url: str, workspace: WorkspaceHandle, http: aiohttp.ClientSession, raw: bytes
) -> None:
    admin = await _admin(workspace)
    status, body = await _send(http, "POST", roomy_url + "/customers", raw, admin)
    assert status == 400, body
    assert body["error"]["code"] == "malformed_json"


@pytest.mark.parametrize("raw", [b'{"id": ', b"{'id': 'c'}", b'{"id": "\xff"}', b"nul"])
async def test_gateway_malformed_json_is_400(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, raw: bytes
) -> None:
    admin = await _admin(workspace)
    status, body = await _send(http, "POST", workspace.url("/customers"), raw, admin)
    assert status == 400, body
    assert body["error"]["code"] == "malformed_json"


async def test_gateway_well_formed_but_invalid_stays_422(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = await _admin(workspace)
    status, body = await _send(http, "POST", workspace.url("/customers"), '["c"]', admin)
    assert status == 422, body
    assert _fields(body["error"]) == ["(body)"]
    status, body = await _send(http, "POST", workspace.url("/customers"), '{"id": 5}', admin)
    assert status == 422, body
    assert _fields(body["error"]) == ["id"]


# --- 3: NUL and lone surrogates, in bodies, keys, queries and paths -----------------------

BAD_STRINGS = ["nul\u0000byte", "lone\udb09surrogate"]


@pytest.mark.parametrize("bad", BAD_STRINGS, ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/customers", {"id": "c-1", "name": "{bad}"}, "name"),
        ("POST", "/customers", {"id": "c-1", "fields": {"{bad}": 1}}, "fields.{bad}"),
        ("POST", "/customers", {"id": "c-1", "fields": {"tags": ["ok", "{bad}"]}}, "fields.tags.1"),
        (
            "POST",
            "/flows",
            {"key": "f", "level": "universal", "name": "{bad}", "trigger": {"type": "api"}},
            "name",
        ),
        (
            "POST",
            "/integrations",
            {"key": "i", "auth": {"type": "api_key"}, "test": {"path": "/{bad}"}},
            "test.path",
        ),
        (
            "POST",
            "/integrations",
            {"key": "i", "auth": {"type": "api_key"}, "api": {"baseUrl": "https://{bad}"}},
            "api.baseUrl",
        ),
    ],
)
async def test_gateway_refuses_nul_and_surrogates_in_bodies(
    workspace: WorkspaceHandle,
    http: aiohttp.ClientSession,
    bad: str,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    admin = await _admin(workspace)
    raw = json.dumps(body).replace("{bad}", json.dumps(bad)[1:-1])  # \u escapes, valid UTF-8
    status, answer = await _send(http, method, workspace.url(path), raw, admin)
    assert status == 422, answer
    error = answer["error"]
    assert error["code"] == "invalid_input"
    shown = field.replace("{bad}", json.dumps(bad)[1:-1])  # a bad key is named by its escape
    assert shown in _fields(error), error
    assert shown in error["message"]
    # Nothing was written: the customer, flow or integration does not exist (the
    # workspace's own test customer is there from its start).
    async with http.get(workspace.url(path), headers=admin) as resp:
        assert resp.status == 200, await resp.text()
        items = (await resp.json())["items"]
        assert [i for i in items if i.get("id") != "test-customer"] == []


async def test_gateway_refuses_nul_in_query_and_path(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = await _admin(workspace)
    async with http.get(workspace.url("/customers?search=a%00b"), headers=admin) as resp:
        assert await _refused(resp) == ["search"]
    async with http.get(workspace.url("/customers/a%00b"), headers=admin) as resp:
        assert await _refused(resp) == ["id"]


async def test_gateway_bad_patch_leaves_the_customer_as_it_was(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = await _admin(workspace)
    created = {"id": "c-1", "name": "Ada", "fields": {"plan": "pro"}}
    async with http.post(workspace.url("/customers"), json=created, headers=admin) as resp:
        assert resp.status == 201, await resp.text()
    raw = '{"name": "Grace", "fields": {"plan": "free", "bad\\u0000key": 1}}'
    status, body = await _send(http, "PATCH", workspace.url("/customers/c-1"), raw, admin)
    assert status == 422, body
    assert _fields(body["error"]) == ["fields.bad\\u0000key"]
    async with http.get(workspace.url("/customers/c-1"), headers=admin) as resp:
        stored = await resp.json()
    assert (stored["name"], stored["fields"]) == ("Ada", {"plan": "pro"})


# --- 4, 5: integers beyond the columns, non-finite numbers --------------------------------


async def test_gateway_huge_revision_in_path_is_refused(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = await _admin(workspace)
    url = workspace.url(f"/flows/{uuid.uuid4()}/revisions/1134178685997115")
    async with http.get(url, headers=admin) as resp:
        assert await _refused(resp) == ["n"]


async def test_gateway_huge_revision_in_body_is_refused(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = await _admin(workspace)
    flow_id = await _flow(http, workspace, admin)
    for revision in (2**31, 2**63):
        async with http.patch(
            workspace.url(f"/flows/{flow_id}"),
            json={"revision": revision, "name": "G"},
            headers=admin,
        ) as resp:
            assert await _refused(resp) == ["revision"]
    async with http.patch(
        workspace.url(f"/flows/{flow_id}"),
        json={"name": "G"},
        headers={**admin, "If-Match": "9" * 20},
    ) as resp:
        assert await _refused(resp) == ["revision"]


@pytest.mark.parametrize(
    ("number", "field"),
    [
        ("NaN", "fields.n"),
        ("Infinity", "fields.n"),
        ("-Infinity", "fields.n"),
        ("1e999", "fields.n"),
        (str(2**64), "fields.n"),
        (str(-(2**70)), "fields.n"),
    ],
)
async def test_gateway_refuses_non_finite_and_huge_numbers(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, number: str, field: str
) -> None:
    admin = await _admin(workspace)
    raw = f'{{"id": "c-n", "fields": {{"n": {number}}}}}'
    status, body = await _send(http, "POST", workspace.url("/customers"), raw, admin)
    assert status == 422, body
    assert _fields(body["error"]) == [field]
    async with http.get(workspace.url("/customers/c-n"), headers=admin) as resp:
        assert resp.status == 404


# --- 6: a form without a boundary ---------------------------------------------------------


async def test_gateway_connect_form_without_boundary_is_400(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        stack.gateway_url + "/connect/" + "t" * 32,
        data=b"apiKey=x",
        headers={"Content-Type": "multipart/form-data"},
    ) as resp:
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["error"]["code"] == "malformed_form"


@pytest.mark.parametrize(
    "path", ["/customers", "/webhooks/" + "w" * 32, "/connections/{id}/proxy/things"]
)
async def test_gateway_body_in_a_broken_encoding_is_400(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, path: str
) -> None:
    """``Content-Encoding: gzip`` over bytes that are not gzip: aiohttp cannot read the body."""
    path = path.replace("{id}", str(uuid.uuid4()))
    headers = {
        **await _admin(workspace),
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    async with http.post(
        workspace.url(path), data=b"not gzip at all", headers=headers, compress=None
    ) as resp:
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["error"]["code"] == "malformed_body"


# --- 7: oversized headers -----------------------------------------------------------------

SECRETISH = "S3CR3T-"


@pytest.mark.parametrize(
    ("size", "code"),
    [(10_000, "token_malformed"), (20_000, "token_too_long"), (60_000, "token_too_long")],
)
async def test_gateway_oversized_token_is_json_401(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, size: int, code: str
) -> None:
    token = (SECRETISH * (size // len(SECRETISH) + 1))[:size]
    async with http.get(workspace.url("/workspace"), headers=bearer(token)) as resp:
        text = await resp.text()
        assert resp.status == 401, text[:300]
        assert resp.content_type == "application/json"
    assert json.loads(text)["error"]["code"] == code
    assert SECRETISH not in text


async def test_gateway_token_of_raw_bytes_is_401(stack: Stack) -> None:
    """Header bytes that are not UTF-8 reach us as surrogates; they are no JWT, and no 500."""
    host, port = stack.gateway_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /workspace HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Connection: close\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), answer
    assert json.loads(body)["error"]["code"] == "token_malformed"


async def test_gateway_large_other_header_is_ignored(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.get(stack.gateway_url + "/healthz", headers={"X-Big": "v" * 40_000}) as resp:
        assert resp.status == 200, await resp.text()


async def test_gateway_header_over_the_parser_limit_is_not_logged(
    stack: Stack, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Past what the HTTP parser takes, aiohttp answers by itself; its log line quotes nothing."""
    token = SECRETISH * 20_000
    with caplog.at_level(logging.DEBUG):
        async with http.get(stack.gateway_url + "/workspace", headers=bearer(token)) as resp:
            assert resp.status == 400
    assert caplog.records, "aiohttp should log the refused request"
    assert all(SECRETISH not in r.getMessage() and not r.exc_info for r in caplog.records)


# --- 8: no Server header ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/healthz", "/no/such/route", "/workspace", "/console/", "/console/static/style.css"]
)
async def test_gateway_does_not_name_its_software(
    stack: Stack, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(stack.gateway_url + path) as resp:
        assert "Server" not in resp.headers, (resp.status, resp.headers["Server"])


# --- 9: deployments of a connection the caller cannot see ---------------------------------


async def test_gateway_deployments_of_unknown_connection_are_404(
    make_workspace: WorkspaceFactory, http: aiohttp.ClientSession
) -> None:
    owner, other = await make_workspace(), await make_workspace()
    await _integration(http, owner, "crm")
    body = {"customerId": "c-1", "integrationKey": "crm", "credentials": {"apiKey": "k"}}
    async with http.post(owner.url("/connections"), json=body, headers=await _admin(owner)) as resp:
        assert resp.status == 201, await resp.text()
        connection_id = (await resp.json())["id"]
    path = f"/connections/{connection_id}/deployments"
    async with http.get(owner.url(path), headers=await _admin(owner)) as resp:
        assert resp.status == 200, await resp.text()
    for ws, who in (
        (other, await _admin(other)),
        (owner, bearer(await owner.customer_token("c-2"))),
    ):
        async with http.get(ws.url(path), headers=who) as resp:
            assert resp.status == 404, await resp.text()
            assert (await resp.json())["error"]["code"] == "not_found"
    missing = f"/connections/{uuid.uuid4()}/deployments"
    async with http.get(owner.url(missing), headers=await _admin(owner)) as resp:
        assert resp.status == 404, await resp.text()


# --- found by the fuzzer (test_fuzz.py) ---------------------------------------------------


async def test_gateway_patch_cannot_null_what_a_flow_needs(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    admin = await _admin(workspace)
    flow_id = await _flow(http, workspace, admin)
    for field in ("name", "trigger", "nodes", "autoDeploy"):
        async with http.patch(
            workspace.url(f"/flows/{flow_id}"), json={"revision": 1, field: None}, headers=admin
        ) as resp:
            assert await _refused(resp) == [field]
    async with http.patch(
        workspace.url(f"/flows/{flow_id}"), json={"revision": 1, "parameters": None}, headers=admin
    ) as resp:
        assert resp.status == 200, await resp.text()  # parameters may be cleared


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"level": "app", "integrationKey": "Not A Key", "trigger": {"type": "api"}},
            "integrationKey",
        ),
        (
            {
                "level": "app",
                "integrationKey": "crm",
                "trigger": {"type": "app-event", "appEventTypeKey": "Not A Key"},
            },
            "trigger.app-event.appEventTypeKey",
        ),
        (
            {
                "level": "app",
                "integrationKey": "crm",
                "trigger": {"type": "data-record-created", "dataSourceKey": "x" * 65},
            },
            "trigger.data-record-created.dataSourceKey",
        ),
    ],
)
async def test_gateway_flow_references_must_be_keys(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, body: dict[str, Any], field: str
) -> None:
    admin = await _admin(workspace)
    await _integration(http, workspace, "crm")
    flow = {"key": "f", "name": "F", **body}
    async with http.post(workspace.url("/flows"), json=flow, headers=admin) as resp:
        assert field in await _refused(resp)


@pytest.mark.parametrize("customer_id", ["", "c" * 257])
async def test_gateway_connect_session_customer_id_is_bounded(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, customer_id: str
) -> None:
    await _integration(http, workspace, "crm")
    body = {"integrationKey": "crm", "customerId": customer_id}
    async with http.post(
        workspace.url("/connect-sessions"), json=body, headers=await _admin(workspace)
    ) as resp:
        assert await _refused(resp) == ["customerId"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"test": {"path": "/me\u001a"}}, "test.path"),
        ({"api": {"baseUrl": "https://app.example/a b"}}, "api.baseUrl"),
        (
            {"api": {"baseUrl": "https://app.example", "headers": {"X-Key": "a\nb"}}},
            "api.headers.X-Key",
        ),
        (
            {"api": {"baseUrl": "https://app.example", "headers": {"X Key": "a"}}},
            "api.headers.X Key.[key]",
        ),
    ],
)
async def test_gateway_what_an_integration_sends_has_no_control_characters(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, change: dict[str, Any], field: str
) -> None:
    """Paths, URLs and headers go on the wire to the app later: refused when saved, by name."""
    await _integration(http, workspace, "crm")
    async with http.patch(
        workspace.url("/integrations/crm"), json=change, headers=await _admin(workspace)
    ) as resp:
        assert await _refused(resp) == [field]


async def test_gateway_proxy_path_has_no_control_characters(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    await _integration(http, workspace, "crm")
    admin = await _admin(workspace)
    body = {"customerId": "c-1", "integrationKey": "crm", "credentials": {"apiKey": "k"}}
    async with http.post(workspace.url("/connections"), json=body, headers=admin) as resp:
        assert resp.status == 201, await resp.text()
        connection_id = (await resp.json())["id"]
    url = workspace.url(f"/connections/{connection_id}/proxy/a%1Ab")
    async with http.get(url, headers=admin) as resp:
        assert await _refused(resp) == ["path"]


@pytest.mark.parametrize("ref", ["http://example.com/schema", "#/$defs/nowhere"])
async def test_gateway_fields_schema_refs_must_resolve_inside_it(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession, ref: str
) -> None:
    """A $ref out of the schema was saved, then every new customer answered 500."""
    admin = await _admin(workspace)
    schema = {"type": "object", "properties": {"plan": {"$ref": ref}}}
    async with http.patch(
        workspace.url("/workspace"),
        json={"settings": {"customerFieldsSchema": schema}},
        headers=admin,
    ) as resp:
        assert resp.status == 422, await resp.text()
        error = (await resp.json())["error"]
    assert error["code"] == "invalid_schema"
    assert _fields(error, "invalid_schema") == [
        "settings.customerFieldsSchema.properties.plan.$ref"
    ]
    schema["$defs"] = {"plan": {"enum": ["free", "pro"]}}
    schema["properties"] = {"plan": {"$ref": "#/$defs/plan"}}
    async with http.patch(
        workspace.url("/workspace"),
        json={"settings": {"customerFieldsSchema": schema}},
        headers=admin,
    ) as resp:
        assert resp.status == 200, await resp.text()
    customer = {"id": "c-1", "fields": {"plan": "gold"}}
    async with http.post(workspace.url("/customers"), json=customer, headers=admin) as resp:
        assert await _refused(resp, "invalid_fields") == ["fields.plan"]


async def test_gateway_credentials_no_header_can_carry_are_422(
    workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> None:
    """An API key holding a newline was stored, then every proxied call answered 500."""
    async with AnyApp() as app:
        admin = await _admin(workspace)
        integration = {
            "key": "crm",
            "auth": {"type": "api_key"},
            "api": {"baseUrl": app.url, "headers": {"X-Api-Key": "{apiKey}"}},
        }
        async with http.post(workspace.url("/integrations"), json=integration, headers=admin) as r:
            assert r.status == 201, await r.text()
        secret = "S3CR3T\nInjected: yes"
        body = {"customerId": "c-1", "integrationKey": "crm", "credentials": {"apiKey": secret}}
        async with http.post(workspace.url("/connections"), json=body, headers=admin) as resp:
            assert resp.status == 201, await resp.text()
            connection_id = (await resp.json())["id"]
        url = workspace.url(f"/connections/{connection_id}/proxy/things")
        async with http.get(url, headers=admin) as resp:
            text = await resp.text()
            assert resp.status == 422, text
    assert json.loads(text)["error"]["code"] == "unsendable_request"
    assert "S3CR3T" not in text
