"""Report the gateway: HTTP requests by route template, token checks, kept replies; on a port of its own.

The gateway's ``/metrics`` (and a ``/healthz``) are served by a listener of their own on
``TETHER_GATEWAY_METRICS_PORT`` (bound to ``TETHER_HEALTH_HOST``), never on the public
port: the world that reaches the API does not read the gateway's internals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import Counter, Histogram

from libs.common.metrics import METRICS, Labelled, Metrics, metrics_handler
from libs.common.runtime import CleanupContext

UNMATCHED = "unmatched"
"""The ``route`` label of a request no route matched (never the raw path: it is unbounded)."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods kept as labels; any other a client invents is counted as ``OTHER``."""


class GatewayMetrics:
    """The gateway's own group, on the registry of its :class:`Metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self._requests = Labelled(
            Counter(
                "tether_http_requests_total",
                "HTTP requests answered, by route template, method and status",
                ["route", "method", "status"],
                registry=r,
            )
        )
        self._seconds = Labelled(
            Histogram(
                "tether_http_request_duration_seconds",
                "Seconds to answer an HTTP request, by route template and method",
                ["route", "method"],
                registry=r,
            )
        )
        self._verifications = Labelled(
            Counter(
                "tether_token_verifications_total",
                "Access-token checks, by result (cache_hit|verified|rejected)",
                ["result"],
                registry=r,
            )
        )
        self._kept = Labelled(
            Counter(
                "tether_kept_replies_total",
                "Hot reads answered from a kept reply (hit) or asked of the service (asked),"
                " by route template",
                ["route", "result"],
                registry=r,
            )
        )

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count and time one answered request; ``route`` is its template or :data:`UNMATCHED`.

        ``route`` must be the matched route's template (``resource.canonical``), never the
        path. An unknown ``method`` is counted as ``OTHER``, so clients cannot add labels.
        """
        method = method if method in METHODS else "OTHER"
        self._requests.child(route, method, str(status)).inc()
        self._seconds.child(route, method).observe(seconds)

    def token_verified(self, result: str) -> None:
        """Count one token check: ``cache_hit``, ``verified`` or ``rejected``."""
        self._verifications.child(result).inc()

    def kept_reply(self, route: str, hit: bool) -> None:
        """Count one read of a route whose replies the gateway keeps (``kept_replies.py``)."""
        self._kept.child(route, "hit" if hit else "asked").inc()


GATEWAY_METRICS = web.AppKey("gateway_metrics", GatewayMetrics)


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def metrics_listener(host: str, port: int) -> CleanupContext:
    """Return the cleanup context serving ``/metrics`` and ``/healthz`` on ``host:port``.

    The listener is a small application of its own sharing the gateway's :class:`Metrics`;
    added last, it starts once the gateway's other contexts have and stops before them.
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        listener = web.Application()
        listener[METRICS] = app[METRICS]
        listener.router.add_get("/metrics", metrics_handler)
        listener.router.add_get("/healthz", _healthz)
        runner = web.AppRunner(listener, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            yield
        finally:
            await runner.cleanup()

    return ctx
