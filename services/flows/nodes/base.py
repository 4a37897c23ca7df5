"""What a node type is, and what the runner and a node give each other.

A node type is one module of this package: its config model, its runner and its docs,
registered in ``services/flows/nodes/__init__.py``. The runner (``services/flows/runs``)
resolves the node's config expressions against the run context and validates the result
with ``config`` (:meth:`NodeType.prepare` does both), calls :meth:`NodeType.run`, and
records what came back. The runner
owns durability (records, retries, delays, for-each items, stop, limits); a node only
does its one thing and says how it went: a :class:`NodeResult`, or a :class:`NodeError`
telling a transient failure (retried by the node's retry policy) from a permanent one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

from libs.common.bus import Bus
from libs.common.expressions import ExpressionError, join, resolve
from libs.common.ssrf import UrlPolicy


class NodeConfig(BaseModel):
    """Base of every node type's config model (camelCase aliases, no unknown keys)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


@dataclass(frozen=True)
class NodeServices:
    """What nodes may use to reach the outside: the bus, an SSRF-guarded HTTP session."""

    bus: Bus
    http: aiohttp.ClientSession
    url_policy: UrlPolicy
    request_timeout: float = 30.0
    """Seconds an outbound call of a node may take."""
    response_limit: int = 10 * 1024 * 1024
    """Bytes of an answer a node reads at most (a larger one fails the node)."""


EachRunner = Callable[[list[Any], int], Awaitable[list[Any]]]
"""Run a for-each node's inner graph once per item (at most ``parallelism`` at a time)."""


@dataclass(frozen=True)
class NodeCall:
    """One execution of one node: who it runs for, and its keys."""

    workspace_id: UUID
    run_id: UUID
    node_key: str
    item: str | None
    """The for-each item index (as text) when inside a for-each, else None."""
    connection_id: UUID
    customer_id: str
    integration_key: str
    scope: dict[str, Any]
    """The run context the config's expressions were resolved against."""
    services: NodeServices
    logs: list[dict[str, Any]] = field(default_factory=list)
    """Lines the node logs (``call.log``); recorded with the execution."""
    each: EachRunner | None = None
    """Given to for-each nodes only."""

    @property
    def idempotency_key(self) -> str:
        """Return the key outbound calls carry: ``<runId>:<nodeKey>[:<item>]``, stable across retries."""
        base = f"{self.run_id}:{self.node_key}"
        return base if self.item is None else f"{base}:{self.item}"

    def log(self, message: str, **data: Any) -> None:
        """Record a line in this execution's log (never a secret)."""
        self.logs.append({"message": message, **data})


@dataclass(frozen=True)
class NodeResult:
    """What a node execution came to."""

    output: Any = None
    stop_branch: bool = False
    """The branch ends here (a filter whose condition is falsy), not the run."""
    wait_until: datetime | None = None
    """Continue after this time (a delay): the run holds no worker meanwhile."""


class NodeError(Exception):
    """A node failed: ``code`` and ``message`` for people, ``transient`` for the retry policy."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        data: Any = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.transient = transient
        self.retry_after = retry_after


class NodeType:
    """A kind of node: subclass it in the type's module and register one instance."""

    name: ClassVar[str]
    config: ClassVar[type[NodeConfig]]
    docs: ClassVar[str]
    pure: ClassVar[bool] = False
    """No side effect outside the run: may run again freely, so its record may be saved
    together with the next one (fewer round trips) instead of before the next node."""
    raw_fields: ClassVar[frozenset[str]] = frozenset()
    """Config fields whose expressions the runner leaves alone (a for-each's inner nodes)."""

    def prepare(self, raw: Mapping[str, Any], scope: Any) -> NodeConfig:
        """Resolve ``raw``'s expressions over ``scope`` (but ``raw_fields``) and validate.

        Raises NodeError (permanent): ``invalid_expression`` when an expression fails,
        ``invalid_config`` when the resolved config does not fit the type's model; its
        ``data.errors`` name each field as ``config.<path>``.
        """
        try:
            resolved = {
                k: v if k in self.raw_fields else resolve(v, scope, join("config", k))
                for k, v in raw.items()
            }
        except ExpressionError as exc:
            raise NodeError(
                "invalid_expression",
                exc.message,
                data={"errors": [{"field": exc.field, "message": exc.reason}]},
            ) from exc
        try:
            return self.config.model_validate(resolved)
        except ValidationError as exc:
            errors = config_errors(exc, resolved, "config")
            first = errors[0]
            raise NodeError(
                "invalid_config", f"{first['field']}: {first['message']}", data={"errors": errors}
            ) from exc

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Execute once with ``config`` (already resolved and validated)."""
        raise NotImplementedError


def config_errors(
    exc: ValidationError,
    value: Any,
    field: str,
    *,
    keep: Callable[[tuple[Any, ...]], bool] | None = None,
) -> list[dict[str, str]]:
    """Return a config's validation errors as ``{field, message}``, fields as JSON paths.

    Pydantic's locations name the members of a union (``headers.X.str``); those are dropped,
    and an error is kept once per field. ``keep`` (given the path as a tuple) filters errors.
    """
    found: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        path = _json_path(value, err["loc"], missing=err["type"] == "missing")
        if keep is not None and not keep(path):
            continue
        where = ".".join([field, *map(str, path)]) if field else ".".join(map(str, path))
        found.setdefault(where, err["msg"].removeprefix("Value error, "))
    return [{"field": f, "message": m} for f, m in found.items()]


def _json_path(value: Any, loc: tuple[int | str, ...], *, missing: bool) -> tuple[Any, ...]:
    """Keep the parts of ``loc`` that are keys or indexes of ``value`` (and a missing key)."""
    path: list[Any] = []
    for i, part in enumerate(loc):
        inside = (isinstance(value, dict) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
        )
        if inside:
            value = value[part]
        elif not (missing and i == len(loc) - 1):
            continue  # a union member's name, not a place in the value
        path.append(part)
    return tuple(path)
