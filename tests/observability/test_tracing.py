"""One trace from an app's webhook to the app call a flow run makes (real processes, OTLP).

The whole stack runs as processes (`tether up`) exporting spans with OTLP/HTTP to a fake
collector; an inbound webhook starts a flow run whose api-request node calls the app. The
app sees a ``traceparent`` carrying the trace id of the webhook's request, and the
collector holds that trace's spans from the gateway, instances, flows and connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from libs.common.tracing import trace_id_of
from tests.conftest import eventually
from tests.e2e.stack import admin_of_new_workspace, tether_up
from tests.fakes.otlp_collector import FakeCollector
from tests.fakes.webhook_app import FakeWebhookApp
from tests.instances.conftest import app_event_type

pytestmark = pytest.mark.slow

FLOW = {
    "key": "traced",
    "level": "app",
    "integrationKey": "crm",
    "name": "traced",
    "trigger": {"type": "app-event", "appEventTypeKey": "contact-created"},
    "nodes": {"fetch": {"type": "api-request", "config": {"path": "/records"}}},
}


async def test_webhook_to_flow_run_to_app_call_is_one_trace(tmp_path: Path) -> None:
    async with FakeCollector() as collector, FakeWebhookApp(api_key="trace-key") as app:
        settings = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within a tenth of a second
            "TETHER_ALLOW_PRIVATE_URLS": "1",
        }
        with tether_up(tmp_path, **settings) as (_, state, env):
            headers = admin_of_new_workspace("traced", env)
            gateway = state["gatewayUrl"]
            async with aiohttp.ClientSession(headers=headers) as http:

                async def call(method: str, path: str, body: Any = None) -> Any:
                    async with http.request(method, gateway + path, json=body) as resp:
                        assert resp.status < 300, await resp.text()
                        return await resp.json()

                await call("POST", "/integrations", app.integration())
                await call("POST", "/app-event-types", app_event_type())
                flow = await call("POST", "/flows", FLOW)
                connection = await call(
                    "POST",
                    "/connections",
                    {
                        "customerId": "c1",
                        "integrationKey": "crm",
                        "credentials": {"apiKey": "trace-key"},
                    },
                )
                await call(
                    "POST",
                    "/flow-instances",
                    {"flowId": flow["id"], "connectionId": connection["id"]},
                )

                async def subscribed() -> bool:
                    return bool(app.subscriptions)

                await eventually(subscribed, timeout=30)
                [external] = list(app.subscriptions)
                async with aiohttp.ClientSession() as plain:
                    delivery = await app.deliver(
                        plain, external, {"events": [{"id": "ct-1"}]}, delivery_id="d-1"
                    )
                assert delivery.status == 202, delivery.body

                def app_calls() -> list[dict[str, Any]]:
                    return [r for r in app.requests if r["path"] == "/records"]

                async def called() -> bool:
                    return bool(app_calls())

                await eventually(called, timeout=30)
                trace_id = trace_id_of(app_calls()[0]["headers"].get("traceparent"))
                assert trace_id is not None, app_calls()[0]["headers"]
                # The webhook's request is where the trace began: its gateway span is the root.
                wanted = {
                    "tether-gateway",
                    "tether-instances",
                    "tether-flows",
                    "tether-connections",
                }

                def ended(names: set[str]) -> bool:
                    """Each step's span is in: the event consumed, the run, the app call."""
                    return all(any(n.startswith(p) for n in names) for p in ("event ", "job "))

                async def whole() -> bool:
                    spans = collector.trace(trace_id)
                    names = {s.name for s in spans}
                    return (
                        wanted <= {s.service for s in spans}
                        and ended(names)
                        and "HTTP GET" in names
                    )

                try:
                    await eventually(whole, timeout=30)
                except AssertionError:
                    seen = [(s.service, s.name) for s in collector.trace(trace_id)]
                    raise AssertionError(f"the trace holds only {seen}") from None
                spans = collector.trace(trace_id)
                [root] = [s for s in spans if not s.parent_id]
                assert root.service == "tether-gateway"
                assert root.name == "POST /webhooks/{token}"
                names = {s.name for s in spans}
                assert any(n.startswith("event ") for n in names), names  # the event consumed
                assert any(n.startswith("job ") for n in names), names  # the run executed
                assert any(n.startswith("SQL ") for n in names), names
                assert "HTTP GET" in names, names  # the app call itself
                ids = {s.span_id for s in spans}
                assert all(s.parent_id in ids for s in spans if s.parent_id), "a broken chain"
                # No SQL parameter or query string is ever recorded on a span.
                assert "trace-key" not in repr(spans)
