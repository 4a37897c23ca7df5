"""bench.all's summary table, and bench.common.record feeding it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.all import BENCHES, Figure, commands, read_figures, summary_table
from bench.common import ROOT, SUMMARY_ENV, record

NOT_BENCHMARKS = {"__init__", "all", "common", "bare_server", "auth_baselines"}
"""Modules of bench/ that are helpers, not benchmarks."""


def test_summary_table_has_a_row_per_figure_with_repeated_ratios_joined() -> None:
    figures = [
        Figure("auth", "(a) hot token/asyncpg select", 0.8123, "≥ 0.7"),
        Figure("gateway_hop", "gateway/bare", 0.9),
        Figure("auth", "(b) fresh token/PyJWT verify", 0.234, "≥ 0.5"),
        Figure("gateway_hop", "gateway/bare", 0.957),
    ]
    table = summary_table(figures, {"gateway_hop": 0, "auth": 0})
    assert table.splitlines() == [
        "bench        figure                             ratio  goal",
        "-----------  ----------------------------  ----------  -----",
        "gateway_hop  gateway/bare                  0.90, 0.96",
        "auth         (a) hot token/asyncpg select        0.81  ≥ 0.7",
        "auth         (b) fresh token/PyJWT verify        0.23  ≥ 0.5",
    ]


def test_summary_table_names_failed_and_silent_benchmarks() -> None:
    figures = [Figure("runs", "(a) runs/s / bare accepts/s", 0.41)]
    table = summary_table(figures, {"runs": 1, "deploy": 0, "sync": -9})
    assert table.splitlines()[2:] == [
        "runs    (a) runs/s / bare accepts/s   0.41",
        "runs    FAILED (exit status 1)",
        "deploy  (no ratio recorded)",
        "sync    FAILED (exit status -9)",
    ]


def test_summary_table_of_nothing_is_just_the_header() -> None:
    assert summary_table([], {}).splitlines() == [
        "bench  figure  ratio  goal",
        "-----  ------  -----  ----",
    ]


def test_record_appends_what_read_figures_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.jsonl"
    record("flows", "get instance/bare", 0.5)  # no variable: nothing is written anywhere
    monkeypatch.setenv(SUMMARY_ENV, str(summary))
    record("flows", "get instance/bare", 0.61)
    record("runs", "(c) p99 deep/without", float("nan"), "≤ 1.5")
    figures = read_figures(summary)
    assert figures[0] == Figure("flows", "get instance/bare", 0.61, None)
    assert figures[1].goal == "≤ 1.5"
    assert figures[1].ratio != figures[1].ratio  # NaN survives the round trip
    assert read_figures(tmp_path / "absent.jsonl") == []


def test_commands_use_the_modest_sizes_unless_full() -> None:
    quick = commands(["runs", "sync"], full=False)
    assert quick["runs"][-3:] == ["-m", "bench.runs", "--quick"]
    assert quick["sync"][-2:] == ["--records", "20000"]
    assert commands(["sync"], full=True)["sync"][-2:] == ["-m", "bench.sync"]
    assert set(BENCHES) == {
        p.stem for p in (ROOT / "bench").glob("*.py") if p.stem not in NOT_BENCHMARKS
    }
