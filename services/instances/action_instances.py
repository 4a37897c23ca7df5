"""Answer ``tether.instances.action_instances.*``: deploy, read (effective action), customise,
upgrade, reset, run.

An action instance is an action deployed to one connection: a base revision and a
customisation (a JSON Merge Patch, ``action_customization.py`` over the one mechanism in
``libs/common/customization.py``). Deployments create instances of the ``autoDeploy``
actions whose level fits the connection (one step per action, :func:`ensure`); an admin
may create one by hand. Who may do what: admins anything; a customer sees, switches, sets
parameter values of and runs only their own instances.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg

from libs.common.bus import Bus
from libs.common.contracts import actions as c
from libs.common.contracts.base import Context
from libs.common.customization import (
    Effective,
    customer_customization,
    parameter_problems,
    require_upgradable,
)
from libs.common.db import Conn
from libs.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from libs.common.paging import keyset_page, uuid_after
from services.instances import action_customization as custom
from services.instances.action_runner import ActionRunner, Target
from services.instances.actions import definition_problems, invalid
from services.instances.deployments import visible_connection
from services.instances.lifecycle import StepFailure
from services.instances.store import actions as store
from services.instances.store.actions import ActionInstanceRecord, ActionRecord
from services.instances.store.connections import KnownConnection

RevisionKey = tuple[UUID, str, str, int]
"""(workspace, action key, when the action was created, revision): a recreated action's
revisions are not the deleted one's."""


def fits(action: ActionRecord, known: KnownConnection) -> bool:
    """Tell whether an action of this level may run on this connection."""
    if action.level == "app":
        return action.integration_key == known.integration_key
    if action.level == "customer":
        return action.customer_id == known.customer_id and action.integration_key in (
            None,
            known.integration_key,
        )
    return True


def connected(known: KnownConnection) -> KnownConnection:
    """Return the connection if it can run actions (409 ``connection_not_connected`` if not)."""
    if known.state != "connected":
        raise Conflict(f"the connection is {known.state}", code="connection_not_connected")
    return known


class Definitions:
    """Revisions of actions, kept in memory once read (a revision never changes)."""

    def __init__(self) -> None:
        self._cache: Effective[RevisionKey, c.ActionDefinition] = Effective(custom.apply)

    @staticmethod
    def _key(action: ActionRecord, revision: int) -> RevisionKey:
        return (action.workspace_id, action.key, action.created_at.isoformat(), revision)

    async def at(self, conn: Conn, action: ActionRecord, revision: int) -> c.ActionDefinition:
        """Return the action's definition at ``revision``."""
        if revision == action.revision:
            return action.definition
        return await self._cache.revision(
            self._key(action, revision), lambda: self._read(conn, action, revision)
        )

    @staticmethod
    async def _read(conn: Conn, action: ActionRecord, revision: int) -> c.ActionDefinition:
        stored = await store.select_revision(conn, action.workspace_id, action.key, revision)
        if stored is None:
            raise NotFound(f"revision {revision} of action {action.key} not found")
        return stored.definition

    async def effective(
        self, conn: Conn, action: ActionRecord, record: ActionInstanceRecord
    ) -> tuple[c.ActionDefinition, dict[str, Any]]:
        """Return what an instance runs: its base revision with its customisation, and its values.

        Both are shared with every other caller (kept in memory): read them, never change them.
        """
        return await self._cache.effective(
            self._key(action, record.base_revision),
            record.customization,
            lambda: self.at(conn, action, record.base_revision),
        )

    async def target(
        self, conn: Conn, known: KnownConnection, action_key: str, *, need_instance: bool
    ) -> Target:
        """Return what running ``action_key`` on a connection runs.

        The connection's instance when it has one (disabled: 409); otherwise the action's
        newest revision when its level fits the connection (``need_instance``: 404).
        """
        action, record = await store.select_action_for_connection(
            conn, known.workspace_id, action_key, known.id
        )
        if action is None:
            raise NotFound(f"action {action_key} not found")
        if record is not None and record.archived_at is None:
            if not record.enabled:
                raise Conflict("the action instance is disabled", code="action_instance_disabled")
            definition, values = await self.effective(conn, action, record)
            return Target(
                known, action.key, action.level, record.id, record.base_revision, definition, values
            )
        if need_instance:
            raise NotFound(
                f"the connection has no instance of action {action_key}",
                code="action_instance_not_found",
            )
        if not fits(action, known):
            raise InvalidInput(
                f"a {action.level}-level action cannot run on this connection",
                code="action_not_for_connection",
                details=[{"field": "connectionId"}],
            )
        return Target(known, action.key, action.level, None, action.revision, action.definition, {})


