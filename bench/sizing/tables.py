"""The tables of ``bench.capacity``: what was measured, per core, replicas, the check, limits.

:class:`Report` holds the figures of one run and renders each generated block of
``docs/capacity.md`` as Markdown; :func:`write_blocks` puts them between the document's
markers (``<!-- capacity:NAME -->`` … ``<!-- /capacity:NAME -->``), leaving the prose alone.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, Result
from bench.sizing.model import (
    CpuDelta,
    combined_replicas,
    markdown_table,
    per_core_rps,
    replace_block,
    replicas,
    throughput_bounds,
)
from libs.common.config import SERVICES

LABELS = {
    "hot": "(1) /customers/me, hot token",
    "fresh": "(2) /customers/me, fresh token",
    "credentials": "(3) credentials read, hot",
    "webhooks": "(4) webhook accepted + consumed",
    "runs": "(5) flow run, 3 transform nodes",
}
LOAD_GENERATOR = "load generator"
COMPONENTS = ("gateway", *SERVICES, "nats", "postgres", LOAD_GENERATOR)
"""Every component, in table order; the load generator is the benchmark's own client."""
SINGLE_THREADED = ("gateway", *SERVICES, LOAD_GENERATOR)
"""Components whose process keeps at most one core busy (asyncio on one thread)."""
NOISE_SHARE = 0.01
"""A component under this share of a path's CPU (the stack's, not the client's) is taken as
not on the path: what is left is the noise of its background loops (a tick of 10 ms spread
over the requests), which would otherwise round up to a replica the path does not need."""
BLOCKS = ("conditions", "measured", "per-core", "replicas", "check", "limits")


@dataclass(frozen=True)
class Measured:
    """CPU per request of each component on one path."""

    result: Result
    """What the load generator saw (requests completed, seconds of load)."""
    window: float
    """Seconds from the first request until the work it caused had settled."""
    us: dict[str, float]
    """µs of CPU per request by component, net of the idle stack's background CPU."""
    cpu: CpuDelta
    others: float
    """Cores the machine's other processes kept busy on average during the window."""
    events: float
    """Events written to the outboxes per request."""


def _us(value: float) -> str:
    return f"{value:,.0f}"


def _rps(value: float) -> str:
    return "—" if math.isinf(value) else f"{value:,.0f}"


def on_path(us: Mapping[str, float]) -> dict[str, float]:
    """Return the components of a path's ``us`` that are on it (the others' noise dropped)."""
    stack = sum(v for c, v in us.items() if c != LOAD_GENERATOR)
    return {c: v for c, v in us.items() if v > 0 and v >= NOISE_SHARE * stack}


