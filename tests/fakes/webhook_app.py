"""A fake external SaaS app: a webhook-subscription API, a fields endpoint and a list endpoint.

Tests start one per test (``async with FakeWebhookApp(api_key="key-123") as app:``), point the
code under test at ``app.url``, turn the knobs (queued failures, rejected events, delays, a held
subscribe call) and read the counters and records. :meth:`FakeWebhookApp.deliver` plays the app
sending a signed event to a subscription's URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.server import LocalServer

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Delivery:
    """What the receiver answered to one delivered event."""

    status: int
    body: str


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Build a JSON error answer in the app's ``{"message": ...}`` shape."""
    return web.json_response({"message": message}, status=status, headers=headers)


def _parse_json(body: bytes) -> Any:
    """Decode a JSON request body, or return None when it is empty or not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None


def _default_fields() -> list[dict[str, Any]]:
    """Return the custom fields a fresh app describes."""
    return [
        {"key": "email", "kind": "string", "title": "Email", "mandatory": True},
        {"key": "age", "kind": "integer", "title": "Age", "mandatory": False},
        {"key": "vip", "kind": "boolean", "title": "VIP", "mandatory": False},
    ]


def _default_records() -> list[dict[str, Any]]:
    """Return the records a fresh app lists, oldest first."""
    return [
        {"id": "r1", "createdAt": "2026-01-01T00:00:00Z"},
        {"id": "r2", "createdAt": "2026-01-02T00:00:00Z"},
        {"id": "r3", "createdAt": "2026-01-03T00:00:00Z"},
    ]


class FakeWebhookApp(LocalServer):
    """Serve a SaaS app's webhook, fields and records API on 127.0.0.1 with a free port."""

    def __init__(self, *, api_key: str = "key-123") -> None:
        """Configure the fake; nothing listens until :meth:`start`."""
        super().__init__()
        self.api_key = api_key
        # Knobs tests may change at any time.
        self.subscribe_failures: list[int] = []
        self.subscribe_error_message: str | None = None
        self.reject_events: set[str] = set()
        self.subscribe_delay: float = 0
        self.hold_subscribe = False
        self.unsubscribe_failures: list[int] = []
        self.fields_failures: list[int] = []
        self.records_failures: list[int] = []
        self.slow_delay: float = 5.0
        self.retry_after = "1"
        self.fields: list[dict[str, Any]] = _default_fields()
        self.records: list[dict[str, Any]] = _default_records()
        # Counters and records tests read.
        self.subscribe_calls = 0
        self.unsubscribe_calls = 0
        self.requests: list[dict[str, Any]] = []
        self.subscriptions: dict[str, dict[str, Any]] = {}
        # Set by start(): signalled when a held subscribe call has created its subscription,
        # and awaited by that call before it answers.
        self.subscribe_received: asyncio.Event
        self.release_subscribe: asyncio.Event
        # Internal state.
        self._next_id = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the hold events, then serve."""
        self.subscribe_received = asyncio.Event()
        self.release_subscribe = asyncio.Event()
        await super().start()

    def before_stop(self) -> None:
        """Release any held subscribe call so shutdown does not wait for it."""
        self.release_subscribe.set()

    def build(self) -> web.Application:
        """Return the fake app's routes (served by :class:`LocalServer`)."""

        @web.middleware
        async def gate(request: web.Request, handler: _Handler) -> web.StreamResponse:
            """Record every request and refuse those without the API key."""
            return await self._gate(request, handler)

        app = web.Application(middlewares=[gate])
        app.router.add_post("/hooks", self._subscribe)
        app.router.add_get("/hooks", self._list_hooks)
        app.router.add_delete("/hooks/{id}", self._unsubscribe)
        app.router.add_get("/fields", self._fields)
        app.router.add_get("/records", self._records)
        app.router.add_post("/slow", self._slow)
        return app

    # -- helpers for tests -------------------------------------------------------------------

    def integration(self) -> dict[str, Any]:
        """Return the body that creates integration ``crm``: this app, called with an API key."""
        return {
            "key": "crm",
            "name": "CRM",
            "auth": {"type": "api_key"},
            "api": {"baseUrl": self.url, "headers": {"X-Api-Key": "{apiKey}"}},
        }

    def sign(self, body: bytes, secret: str) -> str:
        """Compute the ``X-Hook-Signature`` value the app sends with ``body``."""
        return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    def live_urls(self) -> list[str]:
        """Return the URLs of the live subscriptions, oldest first."""
        return [sub["url"] for sub in self.subscriptions.values()]

    async def deliver(
        self,
        http: aiohttp.ClientSession,
        subscription_id: str,
        payload: dict[str, Any] | list[Any],
        *,
        delivery_id: str | None = None,
        signature: str | None = None,
        secret: str | None = None,
    ) -> Delivery:
        """POST ``payload`` to a subscription's URL as the app would deliver an event.

        The ``X-Hook-Signature`` header is ``signature`` when given, else the HMAC of the exact
        body bytes with ``secret`` (or the subscription's own secret); it is left out when no
        secret is known. Raises KeyError for an unknown subscription.
        """
        subscription = self.subscriptions[subscription_id]
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        key = secret if secret is not None else subscription.get("secret")
        if signature is not None:
            headers["X-Hook-Signature"] = signature
        elif key is not None:
            headers["X-Hook-Signature"] = self.sign(body, key)
        if delivery_id is not None:
            headers["X-Delivery-Id"] = delivery_id
        async with http.post(subscription["url"], data=body, headers=headers) as resp:
            return Delivery(status=resp.status, body=await resp.text())

    # -- plumbing ----------------------------------------------------------------------------

    async def _gate(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Record the request, check its API key, then hand it on."""
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "json": _parse_json(body),
            }
        )
        key = request.headers.get("X-Api-Key")
        if key is None or not hmac.compare_digest(key.encode(), self.api_key.encode()):
            if request.path == "/hooks" and request.method == "POST":
                self.subscribe_calls += 1
            elif request.path.startswith("/hooks/") and request.method == "DELETE":
                self.unsubscribe_calls += 1
            return _message(401, "bad api key")
        return await handler(request)

    def _failure(self, status: int, bad_request: str = "bad request") -> web.Response:
        """Build the answer for a queued failure status."""
        if status == 429:
            return _message(429, "rate limited", {"Retry-After": self.retry_after})
        if status >= 500:
            return _message(status, "internal error")
        if status == 400:
            return _message(400, bad_request)
        if status == 401:
            return _message(401, "bad api key")
        if status == 404:
            return _message(404, "not found")
        return _message(status, "request failed")

    # -- /hooks ------------------------------------------------------------------------------

    async def _subscribe(self, request: web.Request) -> web.Response:
        """Create a webhook subscription after the queued failures, rejections and delays."""
        self.subscribe_calls += 1
        if self.subscribe_failures:
            status = self.subscribe_failures.pop(0)
            return self._failure(status, self.subscribe_error_message or "unknown event type")
        body = _parse_json(await request.read())
        if not isinstance(body, dict):
            return _message(400, "body must be a JSON object")
        url = body.get("url")
        if not isinstance(url, str) or not url:
            return _message(400, "url is required")
        events = body.get("events", [])
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            return _message(400, "events must be a list of strings")
        for event in events:
            if event in self.reject_events:
                return _message(400, f"unknown event type: {event}")
        self._next_id += 1
        sub_id = f"sub_{self._next_id}"
        self.subscriptions[sub_id] = {
            "id": sub_id,
            "url": url,
            "events": events,
            "secret": body.get("secret"),
            "connection": body.get("connection"),
        }
        if self.subscribe_delay:
            await asyncio.sleep(self.subscribe_delay)
        if self.hold_subscribe:
            self.subscribe_received.set()
            await self.release_subscribe.wait()
        return web.json_response({"data": {"id": sub_id, "url": url}}, status=201)

    async def _list_hooks(self, request: web.Request) -> web.Response:
        """List the live subscriptions."""
        items = [{"id": sub["id"], "url": sub["url"]} for sub in self.subscriptions.values()]
        return web.json_response({"items": items})

    async def _unsubscribe(self, request: web.Request) -> web.Response:
        """Delete a subscription after the queued failures."""
        self.unsubscribe_calls += 1
        if self.unsubscribe_failures:
            return self._failure(self.unsubscribe_failures.pop(0))
        if self.subscriptions.pop(request.match_info["id"], None) is None:
            return _message(404, "not found")
        return web.Response(status=204)

    # -- /fields, /records, /slow ------------------------------------------------------------

    async def _fields(self, request: web.Request) -> web.Response:
        """Describe the app's custom fields."""
        if self.fields_failures:
            return self._failure(self.fields_failures.pop(0))
        return web.json_response({"fields": self.fields})

    async def _records(self, request: web.Request) -> web.Response:
        """List the records with a cursor naming how many there are."""
        if self.records_failures:
            return self._failure(self.records_failures.pop(0))
        return web.json_response({"records": self.records, "cursor": f"c-{len(self.records)}"})

    async def _slow(self, request: web.Request) -> web.Response:
        """Answer after :attr:`slow_delay` seconds."""
        await asyncio.sleep(self.slow_delay)
        return web.json_response({"ok": True})
