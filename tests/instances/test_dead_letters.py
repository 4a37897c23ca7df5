"""Dead letters in a real service: a poison connection event is given up, listed, survived."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys

import pytest

from libs.common.contracts import connections as cc
from libs.common.contracts import instances as c
from libs.common.contracts.base import Context
from libs.common.contracts.dead_letters import DeadLetter, DeadLetterListRequest
from libs.common.errors import Forbidden
from tests.conftest import ROOT, SYSTEM, Stack, eventually
from tests.instances.conftest import Crm


async def _cli(stack: Stack, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "libs.cli", "dead-letters", *args),
        cwd=ROOT,
        env={**os.environ, "TETHER_NATS_URL": stack.infra.nats_url},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode()


async def test_poison_connection_event_becomes_a_dead_letter(stack: Stack, crm: Crm) -> None:
    marker = secrets.token_hex(8)
    await stack.bus.js.publish(
        cc.CONNECTION_CREATED.subject,
        json.dumps({"marker": marker, "connectionId": "not-a-uuid"}).encode(),
        headers={"Nats-Msg-Id": marker},
    )
    found: list[DeadLetter] = []

    async def listed() -> bool:
        page = await stack.bus.call(
            c.DEAD_LETTERS_LIST, DeadLetterListRequest(ctx=SYSTEM, limit=1000)
        )
        found[:] = [d for d in page.items if marker in d.payload]
        return bool(found)

    await eventually(listed)
    [letter] = found
    assert (letter.subject, letter.deliveries) == (cc.CONNECTION_CREATED.subject, 1)
    assert letter.consumer == "instances-connection-events"
    assert letter.gave_up_at is not None
    assert letter.error.startswith("unreadable event: ")
    # The consumer goes on: a real connection after the poison one still deploys.
    connection_id = await crm.connect("after-poison")
    assert (await crm.settled(connection_id))["status"] == "succeeded"
    # Operators only.
    admin = Context(workspace_id=crm.ws.id, principal="admin", request_id="t")
    with pytest.raises(Forbidden):
        await stack.bus.call(c.DEAD_LETTERS_LIST, DeadLetterListRequest(ctx=admin))
    code, out = await _cli(stack, "--service", "instances", "--json")
    assert code == 0, out
    [row] = [r for r in json.loads(out) if marker in r["payload"]]
    assert (row["service"], row["streamSeq"]) == ("instances", letter.stream_seq)
    code, out = await _cli(stack, "--limit", "1000")
    assert code == 0, out
    assert f"seq {letter.stream_seq}  {cc.CONNECTION_CREATED.subject}" in out
    assert f"error    {letter.error}" in out
