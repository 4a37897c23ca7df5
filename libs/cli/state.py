"""Read and write what a running stack tells other shells (``.tether/state.json``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ProcessState(BaseModel):
    """One child process of ``tether up``."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )

    pid: int | None
    state: str
    health_url: str | None = None


class StackState(BaseModel):
    """What ``tether status --json`` prints."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )

    running: bool
    supervisor_pid: int | None = None
    gateway_url: str | None = None
    nats_url: str | None = None
    database_url: str | None = None
    workspace_key: str | None = None
    admin_token: str | None = None
    customer_token: str | None = None
    customer_id: str | None = None
    console_url: str | None = None
    processes: dict[str, ProcessState] = {}
    keys_file: str | None = None
    """The master-key file the services read (None: the keys come from the environment)."""
    master_key_ids: list[str] = []
    """The key ids every service runs with, the sealing one first."""
    rolls: int = 0
    """How many rolls (SIGHUP: restart every service onto the key file) have finished."""
    roll_error: str | None = None
    """Why the last roll failed (None when it succeeded)."""


def state_path(home: Path) -> Path:
    """Return where the running stack's state lives."""
    return home / "state.json"


def write_state(home: Path, state: StackState) -> None:
    """Write the state atomically, readable only by this user (it holds tokens)."""
    path = state_path(home)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(home: Path) -> StackState:
    """Return the stack's state with each process's liveness checked now."""
    path = state_path(home)
    if not path.exists():
        return StackState(running=False)
    state = StackState.model_validate_json(path.read_text())
    if not _alive(state.supervisor_pid):
        return StackState(running=False)
    procs = {
        name: p.model_copy(update={"state": p.state if _alive(p.pid) else "exited"})
        for name, p in state.processes.items()
    }
    return state.model_copy(update={"processes": procs})


def read_json(path: Path) -> dict[str, Any] | None:
    """Return a JSON file's object, or None when it is missing."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else None
