"""Assemble the connections service (no I/O until the runner starts it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common.bus import Endpoint
from libs.common.runtime import ServiceSettings, ping_endpoint, standard_contexts

NAME = "connections"
MIGRATIONS = Path(__file__).parent / "migrations"


def endpoints(app: web.Application) -> Sequence[Endpoint[Any, Any]]:
    """Return every operation connections answers."""
    return [ping_endpoint(NAME, app)]


def create_app(settings: ServiceSettings) -> web.Application:
    """Build the connections application."""
    app = web.Application()
    standard_contexts(app, name=NAME, settings=settings, migrations=MIGRATIONS, endpoints=endpoints)
    return app
