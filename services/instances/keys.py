"""Typed keys of the instances app's state."""

from __future__ import annotations

from aiohttp import web

from libs.common.crypto import Keyring
from services.instances.deployments import Deployments
from services.instances.elements import Elements
from services.instances.engine import DeployEngine
from services.instances.settings import InstancesSettings
from services.instances.webhooks import Webhooks

SETTINGS = web.AppKey("settings", InstancesSettings)
KEYRING = web.AppKey("keyring", Keyring)
ELEMENTS = web.AppKey("elements", Elements)
DEPLOYMENTS = web.AppKey("deployments", Deployments)
WEBHOOKS = web.AppKey("webhooks", Webhooks)
ENGINE = web.AppKey("engine", DeployEngine)
