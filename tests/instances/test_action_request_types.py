"""The action request catalogue: who may read it, and a schema that fits ActionRequestSpec."""

from __future__ import annotations

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from libs.common.contracts import actions as c
from libs.common.contracts.schemas import EXPRESSION
from tests.conftest import WorkspaceHandle, bearer


async def test_action_request_types_need_a_token_and_fit_the_spec(
    http: aiohttp.ClientSession, workspace: WorkspaceHandle
) -> None:
    async with http.get(workspace.url("/action-request-types")) as resp:
        assert resp.status == 401, await resp.text()
    token = await workspace.admin_token()
    async with http.get(workspace.url("/action-request-types"), headers=bearer(token)) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    [item] = body["items"]
    assert (item["type"], item["title"]) == ("http", "App API request")
    schema = item["schema"]
    Draft202012Validator.check_schema(schema)
    assert [k for k, p in schema["properties"].items() if p.get(EXPRESSION)] == [
        "path",
        "query",
        "headers",
        "body",
    ]
    good = {
        "method": "POST",
        "path": "/contacts/{{ input.id }}",
        "query": {"notify": True},
        "headers": {"X-Source": "tether"},
        "body": {"name": {"$expr": "input.name"}},
    }
    bad = {"method": "FETCH", "path": "contacts"}
    validator = Draft202012Validator(schema)
    assert not list(validator.iter_errors(good))
    assert {e.path[0] for e in validator.iter_errors(bad)} == {"method", "path"}
    c.ActionRequestSpec.model_validate(good)
    with pytest.raises(ValidationError):
        c.ActionRequestSpec.model_validate(bad)
