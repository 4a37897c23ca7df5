"""Assemble the identity service (no I/O until the runner starts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common.bus import Endpoint, endpoint
from libs.common.cache import TtlCache
from libs.common.contracts import identity as c
from libs.common.runtime import (
    BUS,
    POOL,
    service_app,
    status_reporter,
    subscribe_events,
    system_endpoints,
)
from services.identity.console import Console
from services.identity.customers import Customers
from services.identity.directory import WorkspaceDirectory
from services.identity.keys import CUSTOMERS, DIRECTORY, KEYRING, SETTINGS
from services.identity.sealed import SEALED
from services.identity.settings import IdentitySettings
from services.identity.system import System
from services.identity.tokens import Tokens
from services.identity.workspace import Workspace
from services.identity.workspaces import Workspaces

NAME = "identity"
MIGRATIONS = Path(__file__).parent / "migrations"


def endpoints(app: web.Application) -> Sequence[Endpoint[Any, Any]]:
    """Return every operation identity answers."""
    customers = app[CUSTOMERS]
    workspaces = Workspaces(app[POOL], app[KEYRING], customers)
    workspace = Workspace(app[POOL], app[KEYRING], app[DIRECTORY], customers)
    tokens = Tokens(app[DIRECTORY], customers)
    console = Console(app[POOL], app[DIRECTORY])
    return [
        *system_endpoints(
            NAME,
            app,
            status=System(status_reporter(NAME, app)).status,
            keyring=app[KEYRING],
            sealed=SEALED,
        ),
        endpoint(c.WORKSPACE_CREATE, workspaces.create),
        endpoint(c.WORKSPACE_GET, workspace.get),
        endpoint(c.WORKSPACE_FIND, workspaces.find),
        endpoint(c.WORKSPACE_UPDATE, workspace.update),
        endpoint(c.SECRET_ROTATE, workspace.rotate_secret),
        endpoint(c.TEST_CUSTOMER_TOKEN, workspace.test_customer_token),
        endpoint(c.TOKEN_VERIFY, tokens.verify),
        endpoint(c.TOKEN_VERIFICATION_KEYS, tokens.verification_keys),
        endpoint(c.TOKEN_MINT, tokens.mint),
        endpoint(c.CUSTOMERS_LIST, customers.list),
        endpoint(c.CUSTOMERS_CREATE, customers.create),
        endpoint(c.CUSTOMERS_GET, customers.get),
        endpoint(c.CUSTOMERS_ME, customers.me),
        endpoint(c.CUSTOMERS_PATCH, customers.patch),
        endpoint(c.CUSTOMERS_PUT, customers.put),
        endpoint(c.CUSTOMERS_ENSURE, customers.ensure),
        endpoint(c.CUSTOMERS_ARCHIVE, customers.archive),
        endpoint(c.CUSTOMERS_RESTORE, customers.restore),
        endpoint(c.CONSOLE_CODE_CREATE, console.create_code),
        endpoint(c.CONSOLE_SESSION, console.session),
    ]


async def directory_context(app: web.Application) -> AsyncIterator[None]:
    """Keep workspace keys in memory; drop a workspace when any replica changes it."""
    directory = WorkspaceDirectory(
        app[POOL], app[KEYRING], ttl=app[SETTINGS].options.workspace_cache_ttl
    )
    app[DIRECTORY] = directory

    def forget(event: c.WorkspaceEvent) -> None:
        directory.forget(event.workspace_id)

    sub = await subscribe_events(app[BUS], c.WORKSPACE_UPDATED, forget)
    yield
    await sub.unsubscribe()


async def customers_context(app: web.Application) -> AsyncIterator[None]:
    """Keep hot customers in memory; drop one when any replica changes it."""
    options = app[SETTINGS].options
    customers = Customers(
        app[POOL], TtlCache(options.customer_cache_size, options.customer_cache_ttl)
    )
    app[CUSTOMERS] = customers

    def forget(event: c.CustomerEvent) -> None:
        customers.forget(event.workspace_id, event.customer_id)

    events = (c.CUSTOMER_CREATED, c.CUSTOMER_UPDATED, c.CUSTOMER_ARCHIVED, c.CUSTOMER_RESTORED)
    subs = [await subscribe_events(app[BUS], kind, forget) for kind in events]
    yield
    for sub in subs:
        await sub.unsubscribe()


def create_app(settings: IdentitySettings) -> web.Application:
    """Build the identity application."""
    app = service_app(
        name=NAME,
        settings=settings.service,
        migrations=MIGRATIONS,
        endpoints=endpoints,
        workers=[directory_context, customers_context],
    )
    app[SETTINGS] = settings
    app[KEYRING] = settings.keyring()
    return app
