"""Route inbound webhooks from memory: a URL token's subscription and its app-event type.

Each replica keeps, per token digest, the live subscription row and its app-event type row
as read (their signing secrets still *sealed*: a delivery decrypts its secret again), so
an accepted delivery reads nothing from PostgreSQL. Only live routes are kept (status
``active`` or ``subscribing`` with a definition): an unknown or gone token is looked up
every time, as before.

An entry is dropped

* **on any change** to its subscription or app-event type row, by any process: triggers
  (migration ``0007``) send ``NOTIFY tether_webhook_routes_<schema>`` on commit, which
  :func:`listen_for_changes` hears in every replica;
* **after ``webhook_route_cache_ttl`` seconds** at most, which bounds what a missed notice
  can cost (the listener's connection lost: everything is dropped when it listens again,
  but a notice sent in between is only covered by the TTL until then).

A stale route can only ever accept a delivery its subscription no longer wants (for up to
the TTL): what is accepted is still handled, which is what an accepted delivery promises.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from libs.common.cache import TtlCache
from services.instances.store import definitions, subscriptions
from services.instances.store.definitions import AppEventTypeRecord
from services.instances.store.subscriptions import SubscriptionRecord

log = structlog.get_logger(__name__)

LIVE = frozenset({"active", "subscribing"})
"""Subscription statuses whose URL accepts deliveries."""


def channel(schema: str) -> str:
    """Return the NOTIFY channel the schema's triggers announce route changes on."""
    return f"tether_webhook_routes_{schema}"


@dataclass(frozen=True)
class Route:
    """Where a token leads: its subscription and app-event type (``definition`` None: gone)."""

    subscription: SubscriptionRecord
    definition: AppEventTypeRecord | None

    @property
    def live(self) -> bool:
        """Tell whether the URL accepts deliveries."""
        return self.subscription.status in LIVE and self.definition is not None


class WebhookRoutes:
    """Live routes per token digest, in this replica's memory."""

    def __init__(self, pool: asyncpg.Pool[Any], size: int, ttl: float) -> None:
        self._pool = pool
        self._routes: TtlCache[bytes, Route] = TtlCache(size, ttl)

    async def find(self, digest: bytes) -> Route | None:
        """Return the route of a token digest (None: unknown), from memory when live there.

        System work: the token is the only credential and names its workspace; every row
        read is then used with that workspace id.
        """
        route = self._routes.get(digest)
        if route is not None:
            return route
        since = self._routes.generation  # a change announced meanwhile: do not keep this read
        async with self._pool.acquire() as conn:
            sub = await subscriptions.subscription_by_token(conn, digest)
            if sub is None:
                return None
            definition = await definitions.select_app_event_type(
                conn, sub.workspace_id, sub.app_event_type_key
            )
        route = Route(sub, definition)
        if route.live:
            self._routes.put(digest, route, since=since)
        return route

    def changed(self, notice: str) -> None:
        """Drop what a trigger's notice names (see migration ``0007``); anything else: all."""
        kind, _, rest = notice.partition(":")
        if kind == "subscription":
            with contextlib.suppress(ValueError):
                self._routes.drop(bytes.fromhex(rest))
                return
        elif kind == "app_event_type":
            workspace, _, key = rest.partition(":")
            with contextlib.suppress(ValueError):
                workspace_id = UUID(workspace)
                self._routes.drop_where(
                    lambda r: (
                        r.subscription.workspace_id == workspace_id
                        and r.subscription.app_event_type_key == key
                    )
                )
                return
        log.warning("webhook_route_notice_unreadable")
        self.forget_all()

    def forget_all(self) -> None:
        """Drop every route (and refuse every load under way)."""
        self._routes.drop_where(lambda _: True)

    def __contains__(self, digest: bytes) -> bool:
        return self._routes.get(digest) is not None


#: What a lost database connection raises while listening.
_LOST = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def listen_for_changes(
    pool: asyncpg.Pool[Any], schema: str, routes: WebhookRoutes, *, retry: float = 1.0
) -> None:
    """Drop routes as triggers announce changes, until cancelled; hold one pooled connection.

    Whenever listening (re)starts, every route is dropped first: a notice sent while
    nobody listened is lost, so nothing read before can be trusted.
    """
    name = channel(schema)

    def on_notice(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        routes.changed(str(payload))

    while True:
        lost = asyncio.Event()
        try:
            async with pool.acquire() as conn:
                conn.add_termination_listener(lambda _, lost=lost: lost.set())
                await conn.add_listener(name, on_notice)
                routes.forget_all()
                try:
                    await lost.wait()
                finally:
                    with contextlib.suppress(*_LOST):
                        await conn.remove_listener(name, on_notice)
        except _LOST as exc:
            log.warning("webhook_route_listener_lost", error=str(exc))
        routes.forget_all()
        await asyncio.sleep(retry)  # the database is away: try again shortly
