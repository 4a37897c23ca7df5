"""Typed keys of the connections app's state."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from libs.common.crypto import Keyring
from services.connections.connect import Connect
from services.connections.connections import Connections
from services.connections.credential_cache import CredentialCache
from services.connections.integrations import Integrations
from services.connections.proxy import Proxy
from services.connections.refresh import Refresher
from services.connections.settings import ConnectionsSettings

SETTINGS = web.AppKey("settings", ConnectionsSettings)
KEYRING = web.AppKey("keyring", Keyring)
HTTP = web.AppKey("http", aiohttp.ClientSession)
REFRESHER = web.AppKey("refresher", Refresher)
CREDENTIAL_CACHE = web.AppKey("credential_cache", CredentialCache)
INTEGRATIONS = web.AppKey("integrations", Integrations)
CONNECT = web.AppKey("connect", Connect)
CONNECTIONS = web.AppKey("connections", Connections)
PROXY = web.AppKey("proxy", Proxy)
