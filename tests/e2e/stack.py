"""Run a whole stack with `tether up` as a child process, for tests that need real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libs.common.infra import free_port
from tests.conftest import ROOT, eventually

Running = tuple[subprocess.Popen[bytes], dict[str, Any], dict[str, str]]


@dataclass
class Proc:
    """A restartable child process, its output appended to ``log``."""

    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (again)."""
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(
                self.args, env=self.env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Terminate the process if it runs (SIGKILL after 15 s)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def tether(
    *args: str, env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run the ``tether`` command with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "libs.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def kill_9(service: str, env: dict[str, str], timeout: float = 30) -> None:
    """SIGKILL ``service``'s process under `tether up`; return once a new one runs."""
    victim = json.loads(tether("status", "--json", env=env).stdout)["processes"][service]["pid"]
    os.kill(victim, signal.SIGKILL)

    async def restarted() -> bool:
        now = json.loads(tether("status", "--json", env=env).stdout)["processes"][service]
        return bool(now["pid"] != victim and now["state"] == "running")

    await eventually(restarted, timeout=timeout)


def alive(pid: int) -> bool:
    """Tell whether a process runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def admin_of_new_workspace(name: str, env: dict[str, str]) -> dict[str, str]:
    """Create a workspace with the CLI; return the headers of an admin token for it."""
    created = json.loads(tether("workspace", "create", "--name", name, "--json", env=env).stdout)
    token = tether("token", "--workspace", created["key"], "--admin", env=env).stdout.strip()
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def tether_up(home: Path, **settings: str) -> Iterator[Running]:
    """Start `tether up` under ``home`` (extra ``TETHER_*`` settings given); wait until it runs."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TETHER_")},
        "TETHER_HOME": str(home),
        "TETHER_GATEWAY_PORT": str(free_port()),
        **settings,
    }
    out = home / "up.out"
    with out.open("w") as sink:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "libs.cli", "up"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = json.loads(tether("status", "--json", env=env).stdout)
        if state["running"]:
            break
        if proc.poll() is not None:
            raise AssertionError(f"tether up exited: {out.read_text()}")
        time.sleep(0.2)  # polling the stack's status file
    assert state.get("running"), "tether up did not come up in time"
    try:
        yield proc, state, env
    finally:
        # SIGTERM: `tether up` stops its services and infrastructure; a SIGKILL would leave
        # them running as orphans (only the supervisor dies).
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
