"""Typed keys of the gateway's state."""

from __future__ import annotations

from aiohttp import web

from libs.common.config import GatewaySettings
from services.gateway.auth import Authenticator

SETTINGS = web.AppKey("settings", GatewaySettings)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
REQUEST_ID = web.RequestKey("request_id", str)
