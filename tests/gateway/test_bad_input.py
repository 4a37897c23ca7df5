"""Bad input at the gateway gets a clear 4xx JSON error naming the problem."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import Field

from libs.common.bus import ServiceHost, connect, endpoint
from libs.common.contracts.base import Operation, Reply, Request
from services.gateway.routes import Auth, Route
from tests.conftest import Infra, start_gateway


class NoteRequest(Request):
    title: str = Field(min_length=1, max_length=50)
    size: int = 1


class NoteReply(Reply):
    title: str
    size: int


async def make_note(req: NoteRequest) -> NoteReply:
    return NoteReply(title=req.title, size=req.size)


@pytest.fixture
async def note_url(infra: Infra) -> AsyncIterator[str]:
    """A gateway with one public POST route to a throw-away service."""
    prefix = f"t{secrets.token_hex(4)}"
    op = Operation(f"tether.{prefix}.notes.create", NoteRequest, NoteReply)
    nc = await connect(infra.nats_url, "bad-input-test")
    host = ServiceHost(nc, prefix, "0.1.0", [endpoint(op, make_note)])
    await host.start()
    runner, url = await start_gateway(
        infra,
        routes=(Route("POST", "/notes", op, Auth.PUBLIC, "notes", status=201),),
        max_body_bytes=2048,
    )
    try:
        yield url + "/notes"
    finally:
        await runner.cleanup()
        await host.stop(1)
        await nc.close()


async def test_gateway_valid_body_passes(note_url: str, http: aiohttp.ClientSession) -> None:
    async with http.post(note_url, json={"title": "hi", "size": 3}) as resp:
        assert resp.status == 201, await resp.text()
        assert await resp.json() == {"title": "hi", "size": 3}


async def test_gateway_malformed_json(note_url: str, http: aiohttp.ClientSession) -> None:
    async with http.post(
        note_url, data=b'{"title": ', headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "malformed_json"
    async with http.post(note_url, json=["not", "an", "object"]) as resp:  # JSON, wrong shape
        assert resp.status == 422
        error = (await resp.json())["error"]
        assert error["code"] == "invalid_input"
        assert error["details"][0]["field"] == "(body)"


async def test_gateway_wrong_content_type(note_url: str, http: aiohttp.ClientSession) -> None:
    async with http.post(
        note_url, data="title=hi", headers={"Content-Type": "application/x-www-form-urlencoded"}
    ) as resp:
        assert resp.status == 415
        assert (await resp.json())["error"]["code"] == "unsupported_media_type"


async def test_gateway_body_too_large(note_url: str, http: aiohttp.ClientSession) -> None:
    big = {"title": "x" * 5000}
    async with http.post(note_url, json=big) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit still holds
        yield b'{"title": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    async with http.post(
        note_url, data=chunks(), headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "ok", "size": "big"}, "size"),
        ({"title": "ok", "colour": "red"}, "colour"),
        ({"title": "ok", "ctx": {"principal": "system"}}, "ctx"),
    ],
)
async def test_gateway_invalid_fields_are_named(
    note_url: str, http: aiohttp.ClientSession, body: dict[str, object], field: str
) -> None:
    async with http.post(note_url, json=body) as resp:
        assert resp.status == 422, await resp.text()
        error = (await resp.json())["error"]
    assert field in error["message"]
    assert any(d["field"] == field for d in error["details"])
