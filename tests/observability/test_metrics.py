"""Every service and the gateway serve Prometheus metrics: the catalogue's names with its
labels, values that move with work done through the gateway, never an id as a label."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from structlog.testing import capture_logs

from libs.common.config import SERVICES
from libs.common.infra import free_port
from libs.common.metrics import Metrics
from services.gateway.metrics import UNMATCHED, GatewayMetrics
from tests.conftest import Infra, Stack, WorkspaceHandle, bearer, eventually, start_gateway
from tests.deploy.metric_names import CATALOGUE
from tests.fakes.counting_app import CountingApp

COMMON = {
    "tether_build_info",
    "tether_nats_connected",
    "tether_nats_reconnects_total",
}
"""What every process reports, the gateway included."""
EVERY_SERVICE = COMMON | {
    "tether_nats_requests_total",
    "tether_nats_request_duration_seconds",
    "tether_outbox_pending_rows",
    "tether_outbox_publish_lag_seconds",
    "tether_events_published_total",
    "tether_consumer_pending_messages",
    "tether_consumer_ack_pending_messages",
    "tether_consumer_redelivered_messages",
    "tether_events_handled_total",
    "tether_dead_letters",
    "tether_jobs_pending",
    "tether_jobs_finished_total",
    "tether_db_pool_connections",
    "tether_db_pool_waiting",
}
OWN: dict[str, set[str]] = {
    "gateway": COMMON
    | {
        "tether_http_requests_total",
        "tether_http_request_duration_seconds",
        "tether_token_verifications_total",
        "tether_kept_replies_total",
    },
    "identity": EVERY_SERVICE,
    "connections": EVERY_SERVICE
    | {
        "tether_credential_refreshes_total",
        "tether_token_soonest_expiry_seconds",
        "tether_connections",
    },
    "instances": EVERY_SERVICE
    | {
        "tether_deployment_steps",
        "tether_deployment_step_attempts_total",
        "tether_action_runs_total",
        "tether_sync_passes_total",
        "tether_synced_records_total",
        "tether_inbound_webhooks_total",
    },
    "flows": EVERY_SERVICE
    | {
        "tether_flow_runs_total",
        "tether_flow_runs_active",
        "tether_flow_run_queue_depth",
        "tether_flow_node_duration_seconds",
    },
    "notifications": EVERY_SERVICE
    | {
        "tether_webhook_deliveries_total",
        "tether_webhook_delivery_duration_seconds",
        "tether_webhook_endpoints_disabled_total",
    },
}
AN_ID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)


@dataclass(frozen=True)
class Family:
    """One scraped metric family under its catalogue name (counters keep ``_total``)."""

    name: str
    kind: str
    samples: list[Sample]


Scrape = dict[str, Family]


def parse(text: str) -> Scrape:
    """Return the ``tether_`` families of a scrape by catalogue name (``_created`` dropped)."""
    found: Scrape = {}
    for family in text_string_to_metric_families(text):
        name = family.name + ("_total" if family.type == "counter" else "")
        if name.startswith("tether_") and not name.endswith("_created"):
            found[name] = Family(name, family.type, list(family.samples))
    return found


def value(scrape: Scrape, name: str, **labels: str) -> float:
    """Return the sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    family = scrape.get(name)
    if family is None:
        return 0.0
    series = name + "_count" if family.kind == "histogram" else name
    return sum(
        s.value for s in family.samples if s.name == series and labels.items() <= s.labels.items()
    )


@dataclass
class Scraper:
    """Where each process of the session stack (and a gateway of this module) serves /metrics."""

    urls: dict[str, str]
    gateway_url: str
    http: aiohttp.ClientSession

    async def text(self, process: str) -> str:
        """Return one process's /metrics body, checking it is Prometheus text."""
        async with self.http.get(self.urls[process]) as resp:
            body = await resp.text()
            assert resp.status == 200, body
            assert resp.content_type == "text/plain"
            return body

    async def scrape(self, process: str) -> Scrape:
        """Return one process's families."""
        return parse(await self.text(process))


