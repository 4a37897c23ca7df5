"""``tether up``: infrastructure, migrations, every service as its own process, the gateway.

The supervisor restarts a child that dies (with backoff) and, on SIGHUP, *rolls* the
services onto the master keys in ``.tether/master.keys`` as they are now: for each
service it starts a new process, waits until it is ready, then stops the old one, so
requests keep being answered (``tether keys rotate`` drives this; ``libs/cli/keys.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import asyncpg

from libs.cli import ops
from libs.cli.keys import KEY_FILE, kid_of_entry, read_keys, write_keys
from libs.cli.state import ProcessState, StackState, read_json, write_state
from libs.common.backoff import backoff_delay
from libs.common.config import SERVICES, StackSettings
from libs.common.crypto import generate_master_key
from libs.common.infra import EmbeddedNats, EmbeddedPostgres, die_with_parent, free_port

DATABASE_NAME = "tether"
TEST_CUSTOMER_ID = "test-customer"


@dataclass
class Child:
    """A service or gateway process under supervision."""

    name: str
    args: list[str]
    env: dict[str, str]
    health_url: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0

    def start(self) -> None:
        """Start (or restart) the process, logging to its file."""
        log: IO[bytes] = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: die_with_parent(signal.SIGTERM),
        )
        log.close()
        self.started_at = time.monotonic()

    def healthy(self) -> bool:
        """Tell whether the process answers its health URL."""
        try:
            with urllib.request.urlopen(self.health_url, timeout=1) as resp:  # noqa: S310 - loopback
                return bool(resp.status == 200)
        except OSError:
            return False


@dataclass
class Stack:
    """Everything ``tether up`` started, in the order it stops them (reverse)."""

    settings: StackSettings
    home: Path
    postgres: EmbeddedPostgres | None = None
    nats: EmbeddedNats | None = None
    children: list[Child] = field(default_factory=list)


def _say(message: str) -> None:
    print(message, flush=True)


def master_keys(settings: StackSettings, home: Path) -> str:
    """Return the master keys: from the environment, or generated once into ``home``."""
    if settings.master_keys is not None:
        return settings.master_keys.get_secret_value()
    path = home / KEY_FILE
    if not path.exists():
        write_keys(path, [generate_master_key("dev1")])
    return ",".join(read_keys(path))


def _key_ids(keys: str) -> list[str]:
    return [kid_of_entry(entry.strip()) for entry in keys.split(",") if entry.strip()]


async def _ensure_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _wait_healthy(children: list[Child], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(children)
    while pending and time.monotonic() < deadline:
        for child in list(pending):
            assert child.proc is not None
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited while starting; see {child.log_path}")
            if child.healthy():
                pending.remove(child)
        time.sleep(0.1)
    if pending:
        names = ", ".join(c.name for c in pending)
        raise RuntimeError(f"{names} did not become ready within {timeout:.0f}s")


def start(settings: StackSettings) -> tuple[Stack, StackState]:
    """Start the whole stack and return it with the state to publish."""
    home = settings.home.resolve()
    stack = Stack(settings=settings, home=home)
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        if settings.database_url:
            database_url = settings.database_url
        else:
            stack.postgres = EmbeddedPostgres(home / "postgres", durable=True)
            _say(f"· PostgreSQL (embedded) on port {stack.postgres.port}")
            database_url = asyncio.run(_ensure_database(stack.postgres.start(), DATABASE_NAME))
        if settings.nats_url:
            nats_url = settings.nats_url
        else:
            stack.nats = EmbeddedNats(home / "nats")
            _say(f"· NATS with JetStream (embedded) on port {stack.nats.port}")
            nats_url = stack.nats.start()
        _say("· migrating")
        asyncio.run(ops.migrate_all(database_url))
        keys = master_keys(settings, home)
        env = {
            **{k: v for k, v in os.environ.items() if k != "TETHER_MASTER_KEYS"},
            "TETHER_DATABASE_URL": database_url,
            "TETHER_NATS_URL": nats_url,
            "TETHER_LOG_FORMAT": "json",
            "TETHER_PUBLIC_URL": os.environ.get(
                "TETHER_PUBLIC_URL", f"http://{settings.gateway_host}:{settings.gateway_port}"
            ),
        }
        services = []
        for name in SERVICES:
            port = free_port()
            services.append(
                Child(
                    name,
                    [sys.executable, "-m", f"services.{name}"],
                    {**env, "TETHER_MASTER_KEYS": keys, "TETHER_HEALTH_PORT": str(port)},
                    f"http://127.0.0.1:{port}/readyz",
                    logs / f"{name}.log",
                )
            )
        for child in services:
            child.start()
        _say(f"· starting {', '.join(SERVICES)}")
        _wait_healthy(services, 60)
        gateway_url = f"http://{settings.gateway_host}:{settings.gateway_port}"
        metrics_port = free_port()  # the gateway's /metrics, apart from its public port
        gateway = Child(
            "gateway",
            [sys.executable, "-m", "services.gateway"],
            {
                **env,
                "TETHER_GATEWAY_PORT": str(settings.gateway_port),
                "TETHER_GATEWAY_METRICS_PORT": str(metrics_port),
            },
            f"{gateway_url}/healthz",
            logs / "gateway.log",
        )
        gateway.start()
        _say(f"· gateway metrics on http://127.0.0.1:{metrics_port}/metrics")
        stack.children = [*services, gateway]
        _wait_healthy([gateway], 30)
        saved = read_json(home / "workspace.json") or {}
        boot = asyncio.run(ops.bootstrap(nats_url, saved.get("key"), TEST_CUSTOMER_ID))
        (home / "workspace.json").write_text(json.dumps({"key": boot.workspace_key}))
    except BaseException:
        stop(stack)
        raise
    state = StackState(
        running=True,
        supervisor_pid=os.getpid(),
        gateway_url=gateway_url,
        nats_url=nats_url,
        database_url=database_url,
        workspace_key=boot.workspace_key,
        admin_token=boot.admin_token,
        customer_token=boot.customer_token,
        customer_id=TEST_CUSTOMER_ID,
        console_url=f"{gateway_url}/console/#code={boot.console_code}",
        processes=_processes(stack),
        keys_file=None if settings.master_keys is not None else str(home / KEY_FILE),
        master_key_ids=_key_ids(keys),
    )
    return stack, state


def _processes(stack: Stack) -> dict[str, ProcessState]:
    procs = {
        c.name: ProcessState(
            pid=c.proc.pid if c.proc else None, state="running", health_url=c.health_url
        )
        for c in stack.children
    }
    if stack.postgres:
        procs["postgres"] = ProcessState(pid=stack.postgres.pid, state="running")
    if stack.nats:
        procs["nats"] = ProcessState(pid=stack.nats.pid, state="running")
    return procs


def _stop_child(child: Child, timeout: float) -> None:
    """Stop one child: SIGTERM, then SIGKILL at ``timeout``."""
    if child.proc is None or child.proc.poll() is not None:
        return
    child.proc.send_signal(signal.SIGTERM)
    try:
        child.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        child.proc.kill()
        child.proc.wait()


def roll(stack: Stack) -> list[str]:
    """Move every service onto the master keys as configured now; return their key ids.

    One service at a time: start a new process with the keys, wait until it is ready
    (it then answers in the service's queue group next to the old one), stop the old one
    (it finishes its in-flight requests). A new process that does not become ready is
    stopped and the old one kept.
    """
    keys = master_keys(stack.settings, stack.home)
    for i, old in enumerate(stack.children):
        if old.name not in SERVICES:
            continue  # the gateway holds no keys
        port = free_port()
        new = Child(
            old.name,
            old.args,
            {**old.env, "TETHER_MASTER_KEYS": keys, "TETHER_HEALTH_PORT": str(port)},
            f"http://127.0.0.1:{port}/readyz",
            old.log_path,
        )
        new.start()
        try:
            _wait_healthy([new], 60)
        except BaseException:
            _stop_child(new, 15)
            raise
        stack.children[i] = new
        _stop_child(old, 15)
    return _key_ids(keys)


def stop(stack: Stack, timeout: float = 10.0) -> None:
    """Stop the gateway and services (SIGTERM, then SIGKILL at ``timeout``), then infra."""
    for child in reversed(stack.children):
        if child.proc and child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in stack.children:
        if child.proc is None:
            continue
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
    if stack.nats:
        stack.nats.stop()
    if stack.postgres:
        stack.postgres.stop()


def _print_summary(state: StackState, home: Path) -> None:
    _say("")
    _say(f"Tether is running at {state.gateway_url}")
    _say(f"  workspace key   {state.workspace_key}")
    _say(f"  admin token     {state.admin_token}")
    _say(f"  customer token  {state.customer_token}   (customer id {state.customer_id})")
    _say(f"  console         {state.console_url}   (works once; `tether console` makes another)")
    _say(
        f"  browser SDK     {state.gateway_url}/sdk/tether.js   (Python: pip install ./sdk/python)"
    )
    _say(f"  logs            {home / 'logs'}")
    _say("")
    _say("Try it:")
    _say(f'  curl -s -H "Authorization: Bearer {state.admin_token}" {state.gateway_url}/workspace')
    _say(f"  curl -s {state.gateway_url}/openapi.json")
    _say("From another shell: tether status --json   ·   Ctrl-C stops everything.")


def _rolled(stack: Stack, state: StackState) -> StackState:
    """Roll the services; return the state that says how it went."""
    kids, error = state.master_key_ids, None
    try:
        kids = roll(stack)
        _say(f"· services rolled onto keys {', '.join(kids)}")
    except Exception as exc:
        error = str(exc)
        _say(f"! rolling the services failed: {error}")
    return state.model_copy(
        update={
            "rolls": state.rolls + 1,
            "roll_error": error,
            "master_key_ids": kids,
            "processes": _processes(stack),
        }
    )


def supervise(stack: Stack, state: StackState, reload: threading.Event) -> None:
    """Restart crashed children (with backoff), roll on ``reload``, until SIGINT or SIGTERM."""
    stopping = False

    def on_signal(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stopping:
        if reload.is_set():
            reload.clear()
            state = _rolled(stack, state)
            write_state(stack.home, state)
        for child in stack.children:
            if child.proc is not None and child.proc.poll() is not None and not stopping:
                # No jitter: this is compared on every poll, and one supervisor restarts alone.
                backoff = backoff_delay(child.restarts + 1, base=0.5, cap=30.0, jitter=False)
                if time.monotonic() - child.started_at > backoff:
                    _say(f"! {child.name} exited with {child.proc.returncode}; restarting")
                    child.restarts += 1
                    child.start()
                    state = state.model_copy(update={"processes": _processes(stack)})
                    write_state(stack.home, state)
        time.sleep(0.2)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def up(settings: StackSettings) -> int:
    """Run ``tether up``: start everything, print how to call it, stop cleanly on Ctrl-C."""
    home = settings.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    lock = open(home / "up.lock", "a+")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        running = read_json(home / "state.json") or {}
        _say(f"Tether is already running from {home} (pid {running.get('supervisorPid')}).")
        return 1
    # Until the supervisor installs its handlers, SIGTERM should still stop cleanly.
    signal.signal(signal.SIGTERM, _interrupt)
    # SIGHUP asks for a roll (``tether keys rotate``); one that comes early waits its turn.
    reload = threading.Event()
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
    try:
        stack, state = start(settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        _say(f"Tether could not start: {exc}")
        return 1
    try:
        write_state(home, state)
        _print_summary(state, home)
        supervise(stack, state, reload)
        _say("\nStopping…")
    finally:
        stop(stack)
        with contextlib.suppress(FileNotFoundError):
            (home / "state.json").unlink()
        _say("Stopped.")
    return 0
