"""``tether keys``: see, re-seal and rotate the master keys that seal secrets at rest.

* ``status`` — every sealed column of every service, rows per master key id.
* ``reseal`` — move every sealed value onto the services' active key (step 3 of the
  rotation flow in ``libs/common/reseal.py``); resumable: run it again after a crash.
* ``rotate`` — the whole flow against the ``make run`` stack: add a new key (second),
  roll the services, make it first, roll, re-seal, then drop the old key and roll. The
  keys live in ``.tether/master.keys``; ``tether up`` rolls its services on SIGHUP,
  starting each new process before stopping the old, so the API keeps answering.
  Interrupted (Ctrl-C, a crash, a service that would not start)? Run it again: it
  finishes the same rotation from where the key file and the services say it stopped.
* ``retire`` — drop from ``.tether/master.keys`` every key nothing is sealed under (what
  ``rotate`` does last).
* ``generate`` — print a new ``kid:base64key`` entry (production step 1).

In production the keys come from each replica's ``TETHER_MASTER_KEYS``, which only the
deployment can change: do steps 1, 2 and 4 there, and step 3 with ``tether keys reseal``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from libs.cli.ops import SYSTEM
from libs.cli.state import StackState, read_state
from libs.common.bus import Bus, connect
from libs.common.contracts.keys import (
    SEALED_SERVICES,
    KeysResealed,
    KeysResealRequest,
    KeysStatus,
    KeysStatusRequest,
    keys_operations,
)
from libs.common.crypto import Keyring, generate_master_key

KEY_FILE = "master.keys"
ROTATION_FILE = "rotation.json"
ROLL_TIMEOUT = 300.0
IDLE_SWEEPS = 3
"""Sweeps in a row that move nothing before ``reseal`` gives up on the rows left."""
MAX_SWEEPS = 20
"""Sweeps of one service before ``reseal`` gives up (old-key writes keep coming: a replica
that still seals under an old key)."""

Say = Callable[[str], None]

PRODUCTION_STEPS = """\
This stack's master keys come from TETHER_MASTER_KEYS, which only its deployment can change.
Rotate them in four steps (libs/common/reseal.py):
  1. add a new key (`tether keys generate`) to every replica's TETHER_MASTER_KEYS, *second*; roll them
  2. move it first; roll them again
  3. tether keys reseal          (re-run it after any interruption; `tether keys status` shows progress)
  4. remove the old key; roll them
"""


# --- the key file of a `make run` stack ---------------------------------------------------


def read_keys(path: Path) -> list[str]:
    """Return the ``kid:base64key`` entries of a key file (one per line or comma separated)."""
    text = path.read_text()
    return [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]


def write_keys(path: Path, entries: list[str]) -> None:
    """Write the entries atomically, readable only by this user; refuse an invalid ring."""
    Keyring.from_setting(",".join(entries))
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(entries) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


def kid_of_entry(entry: str) -> str:
    """Return the key id of a ``kid:base64key`` entry."""
    return entry.partition(":")[0]


# --- over the bus -------------------------------------------------------------------------


async def status(nats_url: str) -> list[KeysStatus]:
    """Ask every service that keeps sealed values how they spread over the keys."""
    nc = await connect(nats_url, "tether-cli")
    try:
        bus = Bus(nc)
        return [
            await bus.call(keys_operations(service)[0], KeysStatusRequest(ctx=SYSTEM))
            for service in SEALED_SERVICES
        ]
    finally:
        await nc.close()


def remaining(columns: KeysStatus | KeysResealed) -> int:
    """Return how many of a service's sealed values are not under its active key."""
    return sum(c.total - c.done for c in columns.columns)


def agreed_kid(statuses: list[KeysStatus]) -> str:
    """Return the key every service seals under; refuse when they differ."""
    kids = {s.service: s.active_kid for s in statuses}
    if len(set(kids.values())) != 1:
        seen = ", ".join(f"{name} {kid}" for name, kid in kids.items())
        raise SystemExit(f"The services seal under different keys ({seen}); finish rolling first.")
    return next(iter(kids.values()))


