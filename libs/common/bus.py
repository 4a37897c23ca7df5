"""Speak NATS: connect, serve contracts with ``nats.micro``, call them with typed replies.

This is the only module that touches ``nats.micro``. A request's error travels as the
micro error headers (``Nats-Service-Error-Code`` = HTTP status, ``Nats-Service-Error`` =
message) plus the wire form of the error as the body; :meth:`Bus.call` turns it back
into the same domain error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic

import nats
import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.micro import add_service
from nats.micro.request import ERROR_CODE_HEADER
from nats.micro.request import Request as MicroRequest
from nats.micro.service import EndpointConfig, Service
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from libs.common import tracing
from libs.common.contracts.base import Operation, RepT, ReqT
from libs.common.errors import (
    Internal,
    TetherError,
    Timeout,
    Unavailable,
    from_wire,
    invalid_from_validation,
)
from libs.common.logging import bind_request

REQUEST_ID_HEADER = "X-Request-Id"
KEEP_FOR_HEADER = "Tether-Keep-For"
"""Seconds the caller may answer the reply again without asking (:class:`Kept`)."""

log = structlog.get_logger(__name__)


async def connect(
    url: str, name: str, *, on_reconnect: Callable[[], None] | None = None
) -> NatsClient:
    """Connect to NATS, reconnecting forever with backoff once connected.

    ``on_reconnect`` is called after every reconnection (the reconnects metric counts them).
    """

    async def on_error(exc: Exception) -> None:
        log.warning("nats_error", error=str(exc))

    async def on_disconnect() -> None:
        log.info("nats_disconnected")

    async def on_reconnected() -> None:
        log.info("nats_reconnected")
        if on_reconnect is not None:
            on_reconnect()

    try:
        return await nats.connect(
            servers=[u.strip() for u in url.split(",") if u.strip()],
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            allow_reconnect=True,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnected,
        )
    except (OSError, nats.errors.Error) as exc:
        raise Unavailable(f"cannot reach NATS at {url}") from exc


class Bus:
    """A typed client for contracts over one NATS connection."""

    def __init__(self, nc: NatsClient, *, timeout: float = 10.0) -> None:
        self.nc = nc
        self.timeout = timeout

    @property
    def js(self) -> JetStreamContext:
        """Return a JetStream context on the same connection."""
        return self.nc.jetstream()

    async def call(
        self, op: Operation[ReqT, RepT], request: ReqT, *, timeout: float | None = None
    ) -> RepT:
        """Send ``request`` to ``op``'s subject and return its validated reply.

        Raises the domain error the service answered with, ``Timeout`` when nobody answered
        in time and ``Unavailable`` when no service listens.
        """
        return self.parse_reply(op, await self.call_raw(op, request, timeout=timeout))

    async def call_raw(
        self, op: Operation[ReqT, RepT], request: ReqT, *, timeout: float | None = None
    ) -> bytes:
        """Like :meth:`call`, but return the reply's JSON as the service wrote it.

        For the gateway, which passes replies through: the service built the reply from
        its contract model, and parsing and re-serialising it again costs the most on the
        largest replies (pages of flow instances).
        """
        if not isinstance(request, op.request):
            raise TypeError(f"{op.subject} takes {op.request.__name__}")
        # Unset fields stay unset on the far side: PATCH semantics depend on it.
        data = request.model_dump_json(exclude_unset=True).encode()
        return await self.forward(op, data, request_id=request.ctx.request_id, timeout=timeout)

    async def forward(
        self,
        op: Operation[ReqT, RepT],
        data: bytes,
        *,
        request_id: str | None,
        timeout: float | None = None,
    ) -> bytes:
        """Send an already-encoded request to ``op`` and return the reply's JSON bytes.

        The gateway's path: it checks the input's shape (depth, sizes) and passes the
        JSON on; the service validates it against the contract once, on its side, and a
        bad field comes back as the same 422 either way.
        """
        return (await self.forward_kept(op, data, request_id=request_id, timeout=timeout))[0]

    async def forward_kept(
        self,
        op: Operation[ReqT, RepT],
        data: bytes,
        *,
        request_id: str | None,
        timeout: float | None = None,
    ) -> tuple[bytes, float | None]:
        """Like :meth:`forward`; also return for how many seconds the reply may be kept.

        None when the service did not say (:class:`Kept`): then it must not be kept.
        """
        headers = {REQUEST_ID_HEADER: request_id} if request_id else {}
        tracing.inject(headers)
        try:
            msg = await self.nc.request(
                op.subject, data, timeout=timeout or self.timeout, headers=headers or None
            )
        except nats.errors.NoRespondersError as exc:
            raise Unavailable(f"no {op.service} service is answering") from exc
        except (nats.errors.TimeoutError, TimeoutError) as exc:
            raise Timeout(f"the {op.service} service did not answer in time") from exc
        except nats.errors.ConnectionClosedError as exc:
            raise Unavailable("the message bus connection is closed") from exc
        if msg.headers:
            status = msg.headers.get(ERROR_CODE_HEADER)
            if status:
                try:
                    body = json.loads(msg.data) if msg.data else None
                except ValueError:
                    body = None
                raise from_wire(int(status), body)
            keep = msg.headers.get(KEEP_FOR_HEADER)
            if keep:
                try:
                    return msg.data, float(keep)
                except ValueError:
                    pass  # not a number: not to be kept
        return msg.data, None

    def parse_reply(self, op: Operation[ReqT, RepT], data: bytes) -> RepT:
        """Validate a reply's JSON against ``op``'s reply contract."""
        try:
            return op.reply.model_validate_json(data)
        except ValidationError as exc:
            raise Internal(f"the reply on {op.subject} did not match its contract") from exc


@dataclass(frozen=True)
class Kept(Generic[RepT]):
    """A reply its caller may answer again for ``seconds`` without asking.

    A handler returns it instead of the bare reply; it travels as the reply's
    ``Tether-Keep-For`` header. The gateway keeps such replies per caller
    (``services/gateway/kept_replies.py``) and drops them earlier when the object's
    events say it changed. (Not a field of every reply: a private attribute on the reply
    base would cost every model built anywhere a few µs.)
    """

    reply: RepT
    seconds: float


Handler = Callable[[ReqT], Awaitable[RepT | Kept[RepT]]]


@dataclass(frozen=True)
class Endpoint(Generic[ReqT, RepT]):
    """One served operation: the contract and the coroutine that answers it."""

    op: Operation[ReqT, RepT]
    handler: Handler[ReqT, RepT]

    @property
    def handler_name(self) -> str:
        """Return where the handler is written, as ``module:qualname`` (``tether routes``)."""
        function = getattr(self.handler, "__func__", self.handler)  # a bound method's function
        return f"{function.__module__}:{function.__qualname__}"


def endpoint(op: Operation[ReqT, RepT], handler: Handler[ReqT, RepT]) -> Endpoint[ReqT, RepT]:
    """Pair a contract with its handler (typed, so the two cannot drift apart)."""
    return Endpoint(op, handler)


async def _drain_endpoints(service: Service) -> None:
    """Drain a micro service's endpoint subscriptions (kept private by ``nats.micro``)."""
    endpoints = list(service._endpoints)
    subscriptions = [ep._subscription for ep in endpoints if ep._subscription is not None]
    await asyncio.gather(*(sub.drain() for sub in subscriptions))
    service._endpoints = []  # drained: micro's stop must not unsubscribe them again


