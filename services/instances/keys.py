"""Typed keys of the instances app's state."""

from __future__ import annotations

from aiohttp import web

from libs.common.crypto import Keyring
from libs.common.jobs import JobEngine
from services.instances.action_instances import ActionInstances
from services.instances.action_runs import ActionRuns
from services.instances.actions import Actions
from services.instances.app_event_types import AppEventTypes
from services.instances.data_source_instances import DataSourceInstances
from services.instances.data_sources import DataSources
from services.instances.deployments import Deployments
from services.instances.field_mapping_instances import FieldMappingInstances
from services.instances.field_mappings import FieldMappings
from services.instances.records import Records
from services.instances.settings import InstancesSettings
from services.instances.subscriptions import Subscriptions
from services.instances.synced_records import SyncedRecords
from services.instances.syncs import Syncs
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
ACTIONS = web.AppKey("actions", Actions)
ACTION_INSTANCES = web.AppKey("action_instances", ActionInstances)
ACTION_RUNS = web.AppKey("action_runs", ActionRuns)
RECORDS = web.AppKey("records", Records)
SYNCS = web.AppKey("syncs", Syncs)
SYNCED_RECORDS = web.AppKey("synced_records", SyncedRecords)
SYNC_ENGINE = web.AppKey("sync_engine", JobEngine)
FIELD_MAPPINGS = web.AppKey("field_mappings", FieldMappings)
FIELD_MAPPING_INSTANCES = web.AppKey("field_mapping_instances", FieldMappingInstances)
