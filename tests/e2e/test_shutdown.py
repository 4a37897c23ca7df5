"""A service told to stop exits within its deadline even when PostgreSQL and NATS are gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from libs.common.infra import EmbeddedNats, EmbeddedPostgres, free_port
from libs.common.runtime import EXIT_SHUTDOWN_TIMED_OUT
from tests.conftest import ROOT

MASTER_KEYS = "t:" + "A" * 43 + "="


def _ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the service exited while starting"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the service never became ready")


@pytest.mark.slow
@pytest.mark.parametrize("service", ["flows", "notifications"])
def test_service_exits_on_sigterm_after_its_dependencies_died(tmp_path: Path, service: str) -> None:
    """Draining a dead NATS never ends; the deadline (grace + 5 s) ends the process instead."""
    pg, nats = EmbeddedPostgres(tmp_path / "pg", durable=False), EmbeddedNats(tmp_path / "nats")
    port = free_port()
    env = {
        **os.environ,
        "TETHER_DATABASE_URL": pg.start(),
        "TETHER_NATS_URL": nats.start(),
        "TETHER_MASTER_KEYS": MASTER_KEYS,
        "TETHER_HEALTH_PORT": str(port),
        "TETHER_SHUTDOWN_GRACE": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", f"services.{service}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _ready(f"http://127.0.0.1:{port}/readyz", proc)
        nats.stop()
        pg.stop()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)  # the deadline is 6 s; 30 leaves room for a slow machine
        assert code in (0, EXIT_SHUTDOWN_TIMED_OUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        nats.stop()
        pg.stop()
