"""The triggers' background work in a flows replica: two event consumers and the scheduler."""

from __future__ import annotations

from functools import partial
from typing import Any

import asyncpg

from libs.common.bus import Bus
from libs.common.config import RuntimeSettings
from libs.common.metrics import ServiceMetrics
from libs.common.outbox import EventConsumer
from libs.common.runtime import Work
from services.flows.settings import FlowsOptions
from services.flows.triggers import app_events, data_records
from services.flows.triggers.schedules import Scheduler
from services.flows.triggers.settings import TriggerOptions


def tasks(
    pool: asyncpg.Pool[Any],
    bus: Bus,
    runtime: RuntimeSettings,
    flows: FlowsOptions,
    triggers: TriggerOptions,
    *,
    metrics: ServiceMetrics | None = None,
) -> dict[str, Work]:
    """Return the named background tasks that start runs from events and schedules."""
    consumers = {
        "app-event-triggers": EventConsumer(
            pool,
            bus,
            app_events.DURABLE,
            app_events.EVENTS,
            partial(app_events.on_app_event, options=flows),
            max_attempts=runtime.event_max_attempts,
            backoff=runtime.event_backoff,
            metrics=metrics,
        ),
        "data-record-triggers": EventConsumer(
            pool,
            bus,
            data_records.DURABLE,
            data_records.EVENTS,
            partial(data_records.on_data_record, options=flows),
            max_attempts=runtime.event_max_attempts,
            backoff=runtime.event_backoff,
            metrics=metrics,
        ),
    }
    tasks: dict[str, Work] = {name: consumer.run for name, consumer in consumers.items()}
    tasks["schedule-triggers"] = Scheduler(pool, flows, triggers).run
    return tasks
