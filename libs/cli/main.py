"""The ``tether`` command: run, inspect and operate a Tether stack."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from libs.cli import dead_letters, keys, ops, runs, status
from libs.cli.state import read_state
from libs.common.config import SERVICES, LogSettings, StackSettings
from libs.common.contracts import identity
from libs.common.crypto import generate_master_key
from libs.common.errors import TetherError
from libs.common.logging import configure_logging


def _stack_url(kind: str, settings: StackSettings) -> str:
    """Return the NATS or database URL: from the environment, else from the running stack."""
    explicit = settings.nats_url if kind == "nats" else settings.database_url
    if explicit:
        return explicit
    state = read_state(settings.home.resolve())
    url = state.nats_url if kind == "nats" else state.database_url
    if not state.running or not url:
        raise SystemExit(
            f"No running stack under {settings.home} and TETHER_{kind.upper()}_URL is not set; "
            "start one with `make run`."
        )
    return url


def cmd_up(_: argparse.Namespace, settings: StackSettings) -> int:
    """Start everything (what `make run` runs)."""
    from libs.cli.stack import up

    return up(settings)


def cmd_status(args: argparse.Namespace, settings: StackSettings) -> int:
    """Print the running stack's URLs, tokens and processes (``--system``: its overview)."""
    if args.system:
        return status.cmd_system(args, settings)
    state = read_state(settings.home.resolve())
    if args.json:
        print(state.model_dump_json(indent=2))
    elif not state.running:
        print(f"Tether is not running (home {settings.home}).")
    else:
        print(
            f"gateway   {state.gateway_url}\nnats      {state.nats_url}\ndatabase  {state.database_url}"
        )
        print(f"workspace {state.workspace_key}")
        for name, proc in state.processes.items():
            print(f"  {name:<12} pid {proc.pid}  {proc.state}")
    return 0 if state.running else 1


def cmd_migrate(_: argparse.Namespace, settings: StackSettings) -> int:
    """Apply every service's migrations."""
    applied = asyncio.run(ops.migrate_all(_stack_url("database", settings)))
    for name, done in applied.items():
        print(f"{name}: {', '.join(done) if done else 'up to date'}")
    return 0


def cmd_serve(args: argparse.Namespace, _: StackSettings) -> int:
    """Run one service in the foreground (replaces this process)."""
    os.execv(sys.executable, [sys.executable, "-m", f"services.{args.service}"])  # noqa: S606


def cmd_workspace_create(args: argparse.Namespace, settings: StackSettings) -> int:
    """Create a workspace and print its key and (once) its secret."""
    created = asyncio.run(ops.create_workspace(_stack_url("nats", settings), args.name))
    if args.json:
        print(json.dumps({"id": str(created.id), "key": created.key, "secret": created.secret}))
    else:
        print(f"workspace {created.name}\n  id      {created.id}\n  key     {created.key}")
        print(f"  secret  {created.secret}   (shown once: store it in your backend)")
    return 0


def cmd_token(args: argparse.Namespace, settings: StackSettings) -> int:
    """Mint a development token for a customer or an admin."""
    if not args.admin and not args.customer:
        raise SystemExit("say --customer ID or --admin")
    minted = asyncio.run(
        ops.mint_token(
            _stack_url("nats", settings),
            identity.TokenMintRequest(
                workspace_key=args.workspace,
                customer_id=args.customer,
                admin=args.admin,
                ttl=args.ttl,
                ctx=ops.SYSTEM,
            ),
        )
    )
    print(minted.token)
    return 0


def cmd_console(_: argparse.Namespace, settings: StackSettings) -> int:
    """Print a fresh one-time console sign-in link for the running stack."""
    state = read_state(settings.home.resolve())
    if not state.running or not state.workspace_key or not state.nats_url:
        raise SystemExit("No running stack; start one with `make run`.")
    code = asyncio.run(ops.console_code(state.nats_url, state.workspace_key))
    print(f"{state.gateway_url}/console/#code={code.code}")
    return 0


def cmd_contracts(args: argparse.Namespace, _: StackSettings) -> int:
    """Write the contracts' JSON Schemas (snapshots) or print the AsyncAPI document."""
    from libs.common.contracts.documents import asyncapi, subject_schemas
    from libs.common.runtime import tether_version

    if args.what == "asyncapi":
        print(json.dumps(asyncapi(tether_version()), indent=2))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    schemas = subject_schemas()
    for old in out.glob("*.json"):
        if old.stem not in schemas:
            old.unlink()
    for subject, schema in schemas.items():
        (out / f"{subject}.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(schemas)} schemas to {out}")
    return 0


def cmd_routes(_: argparse.Namespace, __: StackSettings) -> int:
    """Print every route: method, path → subject → handler (module:function)."""
    from libs.cli.routes import print_routes

    return print_routes()


def cmd_keys_status(args: argparse.Namespace, settings: StackSettings) -> int:
    """Print, per sealed column of every service, how many values each master key holds."""
    statuses = asyncio.run(keys.status(_stack_url("nats", settings)))
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in statuses], indent=2))
    else:
        keys.print_status(statuses, print)
    return 0