async def reseal(
    nats_url: str, kid: str | None, batch_size: int, say: Say, *, pause: float = 1.0
) -> list[KeysResealed]:
    """Re-seal every service's values under ``kid`` (default: the active key); return the last replies."""
    if kid is None:
        kid = agreed_kid(await status(nats_url))
    nc = await connect(nats_url, "tether-cli")
    try:
        bus = Bus(nc, timeout=30)
        return [
            await _reseal_service(bus, service, kid, batch_size, say, pause)
            for service in SEALED_SERVICES
        ]
    finally:
        await nc.close()


async def _reseal_service(
    bus: Bus, service: str, kid: str, batch_size: int, say: Say, pause: float
) -> KeysResealed:
    """Sweep one service until nothing is left under other keys, or sweeps stop helping."""
    op = keys_operations(service)[1]
    cursor = None
    moved_this_sweep = idle = sweeps = 0
    while True:
        reply = await bus.call(
            op, KeysResealRequest(kid=kid, cursor=cursor, batch_size=batch_size, ctx=SYSTEM)
        )
        total = sum(c.total for c in reply.columns)
        failed = f", {reply.failed} could not be opened" if reply.failed else ""
        say(f"  {service:<12} {total - remaining(reply)}/{total} under {kid}{failed}")
        cursor, moved_this_sweep = reply.cursor, moved_this_sweep + reply.resealed
        if cursor is not None:
            continue
        if remaining(reply) == 0:
            return reply
        # What is left was locked by live work, written under an old key meanwhile (a
        # replica not rolled yet), or cannot be opened: sweep again while sweeps help.
        idle, sweeps = (0 if moved_this_sweep else idle + 1), sweeps + 1
        if idle >= IDLE_SWEEPS or sweeps >= MAX_SWEEPS:
            return reply
        moved_this_sweep = 0
        await asyncio.sleep(pause)  # let the live transactions holding those rows finish


def print_status(statuses: list[KeysStatus], say: Say) -> None:
    """Print rows per key id for every sealed column."""
    for s in statuses:
        say(f"{s.service}: seals under {s.active_kid}; opens {', '.join(s.kids)}")
        for c in s.columns:
            spread = " ".join(f"{kid}={n}" for kid, n in sorted(c.by_kid.items())) or "-"
            say(f"  {c.table + '.' + c.column:<40} {c.done:>7}/{c.total:<7} {spread}")


# --- rolling the `make run` stack ---------------------------------------------------------


def local_key_file(home: Path, state: StackState, from_env: bool) -> Path:
    """Return the running stack's key file; refuse a stack whose keys come from the environment."""
    if not state.running:
        raise SystemExit(f"No running stack under {home}; start one with `make run`.")
    if from_env or not state.keys_file:
        raise SystemExit(PRODUCTION_STEPS)
    return Path(state.keys_file)


def roll(home: Path, entries: list[str], say: Say) -> StackState:
    """Have ``tether up`` restart its services onto the key file's ``entries``; wait for it."""
    expected = [kid_of_entry(e) for e in entries]
    state = read_state(home)
    if not state.running or state.supervisor_pid is None:
        raise SystemExit("The stack stopped.")
    before = state.rolls
    say(f"  rolling the services onto keys {', '.join(expected)}")
    os.kill(state.supervisor_pid, signal.SIGHUP)
    deadline = time.monotonic() + ROLL_TIMEOUT
    while time.monotonic() < deadline:
        state = read_state(home)
        if not state.running:
            raise SystemExit("The stack stopped while rolling its services.")
        if state.rolls > before and state.roll_error:
            raise SystemExit(f"Rolling the services failed: {state.roll_error}")
        if state.rolls > before and state.master_key_ids == expected:
            return state
        # Else a roll that began before the SIGHUP (an interrupted run's) just finished: the
        # SIGHUP stays pending in the supervisor, and its roll reads the file as it is now.
        time.sleep(0.2)  # the supervisor writes state.json when the roll is done
    raise SystemExit(f"The services did not roll within {ROLL_TIMEOUT:.0f}s.")


