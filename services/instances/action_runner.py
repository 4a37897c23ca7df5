"""Run one action on one connection, through the connections proxy, and log the run.

A run, in order (:meth:`ActionRunner.run`):

1. **What runs** is settled by the caller (:class:`Target`): the connection, the action's
   effective definition (an instance's base revision with its customisation, or the
   action's newest revision) and the parameter values.
2. **The request for this integration**: a universal action's
   ``implementations.<integrationKey>`` (none: 422 ``not_implemented_for_integration``),
   any other action's ``request``.
3. **The input** is checked against ``inputSchema``: 422 naming ``input.<path>``, before
   anything is written or called.
4. **An Idempotency-Key** is claimed on the connection before the app is called: a
   ``running`` run row holding the key (unique per connection). A repeat of the key within
   24 hours finds that row: a finished run's stored result is answered again (an error
   too) and the app is not called; a run still in flight is 409 ``action_run_in_progress``;
   the same key with another action or input is 409 ``idempotency_key_reused``. A claim
   left ``running`` by a process that died is taken over once it is older than a run may
   last, and the app is called again with the same key. Runs without a key are written
   once, when they end.
5. **The request** is resolved: its expressions over ``{input, customer, connection,
   parameters}`` (``libs/common/expressions.py``; the customer is read from identity only
   when the request names it).
6. **The call** goes over the bus to the connections proxy as the system for the
   workspace (credentials never reach this service; the proxy renews on 401, waits out a
   short Retry-After and keeps to its SSRF rules), bounded by ``TETHER_ACTION_TIMEOUT``.
7. **The answer** is mapped: 2xx/3xx → the output (``outputMapping`` over the parsed
   body, or the body); 4xx → 422 ``app_rejected`` with the app's status and message; 5xx
   or an unreachable app → 502 ``app_unavailable``; no answer in time → 504
   ``action_timeout``.
8. **The log**: the run's row (input, output or its size past ``action_output_limit``,
   status, duration, the request made — method, path, status; never credentials, headers
   or the query — and the error) and, for a failure, ``action_run.failed`` through the
   outbox, in one transaction.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog
from jsonschema import Draft202012Validator

from libs.common import expressions
from libs.common.answers import Answer, app_failure, body_of, text
from libs.common.bus import Bus
from libs.common.contracts import actions as c
from libs.common.contracts import connections, identity
from libs.common.contracts.base import Context
from libs.common.errors import (
    BadGateway,
    Conflict,
    InvalidInput,
    TetherError,
    Timeout,
    Unavailable,
    error_class_for_status,
)
from libs.common.outbox import emit
from services.instances.metrics import InstancesMetrics
from services.instances.settings import InstancesOptions
from services.instances.store import action_runs as store
from services.instances.store.action_runs import ActionRunEnd, ActionRunRecord, ActionRunStart
from services.instances.store.connections import KnownConnection

log = structlog.get_logger(__name__)

IDEMPOTENCY_WINDOW = 24 * 3600.0
"""Seconds an Idempotency-Key stays bound to its first run."""
ABANDONED_MARGIN = 30.0
"""Seconds past the action timeout after which a ``running`` claim counts as abandoned."""


@dataclass(frozen=True)
class Target:
    """What a run runs: an action's effective definition on one connection."""

    known: KnownConnection
    action_key: str
    level: c.Level
    instance_id: UUID | None
    revision: int
    definition: c.ActionDefinition
    values: dict[str, Any]


def implementation(target: Target) -> c.ActionRequestSpec:
    """Return the request the action makes on the target's integration (422 when it has none)."""
    integration_key = target.known.integration_key
    if target.level == "universal":
        spec = (target.definition.implementations or {}).get(integration_key)
    else:
        spec = target.definition.request
    if spec is None:
        raise InvalidInput(
            f"action {target.action_key} has no implementation for integration {integration_key}",
            code="not_implemented_for_integration",
            details=[{"field": "connectionId", "integrationKey": integration_key}],
        )
    return spec


def check_input(schema: dict[str, Any] | None, value: Any) -> None:
    """Refuse an input that does not match the action's inputSchema, naming each field."""
    if not schema:
        return
    errors = sorted(
        Draft202012Validator(schema).iter_errors(value), key=lambda e: list(map(str, e.path))
    )
    if errors:
        problems = [
            {"field": ".".join(["input", *map(str, e.absolute_path)]), "message": e.message}
            for e in errors
        ]
        first = problems[0]
        raise InvalidInput(f"{first['field']}: {first['message']}", details=problems)


