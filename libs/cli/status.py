"""``tether status --system``: the gateway's ``GET /system/status``, as tables.

Like ``tether runs``, it asks the gateway over HTTP with a bearer token (the ``make run``
stack's admin token unless ``--token`` says otherwise), so it shows what the console's
Status page shows: every service's replicas, versions and backlogs, the checks of the
token's workspace, and the problems. Exit status: 0 when all is well, 1 when there are
problems, 2 when the gateway refused or could not be reached.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from libs.cli.runs import Gateway, GatewayError
from libs.common.config import StackSettings
from libs.common.contracts.system import ServiceOverview, SystemStatus


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--system`` and where the gateway is to ``tether status``."""
    parser.add_argument(
        "--system",
        action="store_true",
        help="the system overview through the gateway (GET /system/status)",
    )
    parser.add_argument("--gateway", help="gateway URL (default: the `make run` stack's)")
    parser.add_argument("--token", help="admin token (default: the stack's admin token)")


def cmd_system(args: argparse.Namespace, settings: StackSettings) -> int:
    """Print the system overview (``--json``: the document as the gateway sent it)."""
    gateway = Gateway.of(args, settings)
    try:
        doc = gateway.call("GET", "/system/status")
        overview = SystemStatus.model_validate(doc)
    except GatewayError as exc:
        print(f"error: {exc}")
        return 2
    except urllib.error.URLError as exc:
        print(f"error: cannot reach the gateway at {gateway.url}: {exc.reason}")
        return 2
    except ValidationError:
        print("error: the gateway's answer is not a system status (is it another version?)")
        return 2
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_overview(overview, print)
    return 0 if overview.ok else 1


def print_overview(overview: SystemStatus, say: Callable[[str], None]) -> None:
    """Print the services as a table, then the workspace's checks, then the problems."""
    when = overview.checked_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    say(f"{'OK' if overview.ok else 'PROBLEMS'}  checked {when}  workspace {overview.workspace_id}")
    say("")
    rows = [_service_row(name, s) for name, s in overview.services.items()]
    _table(
        [
            "service",
            "state",
            "replicas",
            "versions",
            "outbox (lag)",
            "consumers pending/redelivered",
            "jobs due (wait)",
            "dead letters",
        ],
        rows,
        say,
    )
    checks = [
        [name, c.key, "ok" if c.ok else "PROBLEM", c.summary]
        for name, s in overview.services.items()
        if s.status is not None
        for c in s.status.checks
    ]
    if checks:
        say("")
        _table(["service", "check", "state", "summary"], checks, say)
    say("")
    if overview.problems:
        say("problems:")
        for problem in overview.problems:
            say(f"  - {problem}")
    else:
        say("no problems")


def _service_row(name: str, service: ServiceOverview) -> list[str]:
    status = service.status
    replicas = str(len(service.replicas))
    versions = ", ".join(service.versions) or "-"
    if status is None:
        return [name, "DOWN", replicas, versions, "-", "-", "-", "-"]
    outbox = f"{status.outbox.pending} ({status.outbox.lag_seconds:.0f} s)"
    consumers = (
        ", ".join(f"{c.consumer} {c.pending}/{c.redelivered}" for c in status.consumers) or "-"
    )
    jobs = ", ".join(f"{q.queue} {q.due} ({q.lag_seconds:.0f} s)" for q in status.jobs) or "-"
    dead = f"{status.dead_letters.given_up} (+{status.dead_letters.retrying} retrying)"
    state = "ok" if service.ok else "PROBLEM"
    return [name, state, replicas, versions, outbox, consumers, jobs, dead]


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], say: Callable[[str], None]
) -> None:
    """Print ``rows`` under ``headers`` in left-aligned columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for line in (headers, *rows):
        say(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)
            ).rstrip()
        )