def _apply(home: Path, path: Path, entries: list[str], say: Say) -> None:
    """Make the key file say ``entries`` and the services run with them (each only if needed)."""
    if read_keys(path) != entries:
        write_keys(path, entries)
    if read_state(home).master_key_ids != [kid_of_entry(e) for e in entries]:
        roll(home, entries, say)


def rotate(
    home: Path,
    nats_url: str,
    *,
    from_env: bool,
    kid: str | None,
    keep_old: bool,
    batch_size: int,
    say: Say,
) -> int:
    """Run the four steps against the ``make run`` stack; return the exit code.

    Resumable: ``.tether/rotation.json`` names the key being rotated to until the rotation
    is done, and every step only does what the key file and the running services do not
    show done yet, so running ``tether keys rotate`` again after a crash finishes it.
    """
    path = local_key_file(home, read_state(home), from_env)
    pending = home / ROTATION_FILE
    entries = read_keys(path)
    kids = [kid_of_entry(e) for e in entries]
    if pending.exists():
        new_kid = str(json.loads(pending.read_text())["kid"])
        if kid not in (None, new_kid):
            raise SystemExit(f"The rotation to {new_kid} did not finish; run this without --kid.")
        say(f"resuming the rotation to {new_kid}")
    else:
        new_kid = kid_of_entry(generate_master_key(kid))
        if new_kid in kids:
            raise SystemExit(f"Key id {new_kid} is taken; choose another with --kid.")
        pending.write_text(json.dumps({"kid": new_kid}))
    # The key material lives only in the key file: one lost before it got there is made anew.
    new = entries[kids.index(new_kid)] if new_kid in kids else generate_master_key(new_kid)
    old = [e for e in entries if kid_of_entry(e) != new_kid]
    if kids[:1] != [new_kid]:
        say(f"1/4 adding key {new_kid} (it opens; {kid_of_entry(old[0])} still seals)")
        _apply(home, path, [*old, new], say)
    say(f"2/4 making {new_kid} the key that seals")
    _apply(home, path, [new, *old], say)
    say(f"3/4 re-sealing every stored secret under {new_kid}")
    finals = asyncio.run(reseal(nats_url, new_kid, batch_size, say))
    left = sum(remaining(r) for r in finals)
    if left:
        say(f"{left} value(s) are still under old keys (the services log reseal_row_failed);")
        say("the old keys stay. Run `tether keys rotate` again to retry.")
        return 1
    if keep_old:
        say(f"done: everything is sealed under {new_kid}; old keys kept (--keep-old)")
    else:
        say("4/4 retiring the old keys")
        retire(home, nats_url, from_env=from_env, say=say)
    pending.unlink()
    return 0


def retire(home: Path, nats_url: str, *, from_env: bool, say: Say) -> int:
    """Drop every key nothing is sealed under (keeping the active one); roll the services."""
    path = local_key_file(home, read_state(home), from_env)
    entries = read_keys(path)
    _apply(home, path, entries, say)  # the services run with what the file says
    statuses = asyncio.run(status(nats_url))
    active = agreed_kid(statuses)
    if active != kid_of_entry(entries[0]):
        raise SystemExit(f"The services seal under {active}, the key file starts with another key.")
    used = {kid for s in statuses for c in s.columns for kid, n in c.by_kid.items() if n}
    keep = [e for e in entries if kid_of_entry(e) == active or kid_of_entry(e) in used]
    dropped = [kid_of_entry(e) for e in entries if e not in keep]
    if not dropped:
        say("no key to retire: every key still seals or holds values")
        return 0
    _apply(home, path, keep, say)
    after = asyncio.run(status(nats_url))
    if any(s.kids != [kid_of_entry(e) for e in keep] for s in after):
        raise SystemExit("A service still runs with a retired key; check `tether status`.")
    say(f"retired {', '.join(dropped)}; the services open only {', '.join(after[0].kids)}")
    return 0
