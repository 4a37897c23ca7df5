"""When credentials are renewed and checked: margin before expiry, never before half-life."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.connections.settings import ConnectionsOptions
from services.connections.vault import Schedule, schedule

NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
OPTIONS = ConnectionsOptions(refresh_margin=600, check_interval=3600)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_schedule_nothing_when_no_lifetime_is_known() -> None:
    plan = schedule(NOW, OPTIONS, expires_in=None, default_lifetime=None, renewable=True)
    assert plan == Schedule(None, None, None)


def test_schedule_renews_margin_before_expiry() -> None:
    plan = schedule(NOW, OPTIONS, expires_in=3600, default_lifetime=None, renewable=True)
    assert plan == Schedule(at(3600), at(3000), None)


@pytest.mark.parametrize(
    ("lifetime", "due"),
    [
        (1199, 599.5),  # margin longer than half the lifetime: renew at half-life
        (1200, 600),  # margin exactly half the lifetime: both say the same
        (1201, 601),  # margin shorter: margin before expiry
        (60, 30),
        (1, 0.5),
    ],
)
def test_schedule_never_renews_before_half_life(lifetime: int, due: float) -> None:
    plan = schedule(NOW, OPTIONS, expires_in=lifetime, default_lifetime=None, renewable=True)
    assert plan.refresh_due_at == at(due)
    assert plan.expires_at == at(lifetime)


def test_schedule_token_already_expired() -> None:
    """A token that expires as it arrives is renewed at once."""
    plan = schedule(NOW, OPTIONS, expires_in=0, default_lifetime=None, renewable=True)
    assert plan == Schedule(NOW, NOW, None)


def test_schedule_zero_margin_renews_at_expiry() -> None:
    options = ConnectionsOptions(refresh_margin=0, check_interval=3600)
    plan = schedule(NOW, options, expires_in=100, default_lifetime=None, renewable=True)
    assert plan.refresh_due_at == at(100)


def test_schedule_not_renewable_only_expires() -> None:
    plan = schedule(NOW, OPTIONS, expires_in=3600, default_lifetime=None, renewable=False)
    assert plan == Schedule(at(3600), None, None)


def test_schedule_default_lifetime_is_also_checked() -> None:
    """A token that does not say when it expires is given the default and tested on a schedule."""
    plan = schedule(NOW, OPTIONS, expires_in=None, default_lifetime=7200, renewable=True)
    assert plan == Schedule(at(7200), at(6600), at(3600))


def test_schedule_expires_in_wins_over_the_default() -> None:
    plan = schedule(NOW, OPTIONS, expires_in=100, default_lifetime=7200, renewable=True)
    assert plan == Schedule(at(100), at(50), None)


def test_schedule_default_lifetime_not_renewable_is_still_checked() -> None:
    plan = schedule(NOW, OPTIONS, expires_in=None, default_lifetime=7200, renewable=False)
    assert plan == Schedule(at(7200), None, at(3600))
