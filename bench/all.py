"""Run every benchmark in turn, then print one summary table of their ratios.

Each benchmark runs as its own process (``python -m bench.<name>``) with the modest sizes in
``BENCHES`` (about 10-15 minutes in all on 2 cores), its output streamed as it goes. Each
keeps its baseline in the same run, interleaved, and records its ratios with
``bench.common.record`` in the file this module names in ``TETHER_BENCH_SUMMARY``. The table
at the end has a row per figure (bench, figure, ratio, goal) and a row for each benchmark
that failed or recorded no ratio; the exit status is 1 when any benchmark failed.
Run: ``make bench`` or ``.venv/bin/python -m bench.all [--only auth,webhooks] [--list] [--full]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, SUMMARY_ENV, python

BENCHES: dict[str, tuple[str, ...]] = {
    "gateway_hop": ("--seconds", "3", "--rounds", "2"),
    "auth": ("--seconds", "3", "--rounds", "2"),
    "credentials": ("--seconds", "3", "--rounds", "2", "--connections", "500"),
    "webhooks": ("--seconds", "3", "--rounds", "2"),
    "actions": ("--seconds", "3", "--rounds", "2"),
    "flows": ("--seconds", "3", "--rounds", "2", "--flows", "2000", "--instances", "10000"),
    "notifications": ("--count", "1000", "--pending", "2000", "--probes", "50", "--rounds", "2"),
    "runs": ("--quick",),
    "sync": ("--records", "20000"),
    "deploy": ("--connections", "200"),
    "capacity": ("--seconds", "4", "--runs", "500", "--check-seconds", "4", "--rounds", "1"),
}
"""Every benchmark, in the order they run, with the options that keep the whole run short."""


@dataclass(frozen=True)
class Figure:
    """One ratio a benchmark recorded (a JSON line of the summary file)."""

    bench: str
    figure: str
    ratio: float
    goal: str | None = None


def read_figures(path: Path) -> list[Figure]:
    """Return the figures recorded in ``path``, in order (none if the file does not exist)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Figure(**json.loads(line)) for line in lines if line.strip()]


def summary_table(figures: Sequence[Figure], exits: Mapping[str, int]) -> str:
    """Return the summary table of ``figures``, benchmarks in the order of ``exits``.

    One row per (bench, figure), in the order first recorded; a figure recorded more than
    once (once per round) lists every ratio ("0.91, 0.95"). A benchmark whose exit status
    is not 0 gets a row saying so after the figures it recorded; one that exited 0 without
    recording anything gets a row saying that. Columns are padded to their widest cell.
    """
    ratios: dict[tuple[str, str], list[float]] = {}
    goals: dict[tuple[str, str], str] = {}
    for f in figures:
        ratios.setdefault((f.bench, f.figure), []).append(f.ratio)
        if f.goal:
            goals[(f.bench, f.figure)] = f.goal
    order = list(exits) + [b for b, _ in ratios if b not in exits]
    rows: list[tuple[str, str, str, str]] = []
    for bench in dict.fromkeys(order):
        mine = [key for key in ratios if key[0] == bench]
        for key in mine:
            shown = ", ".join(f"{r:.2f}" for r in ratios[key])
            rows.append((bench, key[1], shown, goals.get(key, "")))
        code = exits.get(bench, 0)
        if code != 0:
            rows.append((bench, f"FAILED (exit status {code})", "", ""))
        elif not mine:
            rows.append((bench, "(no ratio recorded)", "", ""))
    header = ("bench", "figure", "ratio", "goal")
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(4)]

    def line(cells: tuple[str, str, str, str]) -> str:
        bench, figure, ratio, goal = cells
        return f"{bench:<{widths[0]}}  {figure:<{widths[1]}}  {ratio:>{widths[2]}}  {goal}".rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def commands(names: Sequence[str], *, full: bool) -> dict[str, list[str]]:
    """Return the command of each named benchmark (its own default sizes when ``full``)."""
    return {name: python(f"bench.{name}", *(() if full else BENCHES[name])) for name in names}


def main() -> int:
    """Run the chosen benchmarks one after another and print the summary table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help=f"comma-separated, from: {','.join(BENCHES)}")
    parser.add_argument("--list", action="store_true", help="print the commands, run nothing")
    parser.add_argument(
        "--full", action="store_true", help="each benchmark's own default (larger) sizes"
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else [*BENCHES]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    planned = commands(names, full=args.full)
    if args.list:
        for command in planned.values():
            print(shlex.join(command))
        return 0
    exits: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="tether-bench-all-") as tmp:
        summary = Path(tmp) / "summary.jsonl"
        env = {**os.environ, SUMMARY_ENV: str(summary)}
        try:
            for name, command in planned.items():
                print(f"\n=== bench.{name}: {shlex.join(command[1:])}", flush=True)
                started = time.monotonic()
                exits[name] = subprocess.run(command, env=env, cwd=ROOT, check=False).returncode
                took = time.monotonic() - started
                print(f"=== bench.{name}: exit status {exits[name]} in {took:.0f} s", flush=True)
        except KeyboardInterrupt:  # still print what the finished benchmarks measured
            print("\ninterrupted")
        figures = read_figures(summary)
    print("\n" + summary_table(figures, exits))
    return 0 if len(exits) == len(planned) and not any(exits.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
