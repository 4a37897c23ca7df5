"""Schedule ticks: cron in an IANA zone, strictly forward, DST changes, missed ticks collapsed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.flows.triggers.cron import BadSchedule, check, next_tick
from services.flows.triggers.schedules import first_tick, following_tick


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def walk(cron: str, tz: str, start: datetime, n: int) -> list[datetime]:
    ticks, at = [], start
    for _ in range(n):
        found = next_tick(cron, tz, at)
        assert found is not None
        ticks.append(found)
        at = found
    return ticks


def test_schedule_next_tick_is_strictly_after() -> None:
    assert next_tick("0 * * * *", "UTC", utc(2030, 1, 1, 1)) == utc(2030, 1, 1, 2)
    assert next_tick("0 * * * *", "UTC", utc(2030, 1, 1, 1, 0, 0) - timedelta(microseconds=1)) == (
        utc(2030, 1, 1, 1)
    )
    assert next_tick("@daily", "UTC", utc(2030, 1, 1, 12)) == utc(2030, 1, 2)


def test_schedule_seconds_field() -> None:
    assert walk("* * * * * */2", "UTC", utc(2030, 1, 1, 0, 0, 0), 3) == [
        utc(2030, 1, 1, 0, 0, 2),
        utc(2030, 1, 1, 0, 0, 4),
        utc(2030, 1, 1, 0, 0, 6),
    ]


def test_schedule_reads_the_cron_on_the_zones_wall_clock() -> None:
    # 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
    assert next_tick("0 9 * * *", "America/New_York", utc(2030, 1, 10)) == utc(2030, 1, 10, 14)
    assert next_tick("0 9 * * *", "America/New_York", utc(2030, 7, 10)) == utc(2030, 7, 10, 13)
    assert next_tick("0 9 * * *", "Asia/Kolkata", utc(2030, 1, 10)) == utc(2030, 1, 10, 3, 30)


def test_schedule_skipped_wall_time_ticks_once_after_the_gap() -> None:
    # Berlin springs forward 2025-03-30 02:00 → 03:00: 02:30 does not exist that day.
    assert walk("30 2 * * *", "Europe/Berlin", utc(2025, 3, 29, 12), 3) == [
        utc(2025, 3, 30, 1),  # 03:00 CEST, right after the gap
        utc(2025, 3, 31, 0, 30),
        utc(2025, 4, 1, 0, 30),
    ]


def test_schedule_repeated_wall_time_ticks_once_for_a_fixed_hour() -> None:
    # Berlin falls back 2025-10-26 03:00 → 02:00: 02:30 happens twice that night.
    assert walk("30 2 * * *", "Europe/Berlin", utc(2025, 10, 25, 12), 3) == [
        utc(2025, 10, 26, 0, 30),  # 02:30 CEST; 02:30 CET an hour later is the same tick
        utc(2025, 10, 27, 1, 30),
        utc(2025, 10, 28, 1, 30),
    ]


def test_schedule_repeated_hour_ticks_again_for_a_wildcard_hour() -> None:
    ticks = walk("*/30 * * * *", "Europe/Berlin", utc(2025, 10, 25, 23, 45), 6)
    assert ticks == [utc(2025, 10, 26, 0) + timedelta(minutes=30 * i) for i in range(6)]


def test_schedule_never_ticking_again_is_none() -> None:
    assert next_tick("0 0 30 2 *", "UTC", utc(2030, 1, 1)) is None


@pytest.mark.parametrize(
    ("cron", "tz"),
    [
        ("61 * * * *", "UTC"),
        ("not a cron", "UTC"),
        ("* * * * *", "Mars/Olympus"),
        ("* * * * *", ""),
    ],
)
def test_schedule_unusable_cron_or_zone(cron: str, tz: str) -> None:
    with pytest.raises(BadSchedule):
        check(cron, tz)
    with pytest.raises(BadSchedule):
        next_tick(cron, tz, utc(2030, 1, 1))


def test_schedule_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_tick("* * * * *", "UTC", datetime(2030, 1, 1))


def test_schedule_first_tick_of_a_new_schedule_is_after_now() -> None:
    assert first_tick("0 * * * *", "UTC", utc(2030, 1, 1, 5, 0)) == utc(2030, 1, 1, 6)


def test_schedule_missed_ticks_collapse_into_one() -> None:
    """Down for three hours of an hourly cron: one run (of the oldest), then the next hour."""
    due, now = utc(2030, 1, 1, 2), utc(2030, 1, 1, 5, 20)
    assert following_tick("0 * * * *", "UTC", due, now) == utc(2030, 1, 1, 6)


def test_schedule_on_time_tick_moves_to_the_next() -> None:
    due = utc(2030, 1, 1, 2)
    now = due + timedelta(milliseconds=300)
    assert following_tick("0 * * * *", "UTC", due, now) == utc(2030, 1, 1, 3)
