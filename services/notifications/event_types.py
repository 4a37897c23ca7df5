"""Answer ``tether.notifications.event_types.list``: what endpoints may ask for."""

from __future__ import annotations

from libs.common.contracts import notifications as c
from services.notifications import catalog


class EventTypes:
    """Handler of the event-type catalogue (the same for every workspace)."""

    def __init__(self) -> None:
        self._types = c.WebhookEventTypeList(items=catalog.describe())

    async def list(self, req: c.EventTypeListRequest) -> c.WebhookEventTypeList:
        """Return every event type with its payload's JSON Schema."""
        req.ctx.admin_workspace()
        return self._types
