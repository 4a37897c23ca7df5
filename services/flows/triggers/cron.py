"""Compute a schedule trigger's ticks: a cron expression read in an IANA time zone.

* A tick is an instant (UTC); :func:`next_tick` returns the first tick strictly after a
  given instant, so repeated calls walk the ticks in order and never return one twice.
* The cron fields are matched against the wall clock of ``timezone`` (default UTC), as
  cron does. Across daylight-saving changes (as cronie does):

  - a wall time skipped when clocks go forward ticks once, at the first instant after
    the gap (``30 2 * * *`` on the day Berlin skips 02:00-03:00 ticks at 03:00);
  - a wall time that happens twice when clocks go back ticks once, at its first
    occurrence, unless the hour field is a wildcard (``*``, ``*/2``): then the repeated
    hour's ticks run too, since such a schedule means "every so often", not "at 02:30".

* Six fields are croniter's: the sixth is seconds (``* * * * * */5``: every 5 seconds).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError

# A schedule that can never tick again (``0 0 30 2 *``) makes croniter give up after this
# many years of looking; it is reported as "no next tick", not as an error.
_MAX_YEARS = 50


class BadSchedule(ValueError):
    """The cron expression or the time zone cannot be used (saved before validation knew)."""


def zone(name: str) -> ZoneInfo:
    """Return the IANA time zone ``name``; BadSchedule when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadSchedule(f"{name!r} is not an IANA time zone") from exc


def check(cron: str, timezone: str) -> None:
    """Raise BadSchedule when ``cron`` or ``timezone`` cannot be used."""
    zone(timezone)
    if not croniter.is_valid(cron):
        raise BadSchedule(f"{cron!r} is not a valid cron expression")


def next_tick(cron: str, timezone: str, after: datetime) -> datetime | None:
    """Return the first tick of ``cron`` in ``timezone`` strictly after ``after`` (in UTC).

    None when the expression never ticks again. ``after`` must be timezone-aware.
    """
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    tz = zone(timezone)
    repeat_hours = _hour_is_wildcard(cron)
    start = after.astimezone(tz)
    try:
        ticks = croniter(cron, start, max_years_between_matches=_MAX_YEARS)
        while True:
            candidate: datetime = ticks.get_next(datetime)
            candidate = candidate.astimezone(UTC)
            if candidate <= after:
                continue  # croniter may step back across a DST change; ticks only go forward
            if not repeat_hours and _second_occurrence(candidate.astimezone(tz)):
                continue
            return candidate
    except CroniterBadDateError:
        return None  # no match within _MAX_YEARS: it never ticks again
    except CroniterError as exc:
        raise BadSchedule(f"{cron!r} is not a valid cron expression") from exc


def _hour_is_wildcard(cron: str) -> bool:
    """Tell whether the hour field repeats (``*``, ``*/n``) or the expression is a nickname."""
    fields = cron.split()
    if len(fields) < 2:
        return cron.strip() == "@hourly"
    return fields[1].startswith("*")


def _second_occurrence(local: datetime) -> bool:
    """Tell whether ``local`` is the later of two instants showing the same wall time."""
    wall = local.replace(tzinfo=None)
    tz = local.tzinfo
    first = wall.replace(fold=0, tzinfo=tz)
    second = wall.replace(fold=1, tzinfo=tz)
    ambiguous = first.utcoffset() != second.utcoffset()
    return ambiguous and local.utcoffset() == second.utcoffset()