@pytest.fixture
async def scraper(stack: Stack, infra: Infra) -> AsyncIterator[Scraper]:
    """Serve the in-process services' health apps on ports, and start a gateway with metrics."""
    sites: list[web.TCPSite] = []
    urls: dict[str, str] = {}
    for name, runner in zip(SERVICES, stack.runners, strict=False):
        port = free_port()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        sites.append(site)
        urls[name] = f"http://127.0.0.1:{port}/metrics"
    metrics_port = free_port()
    gateway, gateway_url = await start_gateway(infra, metrics_port=metrics_port)
    urls["gateway"] = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        async with aiohttp.ClientSession() as http:
            yield Scraper(urls, gateway_url, http)
    finally:
        await gateway.cleanup()
        for site in sites:
            await site.stop()


async def work(scraper: Scraper, workspace: WorkspaceHandle, app: CountingApp) -> dict[str, str]:
    """Through the gateway: a customer, an integration, a connection, a flow and one run."""
    http, base = scraper.http, scraper.gateway_url
    admin = bearer(await workspace.admin_token())

    async def call(method: str, path: str, body: Any = None, expect: int = 201) -> Any:
        async with http.request(method, base + path, json=body, headers=admin) as resp:
            answer = await resp.json()
            assert resp.status == expect, answer
            return answer

    customer = f"metrics-{secrets.token_hex(3)}"
    await call("POST", "/customers", {"id": customer, "name": "Metrics"})
    await call("POST", "/integrations", app.integration())
    connection = await call(
        "POST",
        "/connections",
        {"customerId": customer, "integrationKey": "counting", "credentials": {"apiKey": "k"}},
    )
    flow = await call(
        "POST",
        "/flows",
        {
            "key": f"m-{secrets.token_hex(3)}",
            "level": "universal",
            "name": "Metrics",
            "trigger": {"type": "api"},
            "nodes": {"shape": {"type": "transform", "config": {"expression": "input"}}},
        },
    )
    instance = await call(
        "POST", "/flow-instances", {"flowId": flow["id"], "connectionId": connection["id"]}
    )
    run = await call("POST", f"/flow-instances/{instance['id']}/run", {"input": {}}, expect=202)

    async def ended() -> bool:
        state = (await call("GET", f"/flow-runs/{run['id']}", expect=200))["state"]
        return bool(state == "completed")

    await eventually(ended, timeout=20)
    return {
        "workspace": workspace.id,
        "customer": customer,
        "connection": str(connection["id"]),
        "run": str(run["id"]),
    }


async def test_metrics_every_process_serves_its_catalogue_names(
    scraper: Scraper, workspace: WorkspaceHandle
) -> None:
    async with CountingApp() as app:
        ids = await work(scraper, workspace, app)
    scrapes = {name: await scraper.scrape(name) for name in OWN}
    for process, expected in OWN.items():
        missing = expected - set(scrapes[process])
        assert missing == set(), f"{process} lacks {sorted(missing)}"
        unknown = set(scrapes[process]) - set(CATALOGUE)
        assert unknown == set(), f"{process} reports names outside the catalogue: {unknown}"
    assert "tether_outbox_pending_rows" not in scrapes["gateway"]
    seen = {name for scrape in scrapes.values() for name in scrape}
    assert seen == set(CATALOGUE)
    for scrape in scrapes.values():
        for family in scrape.values():
            entry = CATALOGUE[family.name]
            assert family.kind == entry.kind, family.name
            for sample in family.samples:
                extra = {"le"} if sample.name.endswith("_bucket") else set()
                assert set(sample.labels) == entry.labels | extra, (family.name, sample.labels)
    assert ids["workspace"] not in str(scrapes)


