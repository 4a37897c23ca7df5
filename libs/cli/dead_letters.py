"""``tether dead-letters``: list the events the services' consumers gave up on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from libs.common.bus import Bus, connect
from libs.common.contracts.base import Context
from libs.common.contracts.dead_letters import (
    DeadLetter,
    DeadLetterListRequest,
    dead_letters_operation,
)
from libs.common.errors import TetherError

SYSTEM = Context(principal="system", request_id="cli-dead-letters")
PAYLOAD_SHOWN = 300
"""Characters of a payload the plain listing shows (``--json`` shows what is stored)."""


@dataclass(frozen=True)
class Listing:
    """What each service answered, and the services that did not."""

    letters: list[tuple[str, DeadLetter]]
    failures: dict[str, str]


async def fetch(
    nats_url: str, services: Sequence[str], *, include_retrying: bool, limit: int
) -> Listing:
    """Ask each service for its newest ``limit`` dead letters."""
    nc = await connect(nats_url, "tether-cli")
    letters: list[tuple[str, DeadLetter]] = []
    failures: dict[str, str] = {}
    try:
        bus = Bus(nc)
        for service in services:
            request = DeadLetterListRequest(
                include_retrying=include_retrying, limit=limit, ctx=SYSTEM
            )
            try:
                page = await bus.call(dead_letters_operation(service), request)
            except TetherError as exc:
                failures[service] = f"{exc.message} ({exc.code})"
                continue
            letters.extend((service, letter) for letter in page.items)
    finally:
        await nc.close()
    return Listing(letters, failures)


def print_letters(letters: Sequence[tuple[str, DeadLetter]], say: Callable[[str], None]) -> None:
    """Print one block per dead letter, with its error, newest failure first."""
    if not letters:
        say("no dead letters")
        return
    for service, d in sorted(letters, key=lambda sd: sd[1].last_failed_at, reverse=True):
        state = (
            f"gave up {_at(d.gave_up_at)}"
            if d.gave_up_at
            else f"still retrying, last failed {_at(d.last_failed_at)}"
        )
        say(f"{service}  {d.consumer}  seq {d.stream_seq}  {d.subject or '(gone from stream)'}")
        say(f"  {state} after {d.deliveries} deliveries, first failed {_at(d.first_failed_at)}")
        say(f"  event    {d.event_id or '-'}  workspace {d.workspace_id or '-'}")
        say(f"  error    {d.error}")
        shown = d.payload if len(d.payload) <= PAYLOAD_SHOWN else d.payload[:PAYLOAD_SHOWN] + "…"
        say(f"  payload  {shown!r} ({d.payload_size} bytes)")


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