@dataclass(frozen=True)
class Report:
    """The figures of one run of ``bench.capacity``."""

    paths: dict[str, Measured]
    idle: dict[str, float]
    """CPU seconds per second of each component of the idle stack."""
    check: dict[int, Measured]
    """Path (1) at saturation, by number of gateway replicas (the best round of each)."""
    loads: dict[str, float]
    utilisation: float
    cores: float
    conditions: str

    def bounds(self, gateways: int, cores: float) -> dict[str, float]:
        """Return the model's bounds on path (1)'s req/s on ``gateways`` gateways and ``cores``."""
        single = {name: 1 for name in SINGLE_THREADED} | {"gateway": gateways}
        usable = cores - sum(self.idle.values())
        return throughput_bounds(self.paths["hot"].us, usable, single)

    def predicted(self, gateways: int, cores: float) -> float:
        """Return the model's max req/s of path (1) on ``gateways`` gateways and ``cores``."""
        return min(self.bounds(gateways, cores).values())

    def cores_left(self, gateways: int) -> float:
        """Return the cores other tenants of the machine left to the check's run."""
        return max(0.1, self.cores - self.check[gateways].others)

    def check_ratio(self, gateways: int) -> float:
        """Return predicted/measured req/s of the check (prediction on the cores left to us)."""
        measured = self.check[gateways]
        return self.predicted(gateways, self.cores_left(gateways)) / measured.result.rps

    def blocks(self) -> dict[str, str]:
        """Return every generated block, by name."""
        return {
            "conditions": self.conditions,
            "measured": self.measured_table(),
            "per-core": self.per_core_table(),
            "replicas": self.replicas_table(),
            "check": self.check_table(),
            "limits": self.limits(),
        }

    def measured_table(self) -> str:
        """Return path by component µs of CPU per request, with totals and the idle stack."""
        header = [
            "path",
            "req/s",
            "events/req",
            "others' cores",
            *COMPONENTS,
            "total",
            "total - load gen.",
        ]
        rows = []
        for path, m in self.paths.items():
            total = sum(m.us.values())
            rows.append(
                [
                    LABELS[path],
                    _rps(m.result.rps),
                    f"{m.events:.2f}",
                    f"{m.others:.2f}",
                    *(_us(m.us.get(c, 0.0)) for c in COMPONENTS),
                    _us(total),
                    _us(total - m.us.get(LOAD_GENERATOR, 0.0)),
                ]
            )
        idle_ms = [f"{self.idle.get(c, 0.0) * 1000:.0f}" for c in COMPONENTS]
        idle_total = sum(self.idle.values()) * 1000
        rows.append(["idle stack, ms CPU per s", "", "", "", *idle_ms, f"{idle_total:.0f}", ""])
        exited = {c: sum(m.cpu.exited.get(c, 0) for m in self.paths.values()) for c in COMPONENTS}
        note = ", ".join(f"{c} {n}" for c, n in exited.items() if n) or "none"
        return (
            markdown_table(header, rows)
            + "\n\nµs of CPU per request (user + system), net of the idle stack's background"
            + " CPU. req/s: the rate the load ran at (runs: POST /run accepted); events/req:"
            + " events written to the outboxes; others' cores: CPU the machine's other"
            + " processes used meanwhile (contention inflates CPU per request). Processes that"
            + f" exited inside a window, their last CPU missing: {note}."
        )

    def per_core_table(self) -> str:
        """Return path by component requests/s one core sustains (``1e6 / µs``)."""
        shown = [c for c in COMPONENTS if c != LOAD_GENERATOR]
        rows = []
        for p, m in self.paths.items():
            us = on_path(m.us)
            rows.append(
                [LABELS[p], *(_rps(per_core_rps(us[c])) if c in us else "—" for c in shown)]
            )
        return (
            markdown_table(["path", *shown], rows)
            + f"\n\n—: not on the path (under {NOISE_SHARE:.0%} of the path's CPU)."
        )

    def replicas_table(self) -> str:
        """Return replicas per component for each target load alone and all of them at once."""
        us = {p: on_path(m.us) for p, m in self.paths.items()}
        shown = [c for c in COMPONENTS if c != LOAD_GENERATOR]
        header = ["component", *(f"{rps:,.0f}/s {LABELS[p]}" for p, rps in self.loads.items())]
        together = combined_replicas(self.loads, us, self.utilisation)
        rows = [
            [
                c,
                *(
                    str(replicas(rps, us[p].get(c, 0.0), self.utilisation))
                    for p, rps in self.loads.items()
                ),
                str(together.get(c, 0)),
            ]
            for c in shown
        ]
        return (
            markdown_table([*header, "all at once"], rows)
            + f"\n\nProcesses (for nats and postgres: cores) at {self.utilisation:.0%} of a core"
            + " each: ceil(load * µs / 1e6 / utilisation); a component under"
            + f" {NOISE_SHARE:.0%} of a path's CPU is taken as not on it."
        )

    def check_table(self) -> str:
        """Return predicted against measured req/s of path (1) on 1 and 2 gateways."""
        model_us = sum(self.paths["hot"].us.values())
        rows = []
        for gateways, m in sorted(self.check.items()):
            left = self.cores_left(gateways)
            bounds = self.bounds(gateways, left)
            on_left = min(bounds.values())
            rows.append(
                [
                    str(gateways),
                    _rps(self.predicted(gateways, self.cores)),
                    f"{left:.2f}",
                    _rps(on_left),
                    min(bounds, key=lambda b: bounds[b]),
                    _rps(m.result.rps),
                    f"{on_left / m.result.rps:.2f}",
                    _us(sum(m.us.values())),
                    _us(m.us.get("gateway", 0.0)),
                ]
            )
        header = [
            "gateways",
            f"predicted on {self.cores:g} cores",
            "cores left to us",
            "predicted on those",
            "bound",
            "measured",
            "predicted/measured",
            "Σ µs/req measured here",
            "gateway µs/req here",
        ]
        return (
            markdown_table(header, rows)
            + f"\n\nThe model: path (1) costs Σ {model_us:,.0f} µs per request over every"
            + " process, load generator included (the measured table); max req/s = the least"
            + " of (cores left - idle stack) * 1e6 / Σ µs and, for each single-threaded"
            + " process, its replicas * 1e6 / its µs. Bound: the one that binds. Measured: the"
            + " best round of path (1) at saturation through that many gateways, the load split"
            + " round-robin; its own CPU per request is in the last two columns."
        )

    def limits(self) -> str:
        """Return, for each path, the components that take the most CPU per request."""
        lines = []
        for path, m in self.paths.items():
            ours = {c: v for c, v in m.us.items() if c != LOAD_GENERATOR}
            total = sum(ours.values()) or 1.0
            top = sorted(ours.items(), key=lambda kv: -kv[1])[:3]
            shares = ", ".join(f"{c} {v / total:.0%}" for c, v in top)
            lines.append(f"- {LABELS[path]}: {shares} of the stack's {total:,.0f} µs per request.")
        return "\n".join(lines)


