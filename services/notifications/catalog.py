"""What endpoints may ask for: every event type offered, what ``*`` includes, the matching rule.

An event's public type is its subject without ``tether.evt.<service>.``
(``tether.evt.connections.connection.created`` → ``connection.created``). Patterns are an
exact type, ``<entity>.*`` or ``*``; ``*`` matches every type except the ``data_record.*``
ones (their volume would swamp a backend that asked for "everything" without meaning it).

Some types are offered before any service emits them (``available: false`` in
``GET /webhook-event-types``): an endpoint may ask for them now and receives them from the
day their producer ships. Those are the ``None`` entries of :data:`OFFERED`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from libs.common.contracts import connections, flows, identity, instances
from libs.common.contracts import notifications as c
from libs.common.contracts.base import Event, EventType
from libs.common.errors import InvalidInput

WILDCARD_EXCLUDED = ("data_record.",)
TEST_TYPE = "test"


@dataclass(frozen=True)
class Offered:
    """One event type endpoints may ask for."""

    name: str
    description: str
    source: EventType[Any] | None
    """The subject consumed; None while no service emits it yet."""
    model: type[Event]
    """The model of the body's ``data`` (the producer's event model)."""


def public_type(kind: EventType[Any]) -> str:
    """Return an event subject's public type (``connection.created``)."""
    return ".".join(kind.subject.split(".")[3:])


def _offer(kind: EventType[Any], description: str) -> Offered:
    return Offered(public_type(kind), description, kind, kind.model)


OFFERED: tuple[Offered, ...] = (
    _offer(connections.CONNECTION_CREATED, "A customer connected an app account"),
    _offer(connections.CONNECTION_RECONNECTED, "A disconnected connection works again"),
    _offer(connections.CONNECTION_DISCONNECTED, "A connection's credentials stopped working"),
    _offer(connections.CONNECTION_ERROR, "A connection's renewals kept failing: it is in error"),
    _offer(connections.CONNECTION_ARCHIVED, "A connection was archived"),
    _offer(instances.DEPLOYMENT_COMPLETED, "A deployment finished (succeeded or partial)"),
    _offer(instances.DEPLOYMENT_FAILED, "A deployment failed"),
    _offer(flows.FLOW_RUN_QUEUED, "A flow run was queued"),
    _offer(flows.FLOW_RUN_STARTED, "A flow run started"),
    _offer(flows.FLOW_RUN_COMPLETED, "A flow run completed"),
    _offer(flows.FLOW_RUN_FAILED, "A flow run failed"),
    _offer(flows.FLOW_RUN_STOPPED, "A flow run was stopped"),
    # Not emitted yet (issue #14): subscribe to instances.ACTION_RUN_FAILED once it exists.
    _offer(instances.ACTION_RUN_FAILED, "An action run failed"),
    _offer(instances.DATA_RECORD_CREATED, "A synced record appeared (not in `*`)"),
    _offer(instances.DATA_RECORD_UPDATED, "A synced record changed (not in `*`)"),
    _offer(instances.DATA_RECORD_DELETED, "A synced record was deleted (not in `*`)"),
    _offer(identity.CUSTOMER_CREATED, "A customer was created"),
    _offer(identity.CUSTOMER_UPDATED, "A customer's name or fields changed"),
    _offer(identity.CUSTOMER_ARCHIVED, "A customer was archived"),
    _offer(c.ENDPOINT_DISABLED, "Tether disabled another endpoint of the workspace"),
)

CONSUMED: tuple[EventType[Any], ...] = tuple(o.source for o in OFFERED if o.source is not None)
"""The subjects the notifications consumer reads."""

TYPES = frozenset(o.name for o in OFFERED)
ENTITIES = frozenset(t.split(".")[0] for t in TYPES)


def in_wildcard(event_type: str) -> bool:
    """Tell whether ``*`` matches ``event_type``."""
    return not event_type.startswith(WILDCARD_EXCLUDED)


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Tell whether any of ``patterns`` asks for ``event_type``."""
    entity = event_type.split(".")[0]
    for pattern in patterns:
        if pattern == event_type or pattern == f"{entity}.*":
            return True
        if pattern == "*" and in_wildcard(event_type):
            return True
    return False


def check_patterns(patterns: Sequence[str]) -> list[str]:
    """Return ``patterns`` deduplicated; refuse one that names no offered type (422 ``events``)."""
    for index, pattern in enumerate(patterns):
        known = (
            pattern == "*"
            or pattern in TYPES
            or (pattern.endswith(".*") and pattern[:-2] in ENTITIES)
        )
        if not known:
            message = f"{pattern!r} is not an event type (see GET /webhook-event-types)"
            raise InvalidInput(
                f"events: {message}",
                details=[{"field": f"events.{index}", "message": message}],
            )
    return list(dict.fromkeys(patterns))


def describe() -> list[c.WebhookEventType]:
    """Return every offered type with its payload's JSON Schema."""
    return [
        c.WebhookEventType(
            type=o.name,
            description=o.description,
            in_wildcard=in_wildcard(o.name),
            available=o.source is not None,
            payload_schema=o.model.model_json_schema(by_alias=True),
        )
        for o in OFFERED
    ]
