"""What every connections handler that calls apps starts from: store, keyring, HTTP, options."""

from __future__ import annotations

from typing import Any, NamedTuple

import aiohttp
import asyncpg

from libs.common.crypto import Keyring
from services.connections.settings import ConnectionsOptions


class Outbound(NamedTuple):
    """Read connections, open their sealed credentials and call the app over HTTP.

    ``Connect``, ``Connections``, ``Connector`` and ``Refresher`` take one of these first
    and their own collaborators after it; each unpacks it into its private fields.
    """

    pool: asyncpg.Pool[Any]
    keyring: Keyring
    http: aiohttp.ClientSession
    options: ConnectionsOptions
