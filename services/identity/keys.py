"""Typed keys of the identity app's state."""

from __future__ import annotations

from aiohttp import web

from libs.common.crypto import Keyring
from services.identity.customers import Customers
from services.identity.directory import WorkspaceDirectory
from services.identity.settings import IdentitySettings

KEYRING = web.AppKey("keyring", Keyring)
DIRECTORY = web.AppKey("directory", WorkspaceDirectory)
SETTINGS = web.AppKey("settings", IdentitySettings)
CUSTOMERS = web.AppKey("customers", Customers)
