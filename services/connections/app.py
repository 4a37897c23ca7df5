"""Assemble the connections service (no I/O until the runner starts it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from libs.common import tracing
from libs.common.bus import Endpoint, endpoint
from libs.common.contracts import connections as c
from libs.common.contracts import schemas
from libs.common.metrics import METRICS
from libs.common.runtime import (
    BUS,
    POOL,
    Work,
    background_tasks,
    service_app,
    status_reporter,
    system_endpoints,
)
from services.connections.auth_types import AuthTypes
from services.connections.connect import Connect
from services.connections.connections import Connections
from services.connections.credential_cache import (
    CachingRefresher,
    CredentialCache,
    forget_on_events,
)
from services.connections.credentials import Credentials
from services.connections.establish import Connector
from services.connections.integrations import Integrations, load_templates
from services.connections.keys import (
    CONNECT,
    CONNECTIONS,
    CREDENTIAL_CACHE,
    HTTP,
    INTEGRATIONS,
    KEYRING,
    PROXY,
    REFRESHER,
    SETTINGS,
)
from services.connections.metrics import CONNECTIONS_METRICS, ConnectionsMetrics
from services.connections.outbound import Outbound
from services.connections.proxy import Proxy
from services.connections.sealed import SEALED
from services.connections.settings import ConnectionsSettings
from services.connections.system import System
from services.connections.worker import check_worker, refresh_worker

NAME = "connections"
MIGRATIONS = Path(__file__).parent / "migrations"


def endpoints(app: web.Application) -> Sequence[Endpoint[Any, Any]]:
    """Return every operation connections answers."""
    integrations, connect, connections = app[INTEGRATIONS], app[CONNECT], app[CONNECTIONS]
    return [
        *system_endpoints(
            NAME,
            app,
            status=System(status_reporter(NAME, app)).status,
            keyring=app[KEYRING],
            sealed=SEALED,
        ),
        endpoint(c.TEMPLATES_LIST, integrations.templates),
        endpoint(c.INTEGRATIONS_LIST, integrations.list),
        endpoint(c.INTEGRATIONS_CREATE, integrations.create),
        endpoint(c.INTEGRATIONS_GET, integrations.get),
        endpoint(c.INTEGRATIONS_PATCH, integrations.patch),
        endpoint(c.INTEGRATIONS_DELETE, integrations.delete),
        endpoint(c.CONNECT_SESSION_CREATE, connect.create_session),
        endpoint(c.CONNECT_PAGE, connect.page),
        endpoint(c.OAUTH_CALLBACK, connect.oauth_callback),
        endpoint(c.CONNECTIONS_LIST, connections.list),
        endpoint(c.CONNECTIONS_CREATE, connections.create),
        endpoint(c.CONNECTIONS_GET, connections.get),
        endpoint(c.CONNECTIONS_ARCHIVE, connections.archive),
        endpoint(c.CONNECTIONS_REFRESH, connections.refresh),
        endpoint(c.CONNECTIONS_TEST, connections.test),
        endpoint(
            c.CREDENTIALS_GET,
            Credentials(app[POOL], app[REFRESHER], app[CREDENTIAL_CACHE]).get,
        ),
        endpoint(c.PROXY_REQUEST, app[PROXY].request),
        endpoint(schemas.AUTH_TYPES_LIST, AuthTypes().list),
    ]


async def domain_context(app: web.Application) -> AsyncIterator[None]:
    """Open the outbound HTTP client and build the handlers once the pool exists.

    Credentials are cached per replica (sealed) and dropped on any connection event.
    """
    settings = app[SETTINGS]
    options, keyring, pool = settings.options, app[KEYRING], app[POOL]
    cache = CredentialCache(options.credentials_cache_size, options.credentials_cache_ttl)
    async with (
        aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=options.http_timeout),
            trace_configs=[tracing.client_trace_config()],
        ) as http,
        forget_on_events(app[BUS], cache),
    ):
        app[HTTP] = http
        app[CREDENTIAL_CACHE] = cache
        out = Outbound(pool, keyring, http, options)
        refresher = CachingRefresher(out, cache)
        refresher.metrics = app[CONNECTIONS_METRICS]
        app[CONNECTIONS_METRICS].watch(pool)
        connector = Connector(out, app[BUS])
        connections = Connections(out, refresher, connector)
        app[REFRESHER] = refresher
        app[INTEGRATIONS] = Integrations(pool, keyring, load_templates())
        app[CONNECT] = Connect(out, connector)
        app[CONNECTIONS] = connections
        app[PROXY] = Proxy(connections, refresher, http, options, pool)
        yield


def workers(app: web.Application) -> dict[str, Work]:
    """Return the background jobs: renewing due tokens, checking tokens without an expiry."""
    options, pool = app[SETTINGS].options, app[POOL]
    grace = app[SETTINGS].service.runtime.shutdown_grace
    jobs: dict[str, Work] = {
        f"refresh-{i}": lambda: refresh_worker(pool, app[REFRESHER], options, grace=grace)
        for i in range(options.refresh_workers)
    }
    if options.refresh_workers:
        jobs["check"] = lambda: check_worker(pool, app[CONNECTIONS], options)
    return jobs


def create_app(settings: ConnectionsSettings) -> web.Application:
    """Build the connections application."""
    app = service_app(
        name=NAME,
        settings=settings.service,
        migrations=MIGRATIONS,
        endpoints=endpoints,
        workers=[domain_context, background_tasks(workers)],
    )
    app[SETTINGS] = settings
    app[KEYRING] = settings.keyring()
    app[CONNECTIONS_METRICS] = ConnectionsMetrics(app[METRICS])
    return app
