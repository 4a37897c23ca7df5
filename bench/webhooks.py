"""Inbound webhooks: accepts/s through the gateway, beside a bare aiohttp handler in the same run.

Each accepted delivery is verified (HMAC-SHA256), its events extracted with JMESPath,
and published through the outbox to JetStream. Run: ``.venv/bin/python -m bench.webhooks``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import Any

import aiohttp

from bench.common import (
    admin_token,
    bare_server,
    bench_parser,
    best,
    call_json,
    crm_integration,
    embedded_infra,
    load,
    record,
    stack_env,
    stack_processes,
)
from libs.common.infra import free_port
from tests.fakes.webhook_app import FakeWebhookApp
from tests.instances.conftest import app_event_type


async def subscribed_delivery(
    app: FakeWebhookApp, gateway: str, token: str
) -> tuple[str, bytes, dict[str, str]]:
    """Subscribe one connection of a new ``crm`` integration to ``app``'s events.

    Return its inbound URL and a signed delivery for it (body and headers), one event each.
    """
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        await call_json(http, "POST", f"{gateway}/integrations", crm_integration(app.url))
        await call_json(
            http, "POST", f"{gateway}/app-event-types", app_event_type(deliveryIdHeader=None)
        )
        await call_json(
            http,
            "POST",
            f"{gateway}/connections",
            {
                "customerId": "c1",
                "integrationKey": "crm",
                "credentials": {"apiKey": "bench-key"},
            },
        )
        while not app.subscriptions:  # noqa: ASYNC110 - the fake app offers no event for this
            await asyncio.sleep(0.1)  # polling: the deployment subscribes in the background
    [sub] = app.subscriptions.values()
    body = json.dumps({"events": [{"type": "contact.created", "id": "ct-1"}]}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Hook-Signature": app.sign(body, sub["secret"]),
    }
    return sub["url"], body, headers


async def run(args: argparse.Namespace, gateway: str, token: str, bare: str) -> None:
    """Subscribe one connection, then hammer its inbound URL."""
    async with FakeWebhookApp(api_key="bench-key") as app:
        url, body, headers = await subscribed_delivery(app, gateway, token)
        kw: dict[str, Any] = {
            "seconds": args.seconds,
            "concurrency": args.concurrency,
            "method": "POST",
            "body": body,
        }
        bases, hooks = [], []
        for _ in range(args.rounds):
            bases.append(
                await load(
                    "bare aiohttp handler", bare, headers={"Content-Type": "application/json"}, **kw
                )
            )
            hooks.append(
                await load("POST /webhooks/{token} (202)", url, headers=headers, ok=202, **kw)
            )
    b, h = best(bases), best(hooks)
    print(b.line())
    print(h.line())
    print(f"ratio webhooks/bare: {h.rps / b.rps:.2f}")
    record("webhooks", "inbound accepts/bare", h.rps / b.rps)


def main() -> None:
    """Run the benchmark and print its figures."""
    args = bench_parser(__doc__).parse_args()
    with embedded_infra() as infra:
        gw = free_port()
        env = stack_env(infra, TETHER_PUBLIC_URL=f"http://127.0.0.1:{gw}")
        with contextlib.ExitStack() as running:
            stack_processes(running, env, ["identity", "connections", "instances"], gw)
            bare = bare_server(running, "--post")
            token = admin_token(env)
            asyncio.run(run(args, f"http://127.0.0.1:{gw}", token, bare))


if __name__ == "__main__":
    main()
