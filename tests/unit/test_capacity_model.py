"""bench.sizing.model: /proc parsing, CPU deltas, µs per request, replicas, predicted throughput."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from bench.common import Result
from bench.sizing.model import (
    ALL_CORES,
    CpuDelta,
    ProcStat,
    combined_replicas,
    cpu_delta,
    descendants,
    parse_busy_ticks,
    parse_stat,
    per_core_rps,
    predicted_max_rps,
    read_all_stats,
    read_stat,
    replace_block,
    replicas,
    snapshot,
    throughput_bounds,
    us_per_request,
)
from bench.sizing.tables import Measured, Report


def _stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int) -> str:
    # Fields 3.. of proc(5): state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime cutime cstime ...; cutime/cstime are set to catch an off-by-two.
    return f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 120 0 3 0 {utime} {stime} 777 888 20 0 1 0"


def test_parse_stat_counts_fields_from_the_last_parenthesis() -> None:
    stat = parse_stat(_stat_line(4321, "python3 (x) y)", 17, utime=250, stime=31))
    assert stat == ProcStat(pid=4321, comm="python3 (x) y)", ppid=17, ticks=281)


def test_parse_stat_reads_this_process() -> None:
    stat = read_stat(os.getpid())
    assert stat is not None
    assert (stat.pid, stat.ppid) == (os.getpid(), os.getppid())
    assert stat.ticks >= 0
    assert os.getpid() in read_all_stats()


def test_parse_stat_refuses_what_is_not_a_stat_line() -> None:
    with pytest.raises(ValueError, match="not a /proc"):
        parse_stat("hello world")


def test_read_stat_of_a_process_that_is_gone_is_none(tmp_path: Path) -> None:
    assert read_stat(123, proc=tmp_path) is None


def _stats(*rows: tuple[int, int, int]) -> dict[int, ProcStat]:
    return {pid: ProcStat(pid, f"p{pid}", ppid, ticks) for pid, ppid, ticks in rows}


def test_descendants_are_the_whole_tree_below_the_root() -> None:
    stats = _stats((10, 1, 0), (11, 10, 0), (12, 11, 0), (13, 10, 0), (20, 1, 0))
    assert descendants(stats, 10) == {10, 11, 12, 13}
    assert descendants(stats, 99) == set()


def test_cpu_delta_counts_growth_newborns_whole_and_the_exited_apart() -> None:
    components = {"postgres": [10], "gateway": [20]}
    before = snapshot(
        _stats((10, 1, 100), (11, 10, 50), (12, 10, 70), (20, 1, 300)),
        components,
        trees=("postgres",),
    )
    # backend 12 exited, backend 13 connected; the gateway's children never count
    after = snapshot(
        _stats((10, 1, 110), (11, 10, 90), (13, 10, 40), (20, 1, 500), (21, 20, 999)),
        components,
        trees=("postgres",),
    )
    delta = cpu_delta(before, after, ticks_per_second=100)
    # postgres: 10 + 40 of the lasting ones, 40 of the newborn; gateway: 200 of its own
    assert delta.seconds == pytest.approx({"postgres": 0.9, "gateway": 2.0})
    assert delta.exited == {"postgres": 1, "gateway": 0}


def test_us_per_request_takes_the_idle_cpu_off_never_below_zero() -> None:
    us = us_per_request(
        {"gateway": 2.0, "postgres": 0.5, "nats": 0.01},
        requests=10_000,
        window=10.0,
        idle_rate={"postgres": 0.02, "nats": 0.005},
    )
    assert us == {
        "gateway": pytest.approx(200.0),
        "postgres": pytest.approx(30.0),
        "nats": 0.0,
    }
    with pytest.raises(ValueError, match="no request"):
        us_per_request({"gateway": 1.0}, requests=0)


def test_replicas_round_up_at_the_target_utilisation() -> None:
    assert replicas(10_000, 235.0) == 4  # 2.35 cores / 0.7 = 3.36
    assert replicas(7_000, 100.0) == 1  # exactly 0.7 of a core: float noise adds none
    assert replicas(7_001, 100.0) == 2
    assert replicas(500, 0.0) == 0
    assert replicas(2_000, 250.0, utilisation=1.0) == 1
    with pytest.raises(ValueError, match="utilisation"):
        replicas(1, 1.0, utilisation=0)


def test_combined_replicas_add_the_cpu_of_every_path_before_rounding_up() -> None:
    us = {"hot": {"gateway": 40.0, "identity": 10.0}, "runs": {"gateway": 800.0, "flows": 900.0}}
    loads = {"hot": 10_000.0, "runs": 500.0}
    # gateway: 0.4 + 0.4 cores = 0.8 → 2 at 0.7 each, where each path alone needs 1
    assert combined_replicas(loads, us) == {"gateway": 2, "identity": 1, "flows": 1}
    assert replicas(10_000, 40.0) == replicas(500, 800.0) == 1


def test_per_core_rps_is_a_million_over_the_us() -> None:
    assert per_core_rps(250.0) == 4_000
    assert math.isinf(per_core_rps(0.0))


def test_predicted_max_rps_is_the_least_of_the_shared_cores_and_each_single_process() -> None:
    us = {"gateway": 250.0, "identity": 100.0, "nats": 30.0, "load generator": 120.0}
    single = {"gateway": 1, "identity": 1, "load generator": 1}
    # 500 µs in all on 2 cores: 4,000/s; the gateway alone: 4,000/s
    assert predicted_max_rps(us, 2, single) == pytest.approx(4_000)
    # on 4 cores the one gateway process is the limit; two of them lift it to the CPU bound
    assert predicted_max_rps(us, 4, single) == pytest.approx(4_000)
    assert predicted_max_rps(us, 4, single | {"gateway": 2}) == pytest.approx(8_000)
    assert predicted_max_rps(us, 1, single | {"gateway": 2}) == pytest.approx(2_000)
    bounds = throughput_bounds(us, 4, single)
    assert min(bounds, key=lambda b: bounds[b]) == "gateway"
    assert bounds[ALL_CORES] == pytest.approx(8_000)
    assert "nats" not in bounds  # a multi-threaded server shares the cores only


def test_parse_busy_ticks_sums_all_but_idle_and_iowait() -> None:
    text = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\nintr 1\n"
    assert parse_busy_ticks(text) == (161, 1020)
    assert parse_busy_ticks(Path("/proc/stat").read_text())[0] > 0


def test_replace_block_rewrites_between_the_markers_only() -> None:
    doc = "# Title\nprose\n<!-- capacity:check -->\nold\ntable\n<!-- /capacity:check -->\nmore\n"
    assert replace_block(doc, "check", "new") == (
        "# Title\nprose\n<!-- capacity:check -->\nnew\n<!-- /capacity:check -->\nmore\n"
    )
    with pytest.raises(ValueError, match="'limits' not found"):
        replace_block(doc, "limits", "x")


def _measured(rps: float, us: dict[str, float], others: float = 0.0) -> Measured:
    result = Result("path", int(rps * 10), 0, 10.0, [])
    cpu = CpuDelta({k: 0.0 for k in us}, {k: 0 for k in us})
    return Measured(result, 10.0, us, cpu, others, events=0.0)


def test_report_check_ratio_predicts_on_the_cores_other_tenants_left() -> None:
    hot = {"gateway": 250.0, "identity": 100.0, "nats": 30.0, "load generator": 120.0}
    report = Report(
        paths={"hot": _measured(3_000, hot)},
        idle={"postgres": 0.0},
        check={1: _measured(2_000, hot, others=1.0), 2: _measured(1_600, hot, others=1.2)},
        loads={"hot": 10_000.0},
        utilisation=0.7,
        cores=2.0,
        conditions="",
    )
    # 2 gateways on 0.8 cores left: 0.8 * 1e6 / 500 µs = 1,600/s, as measured
    assert report.check_ratio(2) == pytest.approx(1.0)
    # 1 gateway on 1 core left: 2,000/s predicted (the shared core, not the gateway's 4,000)
    assert report.check_ratio(1) == pytest.approx(1.0)
    blocks = report.blocks()
    assert "| 2 | 4,000 | 0.80 | 1,600 | all cores | 1,600 | 1.00 |" in blocks["check"]
    assert "| gateway | 4 | 4 |" in blocks["replicas"]
    assert blocks["limits"].startswith("- (1) /customers/me, hot token: gateway 66%")


def test_report_replicas_ignore_a_component_under_a_hundredth_of_a_path() -> None:
    # the stack's 255 µs: 2.55 µs is the line; the client's µs do not count towards it
    hot = {"gateway": 250.0, "flows": 2.0, "postgres": 3.0, "load generator": 900.0}
    report = Report(
        paths={"hot": _measured(3_000, hot)},
        idle={},
        check={},
        loads={"hot": 10_000.0},
        utilisation=0.7,
        cores=2.0,
        conditions="",
    )
    table = report.replicas_table()
    assert "| flows | 0 | 0 |" in table  # its idle loops' noise, not a replica
    assert "| postgres | 1 | 1 |" in table
    assert "load generator" not in table
    assert "| (1) /customers/me, hot token | 4,000 | — | — | — | — | — | — | 333,333 |" in (
        report.per_core_table()
    )