async def ensure(pool: asyncpg.Pool[asyncpg.Record], known: KnownConnection, key: str) -> None:
    """Give a connection its instance of an autoDeploy action (a deployment step; idempotent)."""
    async with pool.acquire() as conn:
        action = await store.select_action(conn, known.workspace_id, key)
        if action is None:
            raise StepFailure(f"action {key} no longer exists", transient=False)
        if not fits(action, known):
            raise StepFailure(f"action {key} no longer fits the connection", transient=False)
        await store.ensure_instance(
            conn,
            uuid4(),
            known.workspace_id,
            key,
            connection_id=known.id,
            customer_id=known.customer_id,
            integration_key=known.integration_key,
        )


class ActionInstances:
    """Action instance handlers, one per operation."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], bus: Bus, runner: ActionRunner) -> None:
        self._pool = pool
        self._bus = bus
        self._runner = runner
        self.definitions = Definitions()

    async def _view(
        self, conn: Conn, record: ActionInstanceRecord, action: ActionRecord
    ) -> c.ActionInstance:
        effective, values = await self.definitions.effective(conn, action, record)
        return c.ActionInstance(
            **record.model_dump(exclude={"workspace_id", "archived_at"}),
            latest_revision=action.revision,
            outdated=record.base_revision < action.revision,
            action=effective,
            parameter_values=values,
            archived=record.archived_at is not None,
        )

    async def _load(
        self, conn: Conn, ctx: Context, instance_id: UUID
    ) -> tuple[ActionInstanceRecord, ActionRecord]:
        workspace_id = ctx.workspace()
        if ctx.principal == "anonymous":
            raise Forbidden("this operation needs a token")
        record = await store.select_instance(conn, workspace_id, instance_id)
        if record is None or not ctx.sees(record.customer_id):
            raise NotFound("action instance not found")
        action = await store.select_action(conn, workspace_id, record.action_key)
        if action is None:  # deleted meanwhile: its instances go with it
            raise NotFound("action instance not found")
        return record, action

    async def get(self, req: c.ActionInstanceGetRequest) -> c.ActionInstance:
        """Read an instance with its effective action."""
        async with self._pool.acquire() as conn:
            record, action = await self._load(conn, req.ctx, req.id)
            return await self._view(conn, record, action)

    async def list(self, req: c.ActionInstanceListRequest) -> c.ActionInstancePage:
        """List instances by id (a customer's own)."""
        workspace_id = req.ctx.workspace()
        customer_id, visible = req.ctx.customer_filter(req.customer_id)
        if not visible:
            return c.ActionInstancePage(items=[], cursor=None)
        async with self._pool.acquire() as conn:
            rows = await store.list_instances(
                conn,
                workspace_id,
                connection_id=req.connection_id,
                action_key=req.action_key,
                customer_id=customer_id,
                after=uuid_after(req.cursor),
                limit=req.limit + 1,
            )
            page, cursor = keyset_page(rows, req.limit, lambda r: (r.id,))
            actions = {
                key: await store.select_action(conn, workspace_id, key)
                for key in {r.action_key for r in page}
            }
            items = [
                await self._view(conn, r, found)
                for r in page
                if (found := actions[r.action_key]) is not None
            ]
        return c.ActionInstancePage(items=items, cursor=cursor)

    async def create(self, req: c.ActionInstanceCreateRequest) -> c.ActionInstance:
        """Deploy an action to a connection by hand; the existing instance when there is one."""
        workspace_id = req.ctx.admin_workspace()
        known = await visible_connection(self._pool, self._bus, req.ctx, req.connection_id)
        async with self._pool.acquire() as conn, conn.transaction():
            action = await store.select_action(conn, workspace_id, req.action_key)
            if action is None:
                raise NotFound(f"action {req.action_key} not found")
            if not fits(action, known):
                raise InvalidInput(
                    f"a {action.level}-level action cannot run on this connection",
                    details=[{"field": "connectionId"}],
                )
            await store.ensure_instance(
                conn,
                uuid4(),
                workspace_id,
                action.key,
                connection_id=known.id,
                customer_id=known.customer_id,
                integration_key=known.integration_key,
            )
            record = await store.select_connection_instance(
                conn, workspace_id, known.id, action.key
            )
            assert record is not None  # ensured in this transaction
            return await self._view(conn, record, action)

    async def patch(self, req: c.ActionInstancePatchRequest) -> c.ActionInstance:
        """Customise and/or switch; customers may only switch and set parameter values."""
        async with self._pool.acquire() as conn, conn.transaction():
            record, action = await self._load(conn, req.ctx, req.id)
            customization = record.customization
            if req.customization is not None:
                if req.ctx.principal == "customer":
                    customization = customer_customization(customization, req.customization)
                else:
                    customization = req.customization
            enabled = record.enabled if req.enabled is None else req.enabled
            base = await self.definitions.at(conn, action, record.base_revision)
            self._check(action.level, base, customization)
            updated = await store.update_instance(
                conn, record, customization, enabled, record.base_revision
            )
            return await self._view(conn, updated, action)

    @staticmethod
    def _check(level: c.Level, base: c.ActionDefinition, customization: dict[str, Any]) -> None:
        """Refuse a customisation whose effective action or parameter values do not validate."""
        effective, values = custom.apply(base, customization)
        problems = [
            {"field": f"action.{p['field']}", "message": p["message"]}
            for p in definition_problems(level, effective)
        ]
        problems += parameter_problems(base.parameters, values)
        if problems:
            raise invalid(problems)

    async def upgrade(self, req: c.ActionInstanceUpgradeRequest) -> c.ActionInstance:
        """Carry the customisation onto the newest revision, or refuse listing the conflicts."""
        req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            record, action = await self._load(conn, req.ctx, req.id)
            if record.base_revision == action.revision:
                return await self._view(conn, record, action)
            old = await self.definitions.at(conn, action, record.base_revision)
            require_upgradable(
                action.revision,
                custom.conflicts(old, action.definition, record.customization),
                lambda: self._check(action.level, action.definition, record.customization),
            )
            updated = await store.update_instance(
                conn, record, record.customization, record.enabled, action.revision
            )
            return await self._view(conn, updated, action)

    async def reset(self, req: c.ActionInstanceResetRequest) -> c.ActionInstance:
        """Drop the customisation and move to the newest revision (nothing can conflict)."""
        req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            record, action = await self._load(conn, req.ctx, req.id)
            updated = await store.update_instance(conn, record, {}, record.enabled, action.revision)
            return await self._view(conn, updated, action)

    async def run(self, req: c.ActionInstanceRunRequest) -> c.ActionRunResult:
        """Run an instance (its owner or an admin)."""
        async with self._pool.acquire() as conn:
            record, _ = await self._load(conn, req.ctx, req.id)
        if record.archived_at is not None:
            raise Conflict("the action instance is archived", code="action_instance_archived")
        known = connected(
            await visible_connection(self._pool, self._bus, req.ctx, record.connection_id)
        )
        async with self._pool.acquire() as conn:
            target = await self.definitions.target(
                conn, known, record.action_key, need_instance=True
            )
        return await self._runner.run(target, req.input, req.idempotency_key, req.ctx.request_id)

    async def run_on_connection(self, req: c.ActionRunOnConnectionRequest) -> c.ActionRunResult:
        """Run a connection's instance of an action (other services, as the system)."""
        req.ctx.require_system()
        known = connected(
            await visible_connection(self._pool, self._bus, req.ctx, req.connection_id)
        )
        async with self._pool.acquire() as conn:
            target = await self.definitions.target(conn, known, req.action_key, need_instance=True)
        return await self._runner.run(target, req.input, req.idempotency_key, req.ctx.request_id)
