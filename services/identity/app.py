"""Assemble the identity service (no I/O until the runner starts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common.bus import Endpoint, endpoint
from libs.common.contracts import identity as c
from libs.common.crypto import Keyring
from libs.common.runtime import POOL, ping_endpoint, standard_contexts
from services.identity.access import Access
from services.identity.directory import WorkspaceDirectory
from services.identity.keys import DIRECTORY, KEYRING, SETTINGS
from services.identity.settings import IdentitySettings
from services.identity.workspaces import Workspaces

NAME = "identity"
MIGRATIONS = Path(__file__).parent / "migrations"


def endpoints(app: web.Application) -> Sequence[Endpoint[Any, Any]]:
    """Return every operation identity answers."""
    workspaces = Workspaces(app[POOL], app[KEYRING])
    access = Access(app[DIRECTORY])
    return [
        ping_endpoint(NAME, app),
        endpoint(c.WORKSPACE_CREATE, workspaces.create),
        endpoint(c.WORKSPACE_GET, workspaces.get),
        endpoint(c.WORKSPACE_FIND, workspaces.find),
        endpoint(c.TOKEN_VERIFY, access.verify),
        endpoint(c.TOKEN_MINT, access.mint),
    ]


async def directory_context(app: web.Application) -> AsyncIterator[None]:
    """Keep workspace keys in memory for the app's lifetime."""
    app[DIRECTORY] = WorkspaceDirectory(
        app[POOL], app[KEYRING], ttl=app[SETTINGS].options.workspace_cache_ttl
    )
    yield


def create_app(settings: IdentitySettings) -> web.Application:
    """Build the identity application."""
    app = web.Application()
    app[SETTINGS] = settings
    app[KEYRING] = Keyring.from_setting(settings.crypto.master_keys.get_secret_value())
    standard_contexts(
        app,
        name=NAME,
        settings=settings.service,
        migrations=MIGRATIONS,
        endpoints=endpoints,
        workers=[directory_context],
    )
    return app