async def test_metrics_values_move_with_the_work_done(
    scraper: Scraper, workspace: WorkspaceHandle
) -> None:
    async with CountingApp() as app:
        await work(scraper, workspace, app)

    async def moved() -> bool:
        identity = await scraper.scrape("identity")
        connections = await scraper.scrape("connections")
        instances = await scraper.scrape("instances")
        flows = await scraper.scrape("flows")
        gateway = await scraper.scrape("gateway")
        return (
            value(identity, "tether_events_published_total") > 0
            and value(
                identity,
                "tether_nats_requests_total",
                operation="tether.identity.customers.create",
                status="200",
            )
            >= 1
            and value(
                gateway,
                "tether_http_requests_total",
                route="/customers",
                method="POST",
                status="201",
            )
            >= 1
            and value(gateway, "tether_http_request_duration_seconds", route="/flow-runs/{id}") >= 1
            and value(connections, "tether_connections", status="connected") >= 1
            and value(
                instances,
                "tether_events_handled_total",
                consumer="instances-connection-events",
                outcome="ok",
            )
            >= 1
            and value(instances, "tether_jobs_finished_total", queue="deployments") >= 1
            and value(instances, "tether_deployment_step_attempts_total", outcome="succeeded") >= 1
            and value(flows, "tether_flow_runs_total", state="completed") >= 1
            and value(
                flows, "tether_flow_node_duration_seconds", node_type="transform", outcome="ok"
            )
            >= 1
        )

    await eventually(moved, timeout=20)
    for process in OWN:
        scrape = await scraper.scrape(process)
        assert value(scrape, "tether_nats_connected") == 1, process
        assert scrape["tether_build_info"].samples[0].labels["version"], process
    flows = await scraper.scrape("flows")
    assert {s.labels["rank"] for s in flows["tether_flow_run_queue_depth"].samples} == {
        str(n) for n in range(1, 11)
    }
    instances = await scraper.scrape("instances")  # the work-queue stream's consumer too
    assert {"instances-connection-events", "instances-inbound-webhooks"} <= {
        s.labels["consumer"] for s in instances["tether_consumer_pending_messages"].samples
    }
    identity = await scraper.scrape("identity")
    assert value(identity, "tether_db_pool_connections", state="max") == 10
    assert value(identity, "tether_outbox_publish_lag_seconds") >= 0


async def test_metrics_labels_are_bounded_never_an_id(
    scraper: Scraper, workspace: WorkspaceHandle
) -> None:
    """No label value anywhere looks like an id, or is one of the ids the work used."""
    async with CountingApp() as app:
        ids = await work(scraper, workspace, app)
    for process in OWN:
        text = await scraper.text(process)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                for label, got in sample.labels.items():
                    assert not AN_ID.search(got), (process, sample.name, label, got)
                    assert got not in ids.values(), (process, sample.name, label, got)


async def test_metrics_gateway_serves_them_only_on_its_metrics_port(
    scraper: Scraper,
) -> None:
    async with scraper.http.get(scraper.gateway_url + "/metrics") as resp:
        assert resp.status == 404
        assert "tether_" not in await resp.text()
    health = scraper.urls["gateway"].replace("/metrics", "/healthz")
    async with scraper.http.get(health) as resp:
        assert resp.status == 200, await resp.text()


async def test_metrics_a_failing_or_slow_sampler_never_fails_the_scrape() -> None:
    """A sampler that raises or overruns leaves its gauge as it was and logs; others still run."""
    metrics = Metrics("1.2.3", sample_timeout=0.2)
    ran: list[str] = []

    async def broken() -> None:
        raise RuntimeError("the database is away")

    async def stuck() -> None:
        await asyncio.Event().wait()

    async def fine() -> None:
        ran.append("fine")
        metrics.nats_connected.set(1)

    for name, sampler in (("broken", broken), ("stuck", stuck), ("fine", fine)):
        metrics.add_sampler(name, sampler)
    with capture_logs() as logs:
        body = await asyncio.wait_for(metrics.exposition(), timeout=2)
    scrape = parse(body.decode())
    assert value(scrape, "tether_nats_connected") == 1
    assert ran == ["fine"]
    failed = {(e["sampler"], e["error"]) for e in logs if e["event"] == "metrics_sample_failed"}
    assert failed == {("broken", "RuntimeError"), ("stuck", "TimeoutError")}
    assert scrape["tether_build_info"].samples[0].labels == {"version": "1.2.3"}


def test_metrics_gateway_http_labels_stay_bounded() -> None:
    """A method a client invents is counted as OTHER; the route is the template given."""
    metrics = Metrics("1.2.3")
    gateway = GatewayMetrics(metrics)
    gateway.observe_http("/flow-runs/{id}", "GET", 200, 0.01)
    gateway.observe_http(UNMATCHED, "BREW-" + secrets.token_hex(4), 404, 0.001)
    scrape = parse(generate_latest(metrics.registry).decode())
    requests = {
        tuple(sorted(s.labels.items())) for s in scrape["tether_http_requests_total"].samples
    }
    assert requests == {
        (("method", "GET"), ("route", "/flow-runs/{id}"), ("status", "200")),
        (("method", "OTHER"), ("route", "unmatched"), ("status", "404")),
    }
    assert value(scrape, "tether_http_request_duration_seconds", method="OTHER") == 1
