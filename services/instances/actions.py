"""Answer ``tether.instances.actions.*`` (definitions): define, read, revise, delete, history.

An action's scope (its key, its level and the integration or customer the level names) is
set when it is created and never changes; everything else is its *definition*, kept at
every revision. A revision is written only over the one the editor read (``revision`` or
``If-Match``), as flows are. What each level requires:

* ``universal``: no integrationKey, no customerId; its request per integration under
  ``implementations.<integrationKey>`` (no ``request``);
* ``app``: one ``integrationKey``, no customerId; one ``request``;
* ``customer``: one ``customerId`` (an ``integrationKey`` optional); one ``request``.

Every problem of a definition (level, expressions, JMESPath, JSON Schemas, unknown
integrations or customer) is reported at once, each naming its field.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from libs.common import expressions
from libs.common.bus import Bus
from libs.common.contracts import actions as c
from libs.common.contracts import connections, identity
from libs.common.contracts.base import Context
from libs.common.errors import InvalidInput, NotFound
from services.instances.revisioned import Revisioned, Store
from services.instances.store import actions as store
from services.instances.store.actions import ActionRecord

STORE = Store(
    noun="action",
    definition=c.ActionDefinition,
    select=store.select_action,
    update=store.update_action,
    delete=store.delete_action,
    select_page=store.list_actions,
    select_revisions=store.select_revisions,
    select_revision=store.select_revision,
)
"""Where actions' definitions and revisions are kept (``revisioned``'s steps use it)."""

Problems = list[dict[str, str]]


def invalid(problems: Problems) -> InvalidInput:
    """Return the one error that lists every problem (its message names the first field)."""
    first = problems[0]
    return InvalidInput(f"{first['field']}: {first['message']}", details=problems)


def scope_problems(
    level: c.Level, integration_key: str | None, customer_id: str | None
) -> Problems:
    """Return what is wrong with a level and the integration and customer it names."""
    if level == "universal" and (integration_key or customer_id):
        return [
            {"field": "level", "message": "a universal action names no integration or customer"}
        ]
    if level == "app" and (not integration_key or customer_id):
        return [
            {
                "field": "integrationKey",
                "message": "an app-level action names one integration and no customer",
            }
        ]
    if level == "customer" and not customer_id:
        return [{"field": "customerId", "message": "a customer-level action names its customer"}]
    return []


def _schema_problems(schema: dict[str, Any] | None, field: str) -> Problems:
    if schema is None:
        return []
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [{"field": field, "message": f"not a valid JSON Schema: {exc.message}"}]
    return []


def definition_problems(level: c.Level, definition: c.ActionDefinition) -> Problems:
    """Return every problem of a definition at this level (pure; references are not checked)."""
    found: Problems = []
    if level == "universal":
        if definition.request is not None:
            found.append(
                {
                    "field": "request",
                    "message": "a universal action gives its request per integration"
                    " under implementations",
                }
            )
        if not definition.implementations:
            found.append(
                {
                    "field": "implementations",
                    "message": "a universal action needs at least one implementation",
                }
            )
    else:
        if definition.implementations is not None:
            found.append(
                {
                    "field": "implementations",
                    "message": f"a {level}-level action gives one request, not implementations",
                }
            )
        if definition.request is None:
            found.append({"field": "request", "message": f"a {level}-level action needs a request"})
    if definition.request is not None:
        found += expressions.check(definition.request.model_dump(mode="json"), "request")
    for key, spec in (definition.implementations or {}).items():
        found += expressions.check(spec.model_dump(mode="json"), f"implementations.{key}")
    if definition.output_mapping is not None:
        try:
            expressions.compile_expression(definition.output_mapping, "outputMapping")
        except expressions.ExpressionError as exc:
            found.append({"field": exc.field, "message": exc.reason})
    found += _schema_problems(definition.input_schema, "inputSchema")
    found += _schema_problems(definition.parameters, "parameters")
    return found


def reply(record: ActionRecord) -> c.Action:
    """Return an action as its reply: its scope, its newest definition, its revision."""
    return c.Action.model_validate(
        {
            **record.definition.model_dump(by_alias=False),
            **record.model_dump(exclude={"definition", "workspace_id"}),
        }
    )


class Actions:
    """Action definition handlers, one per operation."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], bus: Bus) -> None:
        self._pool = pool
        self._revisioned = Revisioned(pool, STORE)
        self._bus = bus

    async def _reference_problems(
        self,
        ctx: Context,
        integration_key: str | None,
        customer_id: str | None,
        definition: c.ActionDefinition,
    ) -> Problems:
        """Return the integrations and customer a definition names that do not exist."""
        named = {"integrationKey": integration_key} if integration_key else {}
        for key in definition.implementations or {}:
            named[f"implementations.{key}"] = key
        found: Problems = []
        for field, key in named.items():
            try:
                await self._bus.call(
                    connections.INTEGRATIONS_GET,
                    connections.IntegrationGetRequest(key=key, ctx=ctx),
                )
            except NotFound:
                found.append({"field": field, "message": f"no integration {key}"})
        if customer_id:
            try:
                await self._bus.call(
                    identity.CUSTOMERS_GET, identity.CustomerGetRequest(id=customer_id, ctx=ctx)
                )
            except NotFound:
                found.append({"field": "customerId", "message": f"no customer {customer_id}"})
        return found

    async def _check(
        self,
        ctx: Context,
        level: c.Level,
        integration_key: str | None,
        customer_id: str | None,
        definition: c.ActionDefinition,
    ) -> None:
        found = scope_problems(level, integration_key, customer_id)
        found += definition_problems(level, definition)
        if not found:
            found = await self._reference_problems(ctx, integration_key, customer_id, definition)
        if found:
            raise invalid(found)

    async def create(self, req: c.ActionCreateRequest) -> c.Action:
        """Define an action (revision 1) after checking its scope, definition and references."""
        workspace_id = req.ctx.admin_workspace()
        definition = req.definition()
        await self._check(req.ctx, req.level, req.integration_key, req.customer_id, definition)
        async with self._pool.acquire() as conn:
            record = await store.insert_action(conn, workspace_id, req, definition)
        return reply(record)

    async def get(self, req: c.ActionGetRequest) -> c.Action:
        """Read an action at its newest revision."""
        return reply(await self._revisioned.find(req.ctx, req.key))

    async def patch(self, req: c.ActionPatchRequest) -> c.Action:
        """Change the given parts of an action (the next revision); ``null`` removes a part."""

        async def check(current: ActionRecord, definition: c.ActionDefinition) -> None:
            await self._check(
                req.ctx, current.level, current.integration_key, current.customer_id, definition
            )

        return reply(
            await self._revisioned.patch(req.ctx, req.key, req.revision, req.given(), check)
        )

    async def delete(self, req: c.ActionDeleteRequest) -> c.ActionDeleted:
        """Delete an action with its revisions and instances (its runs stay in the log)."""
        instances = await self._revisioned.delete(req.ctx, req.key)
        return c.ActionDeleted(deleted=True, instances=instances)

    async def list(self, req: c.ActionListRequest) -> c.ActionPage:
        """List actions by key."""
        page, cursor = await self._revisioned.page(req.ctx, req)
        return c.ActionPage(items=[reply(r) for r in page], cursor=cursor)

    async def revisions(self, req: c.ActionRevisionsRequest) -> c.ActionRevisionPage:
        """List an action's revisions, newest first."""
        return c.ActionRevisionPage(items=await self._revisioned.revisions(req.ctx, req.key))

    async def revision(self, req: c.ActionRevisionGetRequest) -> c.ActionRevision:
        """Read one revision of an action."""
        return await self._revisioned.revision(req.ctx, req.key, req.n)
