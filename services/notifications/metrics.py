"""Report the notifications service: delivery attempts (outcome, duration), endpoints disabled.

Pending deliveries are the ``deliveries`` queue's pending jobs (``tether_jobs_pending``).
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import Counter, Histogram

from libs.common.metrics import Labelled, Metrics

DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""A receiver's answer time, up to the delivery timeout."""
DELIVERY_OUTCOMES = ("delivered", "retrying", "failed", "gone", "disabled", "skipped")
"""How one attempt ends: taken; failed, tried again later; failed for good (last attempt);
answered 410 (the endpoint is disabled); failed and disabled its endpoint; not sent (the
endpoint was disabled or deleted before it)."""


class NotificationsMetrics:
    """The notifications service's group, on its app's registry."""

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self._deliveries = Labelled(
            Counter(
                "tether_webhook_deliveries_total",
                "Delivery attempts, by outcome (delivered|retrying|failed|gone|disabled|skipped)",
                ["outcome"],
                registry=r,
            )
        )
        self.delivery_seconds = Histogram(
            "tether_webhook_delivery_duration_seconds",
            "Seconds a receiver took to answer one delivery attempt",
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self.endpoints_disabled = Counter(
            "tether_webhook_endpoints_disabled_total",
            "Endpoints disabled (410 Gone, or failing for too long)",
            registry=r,
        )

    def attempted(self, outcome: str, seconds: float | None = None) -> None:
        """Count one attempt (one of :data:`DELIVERY_OUTCOMES`); time it when it was sent."""
        self._deliveries.child(outcome).inc()
        if seconds is not None:
            self.delivery_seconds.observe(seconds)

    def endpoint_disabled(self) -> None:
        """Count one endpoint disabled by a delivery's verdict."""
        self.endpoints_disabled.inc()


NOTIFICATIONS_METRICS = web.AppKey("notifications_metrics", NotificationsMetrics)
