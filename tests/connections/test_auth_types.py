"""The integration auth type catalogue: who may read it, and schemas that fit the auth specs."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, TypeAdapter

from libs.common.contracts import connections as c
from libs.common.contracts.schemas import humanize, publish
from tests.conftest import WorkspaceHandle, bearer

AUTH_EXAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "oauth2": (
        {
            "type": "oauth2",
            "authorizeUrl": "https://crm.example.com/oauth/authorize",
            "tokenUrl": "https://crm.example.com/oauth/token",
            "scopes": ["contacts.read", "contacts.write"],
            "authorizeParams": {"prompt": "consent"},
            "pkce": False,
            "clientAuth": "client_secret_basic",
        },
        {"type": "oauth2", "authorizeUrl": "not a url", "tokenUrl": "https://x.example"},
    ),
    "client_credentials": (
        {"type": "client_credentials", "tokenUrl": "https://crm.example.com/token"},
        {"type": "client_credentials", "tokenUrl": "https://x.example", "defaultTokenLifetime": 5},
    ),
    "api_key": ({"type": "api_key"}, {"type": "api_key", "form": "apiKey"}),
    "basic": ({"type": "basic", "form": c.BASIC_FORM}, {"type": "basic", "username": "ada"}),
}


async def test_auth_types_need_a_token(
    http: aiohttp.ClientSession, workspace: WorkspaceHandle
) -> None:
    async with http.get(workspace.url("/integration-auth-types")) as resp:
        assert resp.status == 401, await resp.text()
    token = await workspace.customer_token("cus-1")
    async with http.get(workspace.url("/integration-auth-types"), headers=bearer(token)) as resp:
        assert resp.status == 200, await resp.text()


async def test_auth_types_schemas_take_real_specs_and_refuse_bad_ones(
    http: aiohttp.ClientSession, workspace: WorkspaceHandle
) -> None:
    token = await workspace.admin_token()
    async with http.get(workspace.url("/integration-auth-types"), headers=bearer(token)) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    items = {item["type"]: item for item in body["items"]}
    assert list(items) == ["oauth2", "client_credentials", "api_key", "basic"]
    assert items["oauth2"]["title"] == "OAuth 2.0 (authorization code)"
    oauth = items["oauth2"]["schema"]
    assert oauth["title"] == "OAuth 2.0 (authorization code)"
    assert oauth["properties"]["tokenUrl"]["title"] == "Token URL"
    assert oauth["properties"]["pkce"]["default"] is True
    spec = TypeAdapter(c.AuthSpec)
    for kind, (good, bad) in AUTH_EXAMPLES.items():
        schema = items[kind]["schema"]
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(schema)
        assert not list(validator.iter_errors(good)), (kind, good)
        assert list(validator.iter_errors(bad)), (kind, bad)
        spec.validate_python(good)
    # An integration created from the example works with the API too.
    async with http.post(
        workspace.url("/integrations"),
        json={"key": "crm", "name": "CRM", "auth": AUTH_EXAMPLES["oauth2"][0]},
        headers=bearer(token),
    ) as resp:
        assert resp.status == 201, await resp.text()


class _WithSecret(BaseModel):
    client_id: str
    client_secret: str
    admin_password: str | None = None


def test_auth_types_publish_marks_secrets_and_names_fields() -> None:
    schema = publish(_WithSecret, title="With a secret")
    props = schema["properties"]
    assert props["client_secret"]["writeOnly"] is True
    assert props["client_secret"]["format"] == "password"
    assert props["admin_password"]["writeOnly"] is True
    assert "writeOnly" not in props["client_id"]
    assert props["client_id"]["title"] == "Client ID"
    assert schema["title"] == "With a secret"


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("actionKey", "Action key"),
        ("url", "URL"),
        ("http-request", "HTTP request"),
        ("client_credentials", "Client credentials"),
        ("appEventTypeKey", "App event type key"),
    ],
)
def test_auth_types_humanize_names(name: str, label: str) -> None:
    assert humanize(name) == label