def cmd_keys_reseal(args: argparse.Namespace, settings: StackSettings) -> int:
    """Re-seal every stored secret under the services' active master key."""
    say = _flushed
    finals = asyncio.run(keys.reseal(_stack_url("nats", settings), args.kid, args.batch_size, say))
    left = sum(keys.remaining(r) for r in finals)
    if left:
        say(f"{left} value(s) are still under other keys; see `tether keys status`")
        return 1
    say(f"everything is sealed under {finals[0].active_kid}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: StackSettings) -> int:
    """Rotate the ``make run`` stack's master key (add, promote, re-seal, retire)."""
    return keys.rotate(
        settings.home.resolve(),
        _stack_url("nats", settings),
        from_env=settings.master_keys is not None,
        kid=args.kid,
        keep_old=args.keep_old,
        batch_size=args.batch_size,
        say=_flushed,
    )


def cmd_keys_retire(_: argparse.Namespace, settings: StackSettings) -> int:
    """Drop the ``make run`` stack's master keys that nothing is sealed under."""
    return keys.retire(
        settings.home.resolve(),
        _stack_url("nats", settings),
        from_env=settings.master_keys is not None,
        say=_flushed,
    )


def cmd_keys_generate(args: argparse.Namespace, _: StackSettings) -> int:
    """Print a new ``kid:base64key`` entry for ``TETHER_MASTER_KEYS``."""
    print(generate_master_key(args.kid))
    return 0


def _flushed(line: str) -> None:
    print(line, flush=True)


def cmd_dead_letters(args: argparse.Namespace, settings: StackSettings) -> int:
    """List the events the services' consumers gave up on, with their errors."""
    listing = asyncio.run(
        dead_letters.fetch(
            _stack_url("nats", settings),
            [args.service] if args.service else SERVICES,
            include_retrying=args.retrying,
            limit=args.limit,
        )
    )
    if args.json:
        rows = [{"service": s, **d.model_dump(mode="json")} for s, d in listing.letters]
        print(json.dumps(rows, indent=2))
    else:
        dead_letters.print_letters(listing.letters, print)
    for service, problem in listing.failures.items():
        print(f"error: {service} did not answer: {problem}", file=sys.stderr)
    return 1 if listing.failures else 0


def parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    p = argparse.ArgumentParser(prog="tether", description="Run and operate Tether.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "up", help="start everything (embedded PostgreSQL and NATS unless URLs are set)"
    ).set_defaults(fn=cmd_up)
    stack_status = sub.add_parser("status", help="show the running stack (--system: its health)")
    stack_status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.add_arguments(stack_status)
    stack_status.set_defaults(fn=cmd_status)
    sub.add_parser("migrate", help="apply every service's migrations").set_defaults(fn=cmd_migrate)
    sub.add_parser("console", help="print a one-time console sign-in link").set_defaults(
        fn=cmd_console
    )
    contracts = sub.add_parser("contracts", help="contract documents")
    contracts.add_argument(
        "what", choices=["schemas", "asyncapi"], help="schema snapshots, or AsyncAPI 3.0"
    )
    contracts.add_argument("--out", default="tests/contract/schemas", help="where schemas go")
    contracts.set_defaults(fn=cmd_contracts)
    sub.add_parser(
        "routes", help="print every route: method, path → subject → handler"
    ).set_defaults(fn=cmd_routes)
    serve = sub.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=[*SERVICES, "gateway"])
    serve.set_defaults(fn=cmd_serve)
    ws = sub.add_parser("workspace", help="manage workspaces").add_subparsers(
        dest="action", required=True
    )
    create = ws.add_parser("create", help="create a workspace (prints its secret once)")
    create.add_argument("--name", required=True)
    create.add_argument("--json", action="store_true", help="print {key, secret, id}")
    create.set_defaults(fn=cmd_workspace_create)
    token = sub.add_parser("token", help="mint a development access token")
    token.add_argument("--workspace", required=True, help="workspace key")
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", help="customer id (in your app)")
    who.add_argument("--admin", action="store_true", help="an admin token")
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    token.set_defaults(fn=cmd_token)
    dead = sub.add_parser("dead-letters", help="list the events consumers gave up on")
    dead.add_argument("--service", choices=SERVICES, help="only this service (default: all)")
    dead.add_argument("--retrying", action="store_true", help="also events still being retried")
    dead.add_argument("--limit", type=int, default=100, help="newest N per service (max 1000)")
    dead.add_argument("--json", action="store_true", help="print JSON for scripts")
    dead.set_defaults(fn=cmd_dead_letters)
    _keys_parser(sub)
    runs.add_parsers(sub)
    return p


def _keys_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    k = sub.add_parser("keys", help="master keys: status, re-seal, rotate").add_subparsers(
        dest="action", required=True
    )
    status = k.add_parser("status", help="values per master key, per sealed column")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.set_defaults(fn=cmd_keys_status)
    reseal = k.add_parser("reseal", help="re-seal everything under the active key (resumable)")
    reseal.add_argument("--kid", help="refuse unless the services seal under this key id")
    rotate = k.add_parser("rotate", help="rotate the `make run` stack's master key, online")
    rotate.add_argument("--kid", help="id of the new key (default: generated)")
    rotate.add_argument("--keep-old", action="store_true", help="keep the old keys afterwards")
    for cmd in (reseal, rotate):
        cmd.add_argument("--batch-size", type=int, default=500, help="rows per transaction")
    reseal.set_defaults(fn=cmd_keys_reseal)
    rotate.set_defaults(fn=cmd_keys_rotate)
    k.add_parser(
        "retire", help="drop the keys nothing is sealed under (`make run` stack)"
    ).set_defaults(fn=cmd_keys_retire)
    generate = k.add_parser("generate", help="print a new kid:base64key entry")
    generate.add_argument("--kid", help="key id (default: generated)")
    generate.set_defaults(fn=cmd_keys_generate)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tether`` command."""
    args = parser().parse_args(argv)
    configure_logging("cli", LogSettings(log_level="warning"))
    settings = StackSettings()
    try:
        code: int = args.fn(args, settings)
    except TetherError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