def fingerprint(action_key: str, value: Any) -> str:
    """Return what a repeated Idempotency-Key must repeat: the action and the input."""
    canonical = json.dumps([action_key, value], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def stored_error(error: c.ActionRunError) -> TetherError:
    """Return the error a failed run answered, rebuilt from the log (an idempotent replay)."""
    return error_class_for_status(error.status)(
        error.message, code=error.code, details=error.details
    )


def replay(record: ActionRunRecord) -> c.ActionRunResult:
    """Answer a finished run again (its stored result or error); the app is not called."""
    if record.status == "error" and record.error is not None:
        raise stored_error(record.error)
    if record.output_dropped:
        raise Conflict(
            "the run with this Idempotency-Key finished, but its output is no longer kept",
            code="idempotent_result_not_kept",
            details={"actionRunId": str(record.id)},
        )
    return c.ActionRunResult(output=record.output, action_run_id=record.id, replayed=True)


@dataclass(frozen=True)
class Call:
    """A resolved request, ready for the proxy."""

    method: c.Method
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None

    @property
    def made(self) -> c.ActionRunMade:
        """Return what the log keeps of it (no headers, no query)."""
        return c.ActionRunMade(method=self.method, path=self.path, status=None)


_PATH = re.compile(r"^/[^\x00-\x1f\x7f]{0,4095}$")
_HEADER_VALUE = re.compile(r"^[^\x00-\x08\x0a-\x1f\x7f]{0,8192}$")


def _bad_request(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"{field}: {message}",
        code="invalid_request",
        details=[{"field": field, "message": message}],
    )


def resolve_call(spec: c.ActionRequestSpec, scope: dict[str, Any], key: str | None) -> Call:
    """Resolve a request's expressions over ``scope``; 422 naming ``request.<field>``."""
    resolved = expressions.resolve(spec.model_dump(mode="json"), scope, "request")
    path = resolved.get("path")
    if not isinstance(path, str) or not _PATH.match(path):
        raise _bad_request(
            "request.path", "must resolve to a path starting with / (no control characters)"
        )
    query = [
        (str(k), text(item))
        for k, v in (resolved.get("query") or {}).items()
        if v is not None
        for item in (v if isinstance(v, list) else [v])
    ]
    headers = {
        str(k): text(v) if not isinstance(v, dict | list) else json.dumps(v)
        for k, v in (resolved.get("headers") or {}).items()
        if v is not None
    }
    for name, header in headers.items():
        if not _HEADER_VALUE.match(header):
            raise _bad_request(
                f"request.headers.{name}", "must resolve to a value without line breaks"
            )
    body: bytes | None = None
    if resolved.get("body") is not None:
        body = json.dumps(resolved["body"], separators=(",", ":")).encode()
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    headers.setdefault("Accept", "application/json")
    if key is not None:
        headers["Idempotency-Key"] = key
    return Call(spec.method, path, query, headers, body)


def outcome(answer: Answer, call: Call, output_mapping: str | None) -> Any:
    """Return the output of a successful answer; raise the error a failed one means."""
    if answer.status >= 400:
        raise app_failure(answer, f"{call.method} {call.path}")
    body = body_of(answer)
    if output_mapping is None:
        return body
    return expressions.search(output_mapping, body, "outputMapping")


def proxy_failure(exc: TetherError, timeout: float) -> TetherError:
    """Return what a failed proxy call means for the run's caller."""
    if isinstance(exc, Timeout):
        return Timeout(f"the app did not answer within {timeout:g} s", code="action_timeout")
    if isinstance(exc, Unavailable):
        return BadGateway(f"the app could not be reached: {exc.message}", code="app_unavailable")
    return exc


class ActionRunner:
    """Run actions on connections and log every run."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        bus: Bus,
        options: InstancesOptions,
        metrics: InstancesMetrics | None = None,
    ) -> None:
        """Run through the proxy on ``bus``; with ``metrics``, count each run's outcome."""
        self._pool = pool
        self._bus = bus
        self._options = options
        self._metrics = metrics

    async def run(
        self, target: Target, value: Any, idempotency_key: str | None, request_id: str = ""
    ) -> c.ActionRunResult:
        """Run ``target`` with input ``value``; return its output or raise what it failed with."""
        spec = implementation(target)
        check_input(target.definition.input_schema, value)
        known = target.known
        start = ActionRunStart(
            id=uuid4(),
            workspace_id=known.workspace_id,
            action_key=target.action_key,
            action_instance_id=target.instance_id,
            revision=target.revision,
            connection_id=known.id,
            customer_id=known.customer_id,
            integration_key=known.integration_key,
            input=value,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint(target.action_key, value) if idempotency_key else None,
        )
        if idempotency_key is not None:
            claimed = await self._claim(start)
            if isinstance(claimed, c.ActionRunResult):
                self._count("replayed")
                return claimed
            start = claimed
        began = time.perf_counter()
        output: Any = None
        error: TetherError | None = None
        made: c.ActionRunMade | None = None
        try:
            scope = await self._scope(target, spec, value)
            call = resolve_call(spec, scope, idempotency_key)
            made = call.made
            answer = await self._send(known, call, request_id or f"action-run-{start.id}")
            made = made.model_copy(update={"status": answer.status})
            output = outcome(answer, call, target.definition.output_mapping)
        except TetherError as exc:
            error = exc
        end = self._end(output, error, made, began)
        await self._record(start, end, claimed=idempotency_key is not None)
        self._count("failed" if error is not None else "succeeded")
        if error is not None:
            raise error
        return c.ActionRunResult(output=output, action_run_id=start.id)

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.action_run(outcome)

    async def _claim(self, start: ActionRunStart) -> ActionRunStart | c.ActionRunResult:
        """Claim the run's Idempotency-Key; return the run to go on with, or a replayed result."""
        async with self._pool.acquire() as conn, conn.transaction():
            held, new = await store.claim_key(conn, start, IDEMPOTENCY_WINDOW)
            if new:
                return start
            if held.fingerprint != start.fingerprint:
                raise Conflict(
                    "this Idempotency-Key was used with another action or input",
                    code="idempotency_key_reused",
                    details={"actionRunId": str(held.id)},
                )
            if held.status != "running":
                return replay(held)
            abandoned_after = self._options.action_timeout + ABANDONED_MARGIN
            if await store.take_over(conn, held, abandoned_after) is None:
                raise Conflict(
                    "a run with this Idempotency-Key is in progress",
                    code="action_run_in_progress",
                    details={"actionRunId": str(held.id)},
                )
        log.info("action_run_taken_over", action_run_id=str(held.id))
        return start.model_copy(update={"id": held.id})

    async def _scope(self, target: Target, spec: c.ActionRequestSpec, value: Any) -> dict[str, Any]:
        """Return what the request's expressions see."""
        known = target.known
        customer: dict[str, Any] = {"id": known.customer_id}
        if "customer" in json.dumps(spec.model_dump(mode="json")):
            try:
                found = await self._bus.call(
                    identity.CUSTOMERS_GET,
                    identity.CustomerGetRequest(
                        id=known.customer_id,
                        ctx=Context(workspace_id=known.workspace_id, principal="system"),
                    ),
                )
                customer = {"id": found.id, "name": found.name, "fields": found.fields}
            except TetherError as exc:  # expressions see the id only; say why in the log
                log.warning("action_customer_unread", error_code=exc.code)
        return {
            "input": value,
            "customer": customer,
            "connection": {"id": str(known.id), "integrationKey": known.integration_key},
            "parameters": target.values,
        }

    async def _send(self, known: KnownConnection, call: Call, request_id: str) -> Answer:
        """Send the call through the connections proxy, bounded by the action timeout."""
        timeout = self._options.action_timeout
        request = connections.ProxyRequest(
            id=known.id,
            method=call.method,
            path=call.path,
            query=call.query,
            headers=call.headers,
            body=base64.b64encode(call.body).decode() if call.body is not None else None,
            ctx=Context(workspace_id=known.workspace_id, principal="system", request_id=request_id),
        )
        try:
            reply = await self._bus.call(connections.PROXY_REQUEST, request, timeout=timeout)
        except TetherError as exc:
            raise proxy_failure(exc, timeout) from exc
        return Answer(reply.status, list(reply.headers), base64.b64decode(reply.body))

    def _end(
        self,
        output: Any,
        error: TetherError | None,
        made: c.ActionRunMade | None,
        began: float,
    ) -> ActionRunEnd:
        """Return how the run ended, as logged (an output past the limit keeps only its size)."""
        duration_ms = round((time.perf_counter() - began) * 1000)
        size: int | None = None
        dropped = False
        if error is None:
            size = len(json.dumps(output, separators=(",", ":")).encode())
            if size > self._options.action_output_limit:
                output, dropped = None, True
        return ActionRunEnd(
            status="error" if error is not None else "success",
            output=output,
            output_size=size,
            output_dropped=dropped,
            request=made,
            error=None
            if error is None
            else c.ActionRunError(
                code=error.code, message=error.message, status=error.status, details=error.details
            ),
            duration_ms=duration_ms,
        )

    async def _record(self, start: ActionRunStart, end: ActionRunEnd, *, claimed: bool) -> None:
        """Log the run and, for a failure, emit ``action_run.failed`` (one transaction)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if claimed:
                await store.finish(conn, start.workspace_id, start.id, end)
            else:
                await store.insert_finished(conn, start, end)
            if end.error is not None:
                await emit(
                    conn,
                    c.ACTION_RUN_FAILED,
                    c.ActionRunFailedEvent(
                        workspace_id=start.workspace_id,
                        action_run_id=start.id,
                        action_key=start.action_key,
                        action_instance_id=start.action_instance_id,
                        connection_id=start.connection_id,
                        customer_id=start.customer_id,
                        integration_key=start.integration_key,
                        error=end.error,
                    ),
                )
        if end.error is not None:
            log.info("action_run_failed", action_run_id=str(start.id), error_code=end.error.code)
