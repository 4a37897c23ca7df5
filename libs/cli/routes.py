"""List every route from the live tables: method, path → subject → handler (``tether routes``).

The gateway's ``ROUTES`` names each route's operation; each service's ``endpoints(app)``
pairs operations with handlers. Those tables are read here as they are, without I/O: a
service's ``endpoints`` is given a *blueprint* of its application, where each handler
object is an uninitialised instance of its class (its methods are the real ones, never
called) and every other resource is a stand-in that refuses to be used. ``endpoints``
only wires handlers to operations, so that is all it needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from libs.common.bus import Endpoint
from libs.common.config import SERVICES


class StandIn:
    """A resource that is not there: any use of it, beyond passing it along, is an error."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"a blueprint has no resources (asked for .{name})")


class Blueprint:
    """What a service's ``endpoints(app)`` reads from its app, built without I/O."""

    def __init__(self) -> None:
        self._made: dict[web.AppKey[Any], Any] = {}

    def __getitem__(self, key: web.AppKey[Any]) -> Any:
        if key not in self._made:
            kind = getattr(key, "_t", None)
            handlers = isinstance(kind, type) and kind.__module__.startswith("services.")
            self._made[key] = kind.__new__(kind) if handlers and kind else StandIn()
        return self._made[key]

    def __contains__(self, key: object) -> bool:
        return False


def service_endpoints(service: str) -> Sequence[Endpoint[Any, Any]]:
    """Return the endpoint table ``services.<service>.app.endpoints`` builds."""
    module = importlib.import_module(f"services.{service}.app")
    endpoints: Sequence[Endpoint[Any, Any]] = module.endpoints(Blueprint())
    return endpoints


def handlers_by_subject() -> dict[str, Endpoint[Any, Any]]:
    """Return every service's endpoints by subject."""
    return {ep.op.subject: ep for service in SERVICES for ep in service_endpoints(service)}


@dataclass(frozen=True)
class RouteLine:
    """One HTTP route with the subject it is sent to and the handler that answers it."""

    method: str
    path: str
    subject: str
    handler: str | None  # None: no service answers the subject (a broken table)


def route_lines() -> list[RouteLine]:
    """Return every gateway route resolved to its handler, in the table's order."""
    from services.gateway.routes import ROUTES as routes  # imported only by this command

    handlers = handlers_by_subject()
    lines = []
    for route in routes:
        answered = handlers.get(route.op.subject)
        lines.append(
            RouteLine(
                route.method,
                route.path,
                route.op.subject,
                answered.handler_name if answered else None,
            )
        )
    return lines


def print_routes() -> int:
    """Print the route table, one route a line; exit 1 when a route has no handler."""
    lines = route_lines()
    width = max(len(f"{line.method} {line.path}") for line in lines)
    subject_width = max(len(line.subject) for line in lines)
    for line in lines:
        route = f"{line.method} {line.path}"
        handler = line.handler or "(no handler!)"
        print(f"{route:<{width}}  →  {line.subject:<{subject_width}}  →  {handler}")
    return 0 if all(line.handler for line in lines) else 1
