"""Typed keys of the notifications app's state."""

from __future__ import annotations

from aiohttp import web

from libs.common.crypto import Keyring
from libs.common.jobs import JobEngine
from services.notifications.deliveries import Deliveries
from services.notifications.endpoints import Endpoints
from services.notifications.event_types import EventTypes
from services.notifications.sender import Sender
from services.notifications.settings import NotificationsSettings

SETTINGS = web.AppKey("settings", NotificationsSettings)
KEYRING = web.AppKey("keyring", Keyring)
SENDER = web.AppKey("sender", Sender)
ENDPOINTS = web.AppKey("endpoints", Endpoints)
DELIVERIES = web.AppKey("deliveries", Deliveries)
EVENT_TYPES = web.AppKey("event_types", EventTypes)
ENGINE = web.AppKey("engine", JobEngine)