Observe = Callable[[str, int, float], None]
"""Told of every request served: (operation subject, status, seconds); for metrics."""


class ServiceHost:
    """Serve a set of endpoints as one ``nats.micro`` service.

    Each request runs in its own task (a NATS subscription callback would otherwise
    handle one message at a time), so a slow request never blocks the others; stopping
    stops taking requests, then waits for in-flight ones up to a deadline.
    """

    def __init__(
        self,
        nc: NatsClient,
        name: str,
        version: str,
        endpoints: Sequence[Endpoint[Any, Any]],
        observe: Observe | None = None,
    ):
        self._observe = observe
        self._nc = nc
        self._name = name
        self._version = version
        self._endpoints = endpoints
        self._service: Service | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    @property
    def instance_id(self) -> str:
        """Return this replica's micro service id (empty before start)."""
        return self._service.id if self._service else ""

    async def start(self) -> None:
        """Register the service and subscribe every endpoint in the service's queue group."""
        self._service = await add_service(
            self._nc,
            name=self._name,
            version=self._version,
            description=f"Tether {self._name} service",
            queue_group=f"tether-{self._name}",
        )
        for ep in self._endpoints:
            await self._service.add_endpoint(
                EndpointConfig(
                    name=ep.op.name,
                    subject=ep.op.subject,
                    handler=self._dispatcher(ep),
                    metadata={"summary": ep.op.summary} if ep.op.summary else None,
                )
            )
        await self._nc.flush()

    async def stop(self, grace: float) -> None:
        """Stop taking requests, let in-flight ones finish within ``grace`` seconds.

        Requests NATS already routed to this replica are answered too: each endpoint's
        subscription is drained first (unsubscribed at the server, flushed, what arrived
        handed over). ``nats.micro``'s own stop merely unsubscribes, which drops them, and
        every rolling restart would time some callers out.
        """
        if self._service is not None:
            await _drain_endpoints(self._service)
            await self._service.stop()
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("requests_cancelled_at_shutdown", count=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)

    def _dispatcher(self, ep: Endpoint[Any, Any]) -> Callable[[MicroRequest], Awaitable[None]]:
        async def dispatch(req: MicroRequest) -> None:
            task = asyncio.create_task(self._handle(ep, req))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

        return dispatch

    async def _handle(self, ep: Endpoint[Any, Any], req: MicroRequest) -> None:
        headers = req.headers or {}
        if not tracing.enabled():
            await self._serve(ep, req, headers)
            return
        with tracing.span(ep.op.subject, parent=headers, kind=SpanKind.SERVER) as current:
            tracing.set_status(current, await self._serve(ep, req, headers))

    async def _serve(
        self, ep: Endpoint[Any, Any], req: MicroRequest, headers: dict[str, str]
    ) -> int:
        """Validate, run the handler, answer; return the status answered (for the span)."""
        started = time.perf_counter()
        # Each request runs in a task of its own, copied from the subscription's context,
        # which never holds a request's values: binding is enough, no clearing needed.
        bind_request(service=self._name, request_id=headers.get(REQUEST_ID_HEADER))
        status = 200
        try:
            try:
                request = ep.op.request.model_validate_json(req.data)
            except ValidationError as exc:
                raise invalid_from_validation(exc) from exc
            ctx = request.ctx
            bind_request(
                request_id=ctx.request_id or None,
                workspace_id=str(ctx.workspace_id) if ctx.workspace_id else None,
                customer_id=ctx.customer_id,
            )
            reply = await ep.handler(request)
            if isinstance(reply, Kept):
                keep = {KEEP_FOR_HEADER: f"{max(0.0, reply.seconds):.3f}"}
                await req.respond(reply.reply.model_dump_json().encode(), headers=keep)
            else:
                await req.respond(reply.model_dump_json().encode())
        except TetherError as exc:
            status = exc.status
            if status >= 500:
                log.error(
                    "request_errored", subject=ep.op.subject, error_code=exc.code, error=exc.message
                )
            await self._respond_error(req, exc)
        except asyncio.CancelledError:
            status = 503
            await self._respond_error(req, Unavailable("the service is shutting down"))
            raise
        except Exception:
            status = 500
            log.exception("request_crashed", subject=ep.op.subject)
            await self._respond_error(req, Internal("internal error"))
        finally:
            seconds = time.perf_counter() - started
            if self._observe is not None:
                self._observe(ep.op.subject, status, seconds)
            # The gateway writes the canonical line of an HTTP request; here it is debug.
            log.debug(
                "request_handled",
                subject=ep.op.subject,
                status=status,
                duration_ms=round(seconds * 1000, 2),
            )
        return status

    @staticmethod
    async def _respond_error(req: MicroRequest, exc: TetherError) -> None:
        try:
            await req.respond_error(
                str(exc.status),
                " ".join(exc.message.split())[:200],
                data=json.dumps(exc.to_wire()).encode(),
            )
        except Exception:  # the requester is gone or the connection closed; nothing to tell
            log.warning("error_reply_failed", error_code=exc.code)