BUSY_CORES = 0.25
"""Other processes' CPU, in cores, above which a measurement window counts as busy."""


def conditions(
    args: argparse.Namespace, load_average: float, paths_others: float, check_others: float
) -> str:
    """Return when, where and how the figures were taken (a busy machine is said so).

    ``paths_others`` and ``check_others``: the most cores other processes of the machine
    used in a window of the paths and of the check.
    """
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    busy = [
        what
        for what, flag in (
            (f"1-min load {load_average:.1f} at the start", load_average >= 1.0),
            (
                f"up to {paths_others:.2f} cores used by others during the paths",
                paths_others > BUSY_CORES,
            ),
            (
                f"up to {check_others:.2f} cores used by others during the check",
                check_others > BUSY_CORES,
            ),
        )
        if flag
    ]
    said = (
        f" — **taken on a busy machine** ({'; '.join(busy)}: other jobs shared the cores;"
        " contention inflates CPU per request somewhat and makes throughput noisy)"
        if busy
        else f" (a quiet machine: 1-min load {load_average:.2f} at the start, others used at"
        f" most {max(paths_others, check_others):.2f} cores meanwhile)"
    )
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"- {now}, commit {commit or 'unknown'}{said}",
            f"- {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}",
            f"- {args.seconds:g} s of load per path at {args.concurrency} concurrent, {args.runs} runs"
            f" at {args.run_concurrency} concurrent over {args.connections} connections, best of"
            f" {args.rounds} rounds; idle stack {args.idle_seconds:g} s; check {args.rounds} x"
            f" {args.check_seconds:g} s per gateway count at {args.check_concurrency} concurrent",
        ]
    )


def write_blocks(doc: str, blocks: Mapping[str, str]) -> str:
    """Return ``doc`` with each generated block replaced (every one must be in ``doc``)."""
    for name, body in blocks.items():
        doc = replace_block(doc, name, body)
    return doc
