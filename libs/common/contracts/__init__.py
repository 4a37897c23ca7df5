"""Every subject Tether speaks, with its pydantic models, grouped per service."""

from __future__ import annotations

from typing import Any

from libs.common.contracts import connections, flows, identity, instances, notifications, schemas
from libs.common.contracts.base import EventType, Operation
from libs.common.contracts.system import system_status_operation

SERVICE_CONTRACTS = {
    "identity": identity,
    "connections": connections,
    "instances": instances,
    "flows": flows,
    "notifications": notifications,
}


def service_operations(service: str) -> tuple[Operation[Any, Any], ...]:
    """Return every operation ``service`` answers: its own, its schema catalogues (see
    ``schemas``), and the ``system.status`` all answer."""
    return (
        *SERVICE_CONTRACTS[service].OPERATIONS,
        *schemas.OPERATIONS_BY_SERVICE.get(service, ()),
        system_status_operation(service),
    )


ALL_OPERATIONS: tuple[Operation[Any, Any], ...] = tuple(
    op for service in SERVICE_CONTRACTS for op in service_operations(service)
)
ALL_EVENTS: tuple[EventType[Any], ...] = tuple(
    ev for module in SERVICE_CONTRACTS.values() for ev in module.EVENTS
)
