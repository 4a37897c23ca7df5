"""A workspace backend receiving Tether's notifications: verifies them with svix, misbehaves on cue.

Each path ``/hooks/<name>`` is one receiver with its own behaviour (:class:`Behaviour`:
answer a status, a ``Retry-After``, wait before answering, or drop the connection) and
its own secrets. Every request is kept (:class:`Received`) with whether ``svix``'s
Standard Webhooks verifier accepted it under each secret the receiver knows — the check
is svix's code, not ours.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from svix.webhooks import Webhook, WebhookVerificationError

from tests.fakes.server import LocalServer


@dataclass
class Behaviour:
    """How one receiver answers."""

    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0
    drop: bool = False
    """Close the connection without answering (a network error)."""


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    webhook_id: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified: dict[str, bool]
    """Per secret the receiver knows: did svix accept the message under it."""
    at: float
    answered: int | None


@dataclass
class Hook:
    """One receiver's state."""

    behaviour: Behaviour = field(default_factory=Behaviour)
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def ids(self) -> list[str]:
        """Return the webhook-ids received, in order (repeats included)."""
        return [r.webhook_id for r in self.received]

    def accepted(self) -> list[Received]:
        """Return the requests answered 2xx."""
        return [r for r in self.received if r.answered is not None and r.answered < 300]


def verify(secret: str, raw: bytes, headers: dict[str, str]) -> bool:
    """Tell whether svix's verifier accepts the message under ``secret``."""
    try:
        Webhook(secret).verify(raw, headers)
    except WebhookVerificationError:
        return False
    return True


class WebhookReceiver(LocalServer):
    """Receivers at ``/hooks/<name>``; ``hook(name)`` configures and reads one."""

    def __init__(self) -> None:
        super().__init__()
        self.hooks: dict[str, Hook] = {}
        self._release = asyncio.Event()

    def hook(self, name: str) -> Hook:
        """Return (creating it) the receiver ``name``."""
        return self.hooks.setdefault(name, Hook())

    def url_of(self, name: str) -> str:
        """Return the URL of receiver ``name``."""
        self.hook(name)
        return f"{self.url}/hooks/{name}"

    def build(self) -> web.Application:
        """Return the application."""
        app = web.Application()
        app.router.add_post("/hooks/{name}", self._receive)
        return app

    def before_stop(self) -> None:
        """Let slow handlers go."""
        self._release.set()

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        hook = self.hook(request.match_info["name"])
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        behaviour = hook.behaviour
        answered: int | None = None if behaviour.drop else behaviour.status
        hook.received.append(
            Received(
                webhook_id=headers.get("webhook-id", ""),
                headers=headers,
                body=json.loads(raw) if raw else {},
                verified={s: verify(s, raw, headers) for s in hook.secrets},
                at=time.monotonic(),
                answered=answered,
            )
        )
        if behaviour.delay:
            try:
                async with asyncio.timeout(behaviour.delay):
                    await self._release.wait()
            except TimeoutError:
                pass
        if behaviour.drop:
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPBadRequest  # never written: the connection is gone
        extra = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
        return web.json_response({"ok": answered == 200}, status=behaviour.status, headers=extra)
