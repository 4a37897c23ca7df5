"""``GET /system/status``: every service's replicas and status, for an admin of a workspace.

The gateway asks, all at once:

* each service's ``tether.<service>.system.status``, with the admin's context: one
  replica answers, with the figures of the machinery (shared by every workspace, counts
  only) and its checks of the admin's workspace;
* nats.micro's ``$SRV.INFO.<service>`` and ``$SRV.STATS.<service>``, which every replica
  answers; answers are gathered for :data:`REPLICAS_WINDOW` seconds (how many replicas
  run is not known in advance, so there is no count to wait for).

A service that does not answer its status within :data:`STATUS_TIMEOUT` is reported
down: the answer is still 200, with ``ok`` false and a problem naming the service, never
a 5xx — a status page has to work best when something is broken. Only the caller's
authentication and input are refused (401/403/422), as on every route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import nats.errors
from aiohttp import web
from nats.aio.client import Client as NatsClient
from pydantic import ValidationError

from libs.common.bus import Bus
from libs.common.config import SERVICES
from libs.common.contracts.base import Context
from libs.common.contracts.system import (
    Replica,
    ServiceOverview,
    ServiceStatus,
    SystemStatus,
    SystemStatusRequest,
    system_status_operation,
)
from libs.common.errors import (
    InvalidInput,
    TetherError,
    Timeout,
    Unavailable,
    invalid_from_validation,
)
from libs.common.runtime import BUS
from services.gateway.keys import AUTHENTICATOR, REQUEST_ID

PATH = "/system/status"
STATUS_TIMEOUT = 3.0
"""Seconds a service has to answer its status before it is reported down."""
REPLICAS_WINDOW = 0.25
"""Seconds the replicas' ``$SRV.INFO``/``$SRV.STATS`` answers are gathered."""
INFO_TYPE = "io.nats.micro.v1.info_response"
STATS_TYPE = "io.nats.micro.v1.stats_response"


async def system_status(request: web.Request) -> web.Response:
    """Answer the system overview for the calling admin's workspace (always 200 once admitted)."""
    ctx = await request.app[AUTHENTICATOR].context(request, "admin", request[REQUEST_ID])
    if "ctx" in request.query:
        raise InvalidInput("ctx is not a field you can set", details=[{"field": "ctx"}])
    try:  # the route takes no parameters: any is refused by name, as on every route
        ask = SystemStatusRequest.model_validate({**request.query, "ctx": ctx})
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc
    bus = request.app[BUS]
    answers, replicas = await asyncio.gather(
        asyncio.gather(*(_status(bus, name, ask) for name in SERVICES)),
        gather_replicas(bus.nc, SERVICES, REPLICAS_WINDOW),
    )
    overview = assemble(ctx, dict(zip(SERVICES, answers, strict=True)), replicas)
    return web.Response(
        text=overview.model_dump_json(),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def _status(bus: Bus, name: str, ask: SystemStatusRequest) -> ServiceStatus | str:
    """Return the service's status, or why there is none (a sentence)."""
    try:
        return await bus.call(system_status_operation(name), ask, timeout=STATUS_TIMEOUT)
    except Unavailable:
        return "down (no replica is running)"
    except Timeout:
        return f"down (no replica answered within {STATUS_TIMEOUT:.0f} s)"
    except TetherError as exc:
        return f"its status failed ({exc.message})"


async def gather_replicas(
    nc: NatsClient, services: Sequence[str], window: float
) -> dict[str, list[Replica]]:
    """Return the replicas of each service that answer ``$SRV.INFO``/``$SRV.STATS`` in ``window``."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    with contextlib.suppress(nats.errors.Error):  # no bus: every status call says so too
        await _listen(nc, services, window, seen)
    found: dict[str, list[Replica]] = {name: [] for name in services}
    for (name, _), parts in sorted(seen.items()):
        try:
            found[name].append(Replica.model_validate(parts))
        except ValidationError:
            continue  # a replica that describes itself in a shape we do not know
    return found


async def _listen(
    nc: NatsClient,
    services: Sequence[str],
    window: float,
    seen: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Ask every replica to describe itself; note the answers that arrive within ``window``."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        for name in services:
            await nc.publish(f"$SRV.INFO.{name}", b"", reply=inbox)
            await nc.publish(f"$SRV.STATS.{name}", b"", reply=inbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + window
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await sub.next_msg(timeout=left)
            except (nats.errors.TimeoutError, TimeoutError):
                break
            _note(seen, msg.data, services)
    finally:
        await sub.unsubscribe()


def _note(
    seen: dict[tuple[str, str], dict[str, Any]], data: bytes, services: Sequence[str]
) -> None:
    """Merge one ``$SRV`` answer into what is known of its replica (ignore what does not read)."""
    try:
        answer = json.loads(data)
        kind, name, replica = answer["type"], answer["name"], answer["id"]
        if kind not in (INFO_TYPE, STATS_TYPE) or name not in services:
            return
        parts = seen.setdefault((name, replica), {"id": replica, "version": answer.get("version")})
        if kind == STATS_TYPE:
            parts["started"] = answer.get("started")
            parts["requests"] = sum(int(e["num_requests"]) for e in answer.get("endpoints") or [])
    except (ValueError, KeyError, TypeError):
        return


def assemble(
    ctx: Context,
    answers: dict[str, ServiceStatus | str],
    replicas: dict[str, list[Replica]],
) -> SystemStatus:
    """Return the overview: each service's replicas and status, and every problem worded."""
    services: dict[str, ServiceOverview] = {}
    problems: list[str] = []
    for name, answer in answers.items():
        running = list(replicas.get(name, []))
        if isinstance(answer, str):
            problems.append(f"{name}: {answer}")
            status, error = None, answer
        else:
            status, error = answer, None
            problems.extend(f"{name}: {p}" for p in answer.problems)
            if answer.instance and all(r.id != answer.instance for r in running):
                # It answered its status but its $SRV answer came after the window.
                running.append(Replica(id=answer.instance, version=answer.version))
        services[name] = ServiceOverview(
            ok=status is not None and status.ok,
            replicas=running,
            versions=sorted({r.version for r in running}),
            status=status,
            error=error,
        )
    return SystemStatus(
        ok=not problems,
        checked_at=datetime.now(UTC),
        workspace_id=ctx.workspace(),
        problems=problems,
        services=services,
    )


def with_system_status(doc: dict[str, Any]) -> dict[str, Any]:
    """Return the OpenAPI document ``doc`` with ``GET /system/status`` and its schemas added."""
    schema: dict[str, Any] = SystemStatus.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}", mode="serialization"
    )
    components = {**doc["components"]["schemas"], **schema.pop("$defs", {})}
    components[SystemStatus.__name__] = schema
    operation = {
        "operationId": "system_status_get",
        "summary": "Report every service's replicas and status, and the checks of the "
        "caller's workspace (200 with ok false when a service is down)",
        "tags": ["system"],
        "x-nats-subjects": [system_status_operation(name).subject for name in SERVICES],
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{SystemStatus.__name__}"}
                    }
                },
            },
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
        "security": [{"bearer": []}],
        "x-tether-auth": "admin",
    }
    return {
        **doc,
        "paths": {**doc["paths"], PATH: {"get": operation}},
        "components": {**doc["components"], "schemas": components},
    }
