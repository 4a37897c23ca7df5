"""The metric catalogue the alert rules and the dashboard may name (the metrics contract).

Copied from the catalogue agreed for issue #18: every name is ``tether_``-prefixed, every
label set is bounded. ``CATALOGUE`` maps a metric's name to its kind and label names (the
labels Prometheus adds at scrape time, ``job`` and ``instance``, are not listed).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Kind = Literal["counter", "gauge", "histogram"]


class Metric(NamedTuple):
    """One catalogue entry: what kind of metric it is and which labels it carries."""

    kind: Kind
    labels: frozenset[str]


def _m(kind: Kind, *labels: str) -> Metric:
    return Metric(kind, frozenset(labels))


CATALOGUE: dict[str, Metric] = {
    "tether_http_requests_total": _m("counter", "route", "method", "status"),
    "tether_http_request_duration_seconds": _m("histogram", "route", "method"),
    "tether_nats_requests_total": _m("counter", "operation", "status"),
    "tether_nats_request_duration_seconds": _m("histogram", "operation"),
    "tether_token_verifications_total": _m("counter", "result"),
    "tether_kept_replies_total": _m("counter", "route", "result"),
    "tether_outbox_pending_rows": _m("gauge"),
    "tether_outbox_publish_lag_seconds": _m("gauge"),
    "tether_events_published_total": _m("counter"),
    "tether_consumer_pending_messages": _m("gauge", "consumer"),
    "tether_consumer_ack_pending_messages": _m("gauge", "consumer"),
    "tether_consumer_redelivered_messages": _m("gauge", "consumer"),
    "tether_events_handled_total": _m("counter", "consumer", "outcome"),
    "tether_dead_letters": _m("gauge"),
    "tether_credential_refreshes_total": _m("counter", "outcome"),
    "tether_token_soonest_expiry_seconds": _m("gauge"),
    "tether_connections": _m("gauge", "status"),
    "tether_deployment_steps": _m("gauge", "state"),
    "tether_deployment_step_attempts_total": _m("counter", "outcome"),
    "tether_flow_runs_total": _m("counter", "state"),
    "tether_flow_runs_active": _m("gauge", "state"),
    "tether_flow_run_queue_depth": _m("gauge", "rank"),
    "tether_flow_node_duration_seconds": _m("histogram", "node_type", "outcome"),
    "tether_action_runs_total": _m("counter", "outcome"),
    "tether_sync_passes_total": _m("counter", "outcome"),
    "tether_synced_records_total": _m("counter", "change"),
    "tether_inbound_webhooks_total": _m("counter", "outcome"),
    "tether_webhook_deliveries_total": _m("counter", "outcome"),
    "tether_webhook_delivery_duration_seconds": _m("histogram"),
    "tether_webhook_endpoints_disabled_total": _m("counter"),
    "tether_jobs_pending": _m("gauge", "queue"),
    "tether_jobs_finished_total": _m("counter", "queue", "outcome"),
    "tether_db_pool_connections": _m("gauge", "state"),
    "tether_db_pool_waiting": _m("gauge"),
    "tether_nats_reconnects_total": _m("counter"),
    "tether_nats_connected": _m("gauge"),
    "tether_build_info": _m("gauge", "version"),
}

SCRAPE_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus adds to every series it scrapes."""

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
"""The series a histogram ``name`` is exposed as (``_bucket`` adds the ``le`` label)."""


def known(series: str) -> Metric | None:
    """Return the catalogue entry behind a series name as PromQL sees it, or None.

    A histogram exists only as its ``_bucket`` (with ``le`` added to its labels), ``_sum``
    and ``_count`` series, never under its bare name; ``up`` and prometheus-client's default
    ``process_*`` collectors are known, with no labels of their own.
    """
    entry = CATALOGUE.get(series)
    if entry is not None:
        return entry if entry.kind != "histogram" else None
    for suffix in HISTOGRAM_SUFFIXES:
        entry = CATALOGUE.get(series.removesuffix(suffix))
        if series.endswith(suffix) and entry is not None and entry.kind == "histogram":
            return entry._replace(labels=entry.labels | ({"le"} if suffix == "_bucket" else set()))
    if series == "up" or series.startswith("process_"):
        return Metric("gauge", frozenset())
    return None
