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

from bench.common import admin_token, best, embedded_infra, load, process, python, stack_processes
from libs.common.infra import free_port
from tests.fakes.webhook_app import FakeWebhookApp
from tests.instances.conftest import app_event_type

KEYS = "b:" + "A" * 43 + "="


async def _call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as resp:
        assert resp.status < 300, await resp.text()
        return await resp.json()


async def run(args: argparse.Namespace, gateway: str, token: str, bare: str) -> None:
    """Subscribe one connection, then hammer its inbound URL."""
    async with FakeWebhookApp(api_key="bench-key") as app:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            await _call(http, "POST", f"{gateway}/integrations", {
                "key": "crm", "name": "CRM", "auth": {"type": "api_key"},
                "api": {"baseUrl": app.url, "headers": {"X-Api-Key": "{apiKey}"}},
            })  # fmt: skip
            await _call(
                http, "POST", f"{gateway}/app-event-types", app_event_type(deliveryIdHeader=None)
            )
            await _call(http, "POST", f"{gateway}/connections", {
                "customerId": "c1", "integrationKey": "crm", "credentials": {"apiKey": "bench-key"},
            })  # fmt: skip
            while not app.subscriptions:  # noqa: ASYNC110 - the fake app offers no event for this
                await asyncio.sleep(0.1)  # polling: the deployment subscribes in the background
        [sub] = app.subscriptions.values()
        body = json.dumps({"events": [{"type": "contact.created", "id": "ct-1"}]}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hook-Signature": app.sign(body, sub["secret"]),
        }
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
                await load(
                    "POST /webhooks/{token} (202)", sub["url"], headers=headers, ok=202, **kw
                )
            )
    b, h = best(bases), best(hooks)
    print(b.line())
    print(h.line())
    print(f"ratio webhooks/bare: {h.rps / b.rps:.2f}")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with embedded_infra() as infra:
        env = {
            "TETHER_DATABASE_URL": infra.database_url,
            "TETHER_NATS_URL": infra.nats_url,
            "TETHER_MASTER_KEYS": KEYS,
        }
        gw, bare = free_port(), free_port()
        env["TETHER_PUBLIC_URL"] = f"http://127.0.0.1:{gw}"
        with contextlib.ExitStack() as running:
            stack_processes(running, env, ["identity", "connections", "instances"], gw)
            running.enter_context(
                process(
                    python("bench.bare_server", str(bare), "--post"),
                    {},
                    f"http://127.0.0.1:{bare}/ping",
                )
            )
            token = admin_token(env)
            asyncio.run(run(args, f"http://127.0.0.1:{gw}", token, f"http://127.0.0.1:{bare}/ping"))


if __name__ == "__main__":
    main()
