"""The capacity model of ``bench.capacity``: CPU time per process, µs per request, replicas.

CPU time comes from ``/proc/<pid>/stat`` (``utime + stime``, in clock ticks: every thread of
the process, not its children). A component is a set of processes: a service's replicas, or
a server and all its descendants (PostgreSQL's postmaster and its backends). Processes come
and go between two reads (a backend that connects or exits). The CPU of a component over a
window is the sum of the growth of each process present at *both* reads, plus all the CPU of
each process present only at the second (it was born inside the window, so all of its CPU
was spent there). A process present only at the first exited inside the window: its last
CPU is lost, and it is counted so that a report can say how many there were.

From CPU seconds and requests completed: µs of CPU per request per component; requests/s one
core sustains (``1e6 / µs``); replicas (or cores) a load needs at a target utilisation
(``ceil(load * µs / 1e6 / utilisation)``); and the throughput a set of processes reaches on
a number of cores: the least of ``cores * 1e6 / Σ µs`` (every process shares the cores) and,
for each single-threaded component, ``replicas * 1e6 / µs`` (one process uses one core).

Everything here but :func:`read_stat` and :func:`read_all_stats` is a pure function
(``tests/unit/test_capacity_model.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    """The fields of one ``/proc/<pid>/stat`` line this model uses."""

    pid: int
    comm: str
    ppid: int
    ticks: int
    """``utime + stime``: CPU time in clock ticks, user and kernel, all threads."""


def parse_stat(line: str) -> ProcStat:
    """Parse one ``/proc/<pid>/stat`` line.

    The command name sits in parentheses and may itself hold spaces and parentheses, so the
    fields are counted from the *last* ``)``: the state is field 3, the parent pid field 4,
    ``utime`` and ``stime`` fields 14 and 15 (proc(5)).
    """
    head, paren, tail = line.rpartition(")")
    pid, open_paren, comm = head.partition(" (")
    if not paren or not open_paren:
        raise ValueError(f"not a /proc/<pid>/stat line: {line[:80]!r}")
    fields = tail.split()
    return ProcStat(int(pid), comm, int(fields[1]), int(fields[11]) + int(fields[12]))


def read_stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    """Return the stat of process ``pid``, or None if it is gone."""
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None


def read_all_stats(proc: Path = PROC) -> dict[int, ProcStat]:
    """Return the stat of every process now, by pid."""
    stats = {}
    for entry in proc.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name), proc)) is not None:
            stats[stat.pid] = stat
    return stats


def descendants(stats: Mapping[int, ProcStat], root: int) -> set[int]:
    """Return ``root`` and every process below it in ``stats`` (children, theirs, …)."""
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


Snapshot = dict[int, tuple[str, int]]
"""CPU ticks at one instant: pid → (component, ticks)."""


def snapshot(
    stats: Mapping[int, ProcStat],
    components: Mapping[str, Sequence[int]],
    trees: Iterable[str] = (),
) -> Snapshot:
    """Return the ticks of each component's processes in ``stats``.

    ``components`` names each component's processes; for the components named in ``trees``
    their descendants count too (a server's workers).
    """
    with_children = set(trees)
    taken: Snapshot = {}
    for name, pids in components.items():
        for root in pids:
            members = descendants(stats, root) if name in with_children else {root} & set(stats)
            for pid in members:
                taken[pid] = (name, stats[pid].ticks)
    return taken


@dataclass(frozen=True)
class CpuDelta:
    """CPU seconds each component used between two snapshots."""

    seconds: dict[str, float]
    exited: dict[str, int]
    """Processes present at the first read only: what they used in the window is missing."""


def cpu_delta(before: Snapshot, after: Snapshot, ticks_per_second: int) -> CpuDelta:
    """Return each component's CPU seconds from ``before`` to ``after``.

    A process in both (with the same component) counts its growth; one in ``after`` only was
    born in between and counts whole; one in ``before`` only exited and is counted in
    ``exited``. Every component of either snapshot appears, with 0.0 if nothing counted.
    """
    seconds = {name: 0.0 for name, _ in [*before.values(), *after.values()]}
    exited = dict.fromkeys(seconds, 0)
    for pid, (name, ticks) in after.items():
        if pid in before and before[pid][0] == name:
            ticks -= before[pid][1]
        seconds[name] += ticks / ticks_per_second
    for pid, (name, _) in before.items():
        if pid not in after:
            exited[name] += 1
    return CpuDelta(seconds, exited)


def us_per_request(
    cpu_seconds: Mapping[str, float],
    requests: int,
    window: float = 0.0,
    idle_rate: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Return µs of CPU per request of each component, net of its idle CPU.

    ``idle_rate`` is a component's CPU seconds per second with no load (its background
    loops); ``idle_rate * window`` is taken off first, never below zero.
    """
    if requests <= 0:
        raise ValueError("no request completed: nothing to divide by")
    idle = idle_rate or {}
    return {
        name: max(0.0, used - idle.get(name, 0.0) * window) * 1e6 / requests
        for name, used in cpu_seconds.items()
    }


def per_core_rps(us: float) -> float:
    """Return the requests/s one fully used core sustains at ``us`` µs per request."""
    return math.inf if us <= 0 else 1e6 / us


def replicas(load_rps: float, us: float, utilisation: float = 0.7) -> int:
    """Return the processes (or cores) that serve ``load_rps`` at ``us`` µs per request.

    ``ceil(load * µs / 1e6 / utilisation)``: each one kept at ``utilisation`` of a core;
    0 when the component costs nothing on that path.
    """
    return _processes(load_rps * us / 1e6, utilisation)


def combined_replicas(
    loads: Mapping[str, float], us: Mapping[str, Mapping[str, float]], utilisation: float = 0.7
) -> dict[str, int]:
    """Return the replicas of each component that serve all ``loads`` (path → req/s) at once.

    ``us`` is path → component → µs per request; the cores each path needs of a component
    add up before rounding up.
    """
    names = dict.fromkeys(name for path in loads for name in us[path])
    return {
        name: _processes(
            sum(rps * us[path].get(name, 0.0) for path, rps in loads.items()) / 1e6, utilisation
        )
        for name in names
    }


def _processes(cores: float, utilisation: float) -> int:
    if not 0 < utilisation <= 1:
        raise ValueError("utilisation is a fraction of a core, in (0, 1]")
    return math.ceil(round(cores / utilisation, 9))  # round: float noise must not add a replica


ALL_CORES = "all cores"
"""The name of the bound every process shares in :func:`throughput_bounds`."""


def throughput_bounds(
    us: Mapping[str, float], cores: float, single_threaded: Mapping[str, int]
) -> dict[str, float]:
    """Return each bound on the requests/s the components can serve on ``cores`` cores.

    ``ALL_CORES``: ``cores * 1e6 / Σ µs`` (all the processes share the cores); and for each
    component in ``single_threaded`` (name → its number of processes, each keeping at most
    one core busy) that costs anything: ``processes * 1e6 / µs``.
    """
    total = sum(us.values())
    bounds = {ALL_CORES: cores * 1e6 / total if total > 0 else math.inf}
    for name, processes in single_threaded.items():
        if us.get(name, 0.0) > 0:
            bounds[name] = processes * 1e6 / us[name]
    return bounds


def predicted_max_rps(
    us: Mapping[str, float], cores: float, single_threaded: Mapping[str, int]
) -> float:
    """Return the most requests/s the components can serve: the least of their bounds."""
    return min(throughput_bounds(us, cores, single_threaded).values())


_STAT_CPU = re.compile(r"^cpu\s+(.*)$", re.MULTILINE)


def parse_busy_ticks(proc_stat: str) -> tuple[int, int]:
    """Return (busy, idle) ticks of all CPUs from the ``cpu`` line of ``/proc/stat``.

    Idle is ``idle + iowait``; busy is everything else (guest time is already in user).
    """
    match = _STAT_CPU.search(proc_stat)
    if match is None:
        raise ValueError("no cpu line in /proc/stat")
    values = [int(v) for v in match.group(1).split()]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal, idle + iowait


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Return a Markdown table; the first column is left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("| " + " | ".join(["---", *["---:"] * (len(header) - 1)]) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def replace_block(doc: str, name: str, body: str) -> str:
    """Return ``doc`` with the text between the markers of block ``name`` replaced by ``body``.

    The markers are ``<!-- capacity:NAME -->`` and ``<!-- /capacity:NAME -->``, each on its own
    line; they stay. A block missing from ``doc`` is an error (the prose around it is kept by
    hand, the blocks by the script).
    """
    begin, end = f"<!-- capacity:{name} -->", f"<!-- /capacity:{name} -->"
    start, stop = doc.find(begin), doc.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"block {name!r} not found: add {begin} … {end} to the document")
    return doc[: start + len(begin)] + "\n" + body.strip("\n") + "\n" + doc[stop:]
