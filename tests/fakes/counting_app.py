"""A fake external app that counts requests per ``Idempotency-Key`` and fails on command.

Tests start one (``async with CountingApp() as app:``), point a flow's http-request node at
``app.url + "/anything"`` (or connect the ``counting`` integration to it for api-request
nodes), turn the knobs per path, then read what arrived::

    app.fail("/orders", 500, times=2)        # the next two calls answer 500
    app.fail("/orders", 429, retry_after="3")
    app.slow("/orders", 5.0)                  # answer after 5 s (until stopped)
    app.text("/page", "<p>hi</p>", "text/html")
    app.redirect("/old", app.url + "/new")
    app.count("run-1:send")                   # requests that carried this key
    app.bodies("/orders")                     # JSON bodies received, in order

Any other path answers 200 with ``{"ok": true, "path", "method", "query", "body"}``. With an
``api_key`` set, requests without ``X-Api-Key: <key>`` get 401 (the connection's credential).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import LocalServer


@dataclass
class Failure:
    """What a path answers instead of 200, ``times`` more times (None: until cleared)."""

    status: int
    times: int | None
    retry_after: str | None = None
    body: Any = field(default_factory=lambda: {"message": "failed on purpose"})


@dataclass(frozen=True)
class Received:
    """One request the app received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    idempotency_key: str | None


class CountingApp(LocalServer):
    """Serve any path on 127.0.0.1, count per Idempotency-Key, fail or stall when told."""

    def __init__(self, *, api_key: str | None = None) -> None:
        """Configure the fake; nothing listens until :meth:`start`."""
        super().__init__()
        self.api_key = api_key
        self.received: list[Received] = []
        self._failures: dict[str, Failure] = {}
        self._delays: dict[str, float] = {}
        self._redirects: dict[str, tuple[int, str]] = {}
        self._texts: dict[str, tuple[str, str]] = {}
        self._stopping: asyncio.Event | None = None

    # -- knobs -------------------------------------------------------------------------------

    def fail(
        self,
        path: str,
        status: int,
        *,
        times: int | None = 1,
        retry_after: str | None = None,
        body: Any = None,
    ) -> None:
        """Answer ``status`` on ``path`` the next ``times`` calls (None: until :meth:`clear`)."""
        failure = Failure(status, times, retry_after)
        if body is not None:
            failure.body = body
        self._failures[path] = failure

    def slow(self, path: str, seconds: float) -> None:
        """Answer ``path`` only after ``seconds`` (stopping the app releases the wait)."""
        self._delays[path] = seconds

    def text(self, path: str, body: str, content_type: str = "text/plain") -> None:
        """Answer ``path`` with 200 and ``body`` as ``content_type`` (not JSON)."""
        self._texts[path] = (body, content_type)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer ``path`` with a redirect to ``location``."""
        self._redirects[path] = (status, location)

    def clear(self, path: str | None = None) -> None:
        """Forget every knob set for ``path`` (for every path: None)."""
        knobs: dict[str, Any]
        for knobs in (self._failures, self._delays, self._redirects, self._texts):
            if path is None:
                knobs.clear()
            else:
                knobs.pop(path, None)

    # -- what arrived --------------------------------------------------------------------------

    def count(self, idempotency_key: str) -> int:
        """Return how many requests carried ``idempotency_key``."""
        return sum(1 for r in self.received if r.idempotency_key == idempotency_key)

    def counts(self) -> Counter[str | None]:
        """Return the number of requests per Idempotency-Key (None: requests without one)."""
        return Counter(r.idempotency_key for r in self.received)

    def bodies(self, path: str | None = None) -> list[Any]:
        """Return the bodies received (on ``path``), oldest first."""
        return [r.body for r in self.received if path is None or r.path == path]

    def on(self, path: str) -> list[Received]:
        """Return the requests received on ``path``, oldest first."""
        return [r for r in self.received if r.path == path]

    def integration(self, key: str = "counting") -> dict[str, Any]:
        """Return the body that creates an API-key integration calling this app."""
        return {
            "key": key,
            "name": "Counting app",
            "auth": {"type": "api_key"},
            "api": {"baseUrl": self.url + "/api", "headers": {"X-Api-Key": "{apiKey}"}},
        }

    # -- serving -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the stop signal, then serve."""
        self._stopping = asyncio.Event()
        await super().start()

    def before_stop(self) -> None:
        """Release any slow answer so shutdown does not wait for it."""
        if self._stopping is not None:
            self._stopping.set()

    def build(self) -> web.Application:
        """Return the catch-all route (served by :class:`LocalServer`)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        return app

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        path = request.path
        self.received.append(
            Received(
                method=request.method,
                path=path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                idempotency_key=request.headers.get("Idempotency-Key"),
            )
        )
        if self.api_key is not None and request.headers.get("X-Api-Key") != self.api_key:
            return web.json_response({"message": "bad api key"}, status=401)
        delay = self._delays.get(path)
        if delay and self._stopping is not None:
            with contextlib.suppress(TimeoutError):  # the delay ran out: answer now
                await asyncio.wait_for(self._stopping.wait(), delay)
        if redirect := self._redirects.get(path):
            status, location = redirect
            return web.Response(status=status, headers={"Location": location})
        failure = self._failures.get(path)
        if failure is not None:
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    del self._failures[path]
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            return web.json_response(failure.body, status=failure.status, headers=headers)
        if canned := self._texts.get(path):
            return web.Response(body=canned[0].encode(), content_type=canned[1])
        return web.json_response(
            {
                "ok": True,
                "path": path,
                "method": request.method,
                "query": dict(request.query),
                "body": body,
            },
            headers={"X-Counting": "yes"},
        )
