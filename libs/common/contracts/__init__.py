"""Every subject Tether speaks, with its pydantic models, grouped per service."""

from __future__ import annotations

from typing import Any

from libs.common.contracts import connections, flows, identity, instances, notifications
from libs.common.contracts.base import EventType, Operation

SERVICE_CONTRACTS = {
    "identity": identity,
    "connections": connections,
    "instances": instances,
    "flows": flows,
    "notifications": notifications,
}

ALL_OPERATIONS: tuple[Operation[Any, Any], ...] = tuple(
    op for module in SERVICE_CONTRACTS.values() for op in module.OPERATIONS
)
ALL_EVENTS: tuple[EventType[Any], ...] = tuple(
    ev for module in SERVICE_CONTRACTS.values() for ev in module.EVENTS
)
