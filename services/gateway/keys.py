"""Typed keys of the gateway's state."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from libs.common.config import GatewaySettings
from services.gateway.auth import Authenticator

SETTINGS = web.AppKey("settings", GatewaySettings)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
REQUEST_ID = web.RequestKey("request_id", str)

ObserveHttp = Callable[[str, str, int, float], None]
"""Told of every HTTP request answered: (route template, method, status, seconds)."""
OBSERVE_HTTP: web.AppKey[ObserveHttp] = web.AppKey("observe_http")
