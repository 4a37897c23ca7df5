"""Answer ``tether.flows.trigger_types.list``: one item per trigger ``type``, with its schema."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from libs.common.contracts import flows as c
from libs.common.contracts import schemas as s

TITLES: Mapping[str, str] = MappingProxyType(
    {
        "api": "API call",
        "app-event": "App event",
        "schedule": "Schedule",
        "data-record-created": "Data record created",
        "data-record-updated": "Data record updated",
        "data-record-deleted": "Data record deleted",
    }
)
DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        f"data-record-{verb}": f"Run when a record of a data source is {verb}."
        for verb in ("created", "updated", "deleted")
    }
)


class TriggerTypes:
    """Handler of the trigger type catalogue (built once; the same for every workspace)."""

    def __init__(self) -> None:
        items = s.discriminated_items(c.Trigger, "type", TITLES, DESCRIPTIONS)
        self._types = s.SchemaTypeList(items=items)

    async def list(self, req: s.TypeListRequest) -> s.SchemaTypeList:
        """Return every trigger type a flow may have."""
        req.ctx.workspace()
        return self._types
