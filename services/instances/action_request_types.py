"""Answer ``tether.instances.action_request_types.list``: the request an action makes.

One item today (``http``: a request to the app's API through the connection's proxy);
``path``, ``query``, ``headers`` and ``body`` may hold expressions, evaluated over
``{input, customer, connection, parameters}`` when the action runs.
"""

from __future__ import annotations

from libs.common.contracts import actions as c
from libs.common.contracts import schemas as s

EXPRESSIONS = ("path", "query", "headers", "body")
"""The request's properties that may hold expressions (see ``ActionRequestSpec``)."""


class ActionRequestTypes:
    """Handler of the action request catalogue (built once; the same for every workspace)."""

    def __init__(self) -> None:
        title = "App API request"
        item = s.SchemaType(
            type="http",
            title=title,
            description=s.describe(c.ActionRequestSpec),
            json_schema=s.publish(c.ActionRequestSpec, title=title, expressions=EXPRESSIONS),
        )
        self._types = s.SchemaTypeList(items=[item])

    async def list(self, req: s.TypeListRequest) -> s.SchemaTypeList:
        """Return the request specs an action may make, with their schemas."""
        req.ctx.workspace()
        return self._types
