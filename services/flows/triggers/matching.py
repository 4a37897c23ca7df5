"""Start the runs an event triggers: one per matching flow instance, in the event's transaction.

An event (an app event, a data-record change) names a workspace and a connection. The flow
instances it triggers are the enabled, non-archived ones on that connection whose trigger
has the event's type and key, and whose optional ``filter`` (JMESPath over the event's JSON)
is truthy. The trigger is read from the instance's *base revision*: a customisation changes
nodes and parameters, never the trigger.

What :func:`start_triggered` guarantees, with the event consumer around it
(``libs/common/outbox.py``: the handler's writes commit with the event id):

* **One run per event per instance.** Each run is started with the dedupe key
  ``event:<eventId>``: should the event be handled again (the consumer's record of it was
  lost, or the same event arrives under another message id), :func:`start_run` returns the
  first run and starts none.
* **All or nothing per event.** The runs commit with the consumer's record of the event;
  a failure (the connection's queue is full: ``queue_full``) rolls them back and the
  consumer tries the whole event again later, then gives it up as a dead letter.
* **A refused instance does not hold up the others.** An instance disabled or archived
  since the match (``flow_instance_disabled``), or whose filter fails at run time, is
  skipped (and logged); the others still start.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import structlog
from pydantic import BaseModel, ConfigDict

from libs.common import expressions
from libs.common.contracts import flows as c
from libs.common.contracts.base import Event
from libs.common.db import Conn
from libs.common.errors import Conflict, NotFound
from libs.common.rows import many
from services.flows.runs.start import start_run
from services.flows.settings import FlowsOptions

log = structlog.get_logger(__name__)

# The instance's own row decides whether it runs; its base revision decides the trigger.
SELECT_TRIGGERED_SQL = """
SELECT fi.id, r.definition -> 'trigger' AS trigger
FROM flow_instances fi
JOIN flow_revisions r
  ON r.workspace_id = fi.workspace_id AND r.flow_id = fi.flow_id AND r.revision = fi.base_revision
WHERE fi.workspace_id = $1 AND fi.connection_id = $2
  AND fi.enabled AND fi.archived_at IS NULL
  AND r.definition -> 'trigger' ->> 'type' = $3
  AND r.definition -> 'trigger' ->> $4 = $5
ORDER BY fi.id
"""


class Triggered(BaseModel):
    """A flow instance whose trigger matches an event's type and key (its filter not yet run)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    trigger: dict[str, Any]

    def filter(self) -> str | None:
        """Return the trigger's filter expression, if it has one."""
        value = self.trigger.get("filter")
        return value if isinstance(value, str) else None


async def select_triggered(
    conn: Conn,
    workspace_id: UUID,
    connection_id: UUID,
    trigger_type: c.TriggerType,
    key_field: str,
    key: str,
) -> list[Triggered]:
    """Return the runnable instances on a connection whose trigger is ``trigger_type`` on ``key``.

    ``key_field`` is the trigger's field naming what it listens to, as stored (camelCase:
    ``appEventTypeKey``, ``dataSourceKey``).
    """
    rows = await conn.fetch(
        SELECT_TRIGGERED_SQL, workspace_id, connection_id, trigger_type, key_field, key
    )
    return many(Triggered, rows)


def passes(expression: str | None, event: Any) -> bool:
    """Tell whether the trigger filter ``expression`` is truthy over ``event`` (no filter: yes).

    Raises :class:`expressions.ExpressionError` when the expression cannot be evaluated.
    """
    if expression is None:
        return True
    return expressions.truthy(expressions.search(expression, event, "trigger.filter"))


async def start_triggered(
    conn: Conn,
    event: Event,
    *,
    connection_id: UUID,
    trigger_type: c.TriggerType,
    key_field: str,
    key: str,
    input: Any,
    options: FlowsOptions,
) -> list[UUID]:
    """Start a run of every instance ``event`` triggers; return the ids of the runs started.

    Runs in the caller's (the event consumer's) transaction; see the module docstring.
    """
    matches = await select_triggered(
        conn, event.workspace_id, connection_id, trigger_type, key_field, key
    )
    if not matches:
        return []
    scope = event.model_dump(mode="json")
    trigger = c.RunTrigger(type=trigger_type, event_id=event.event_id)
    started: list[UUID] = []
    for match in matches:
        expression = match.filter()
        try:
            if not passes(expression, scope):
                continue
        except expressions.ExpressionError as exc:
            # JMESPath's message quotes the offending value: a piece of the app's payload,
            # which stays out of logs. The flow's own expression and the kind of error do not.
            log.warning(
                "trigger_filter_failed",
                workspace_id=str(event.workspace_id),
                flow_instance_id=str(match.id),
                event_id=str(event.event_id),
                filter=expression,
                error=type(exc.__cause__ or exc).__name__,
            )
            continue
        try:
            async with conn.transaction():  # a savepoint: a refused instance leaves the others
                run, created = await start_run(
                    conn,
                    workspace_id=event.workspace_id,
                    instance_id=match.id,
                    ctx=None,
                    input=input,
                    trigger=trigger,
                    dedupe_key=f"event:{event.event_id}",
                    options=options,
                )
        except (NotFound, Conflict) as exc:
            if isinstance(exc, Conflict) and exc.code != "flow_instance_disabled":
                raise
            log.info(
                "trigger_instance_skipped",
                workspace_id=str(event.workspace_id),
                flow_instance_id=str(match.id),
                event_id=str(event.event_id),
                reason=exc.code,
            )
            continue
        if created:
            started.append(run.id)
    return started
