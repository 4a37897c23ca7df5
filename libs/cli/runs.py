"""``tether runs``: start a flow run and read its log, through the gateway like any client.

The commands talk HTTP to the gateway with a bearer token (the `make run` stack's admin
token unless ``--token`` says otherwise), so they see exactly what the API shows.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from libs.cli.state import read_state
from libs.common.config import StackSettings

ENDED = ("completed", "failed", "stopped")
SHOWN = 400
"""Characters of a node's input, output or error the plain log shows (``--json``: all)."""


class GatewayError(Exception):
    """The gateway answered with an error (its JSON error body is the message)."""


@dataclass(frozen=True)
class Gateway:
    """Where the gateway is and who calls it."""

    url: str
    token: str

    @classmethod
    def of(cls, args: argparse.Namespace, settings: StackSettings) -> Gateway:
        """Return the gateway of ``--gateway``/``--token``, else of the running stack."""
        state = read_state(settings.home.resolve())
        url = args.gateway or state.gateway_url
        token = args.token or state.admin_token
        if not url or not token:
            raise SystemExit(
                "No running stack: start one with `make run`, or give --gateway/--token."
            )
        return cls(url.rstrip("/"), token)

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        """Send one request and return its JSON answer (GatewayError on a 4xx/5xx)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the operator's own gateway URL
            self.url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise GatewayError(f"{exc.code}: {exc.read().decode(errors='replace')}") from exc


def start(gateway: Gateway, instance_id: str, run_input: Any, idempotency_key: str) -> Any:
    """Start a run of a flow instance; return the run."""
    return gateway.call(
        "POST",
        f"/flow-instances/{instance_id}/run",
        {"input": run_input},
        {"Idempotency-Key": idempotency_key},
    )


def wait(gateway: Gateway, run_id: str, timeout: float, poll: float = 0.5) -> Any:
    """Poll a run until it ends (or ``timeout`` passes); return it as last seen."""
    deadline = time.monotonic() + timeout
    while True:
        run = gateway.call("GET", f"/flow-runs/{run_id}")
        if run["state"] in ENDED or time.monotonic() > deadline:
            return run
        time.sleep(poll)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= SHOWN else text[:SHOWN] + f"… ({len(text)} chars)"


def print_log(gateway: Gateway, run: Any, out: Callable[[str], None]) -> None:
    """Print a run's summary and every execution of each of its nodes."""
    out(f"run {run['id']}  {run['state']}  trigger {run['trigger']['type']}")
    out(f"  flow {run['flowId']} r{run['revision']}  instance {run['flowInstanceId']}")
    out(f"  started {run.get('startedAt')}  ended {run.get('endedAt')}")
    for error in run.get("errors", []):
        out(f"  error {error.get('node') or '-'}: {error['code']}: {error['message']}")
    for key, summary in run.get("nodes", {}).items():
        page = gateway.call("GET", f"/flow-runs/{run['id']}/nodes/{key}")
        out(f"- {key} ({page['type']}): {summary['state']}, {summary['runs']} execution(s)")
        for ex in page["items"]:
            item = f"[{ex['item']}] " if ex.get("item") is not None else ""
            took = f" {ex['durationMs']:.0f} ms" if ex.get("durationMs") is not None else ""
            reused = " (reused)" if ex.get("reused") else ""
            out(f"    {item}{ex['state']} after {ex['attempts']} attempt(s){took}{reused}")
            out(f"      input  {_short(ex.get('input'))}")
            output = "(dropped)" if ex.get("outputDropped") else _short(ex.get("output"))
            out(f"      output {output}")
            for line in ex.get("logs", []):
                out(f"      log    {_short(line)}")
            if ex.get("error"):
                out(f"      error  {ex['error']['code']}: {ex['error']['message']}")


def cmd_run(args: argparse.Namespace, settings: StackSettings) -> int:
    """Start a run of a flow instance; with --wait, print its log once it ends."""
    gateway = Gateway.of(args, settings)
    try:
        run_input = json.loads(args.input)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--input is not JSON: {exc}") from exc
    try:
        run = start(gateway, args.flow_instance, run_input, args.idempotency_key or str(uuid4()))
        if args.wait:
            run = wait(gateway, run["id"], args.timeout)
        if args.json:
            print(json.dumps(run, indent=2))
        elif args.wait:
            print_log(gateway, run, print)
        else:
            print(f"run {run['id']} {run['state']}\n  tether runs log {run['id']}")
    except GatewayError as exc:
        print(f"error: {exc}")
        return 2
    return 0 if run["state"] in ("queued", "running", "completed") else 1


def cmd_log(args: argparse.Namespace, settings: StackSettings) -> int:
    """Print a run and each execution of its nodes."""
    gateway = Gateway.of(args, settings)
    try:
        run = gateway.call("GET", f"/flow-runs/{args.run}")
        if args.json:
            nodes = {
                k: gateway.call("GET", f"/flow-runs/{args.run}/nodes/{k}") for k in run["nodes"]
            }
            print(json.dumps({"run": run, "nodes": nodes}, indent=2))
        else:
            print_log(gateway, run, print)
    except GatewayError as exc:
        print(f"error: {exc}")
        return 2
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tether runs start`` and ``tether runs log``."""
    runs = sub.add_parser("runs", help="start flow runs and read their logs").add_subparsers(
        dest="action", required=True
    )
    start_cmd = runs.add_parser("start", help="run a flow instance (POST /flow-instances/{id}/run)")
    start_cmd.add_argument("flow_instance", help="the flow instance's id")
    start_cmd.add_argument("--input", default="{}", help="the run's input, as JSON")
    start_cmd.add_argument("--idempotency-key", help="the same key returns the same run (24 h)")
    start_cmd.add_argument("--wait", action="store_true", help="wait for the end, print the log")
    start_cmd.add_argument("--timeout", type=float, default=120, help="seconds --wait waits")
    start_cmd.set_defaults(fn=cmd_run)
    log = runs.add_parser("log", help="print a run and each execution of its nodes")
    log.add_argument("run", help="the run's id")
    log.set_defaults(fn=cmd_log)
    for cmd in (start_cmd, log):
        cmd.add_argument("--json", action="store_true", help="print JSON for scripts")
        cmd.add_argument("--gateway", help="gateway URL (default: the `make run` stack's)")
        cmd.add_argument("--token", help="bearer token (default: the stack's admin token)")
