"""Typed keys of the instances app's state."""

from __future__ import annotations

from aiohttp import web

from libs.common.crypto import Keyring
from libs.common.jobs import JobEngine
from services.instances.app_event_types import AppEventTypes
from services.instances.data_source_instances import DataSourceInstances
from services.instances.data_sources import DataSources
from services.instances.deployments import Deployments
from services.instances.settings import InstancesSettings
from services.instances.subscriptions import Subscriptions
from services.instances.webhooks import Webhooks

SETTINGS = web.AppKey("settings", InstancesSettings)
KEYRING = web.AppKey("keyring", Keyring)
APP_EVENT_TYPES = web.AppKey("app_event_types", AppEventTypes)
DATA_SOURCES = web.AppKey("data_sources", DataSources)
DEPLOYMENTS = web.AppKey("deployments", Deployments)
SUBSCRIPTIONS = web.AppKey("subscriptions", Subscriptions)
DATA_SOURCE_INSTANCES = web.AppKey("data_source_instances", DataSourceInstances)
WEBHOOKS = web.AppKey("webhooks", Webhooks)
ENGINE = web.AppKey("engine", JobEngine)
