"""Compute retry delays: one formula for every retry loop in Tether.

Exponential growth from ``base`` doubling per attempt, capped at ``cap``, with "equal
jitter" (the delay is drawn uniformly from half to one and a half times the nominal
value) so that many workers failing together do not retry together. Attempts count
from 1: the delay after the first failure is about ``base``.
"""

from __future__ import annotations

import random

# Jitter draws from the operating system, not from ``random``'s shared global state: that
# state is the application's (and a test's, which may seed or watch it), not ours to move.
_SYSTEM = random.SystemRandom()


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: bool = True) -> float:
    """Return the seconds to wait after failed attempt number ``attempt`` (1-based)."""
    nominal: float = min(cap, base * 2.0 ** max(0, min(attempt - 1, 62)))
    return spread(nominal) if jitter else nominal


def spread(delay: float) -> float:
    """Return ``delay`` with equal jitter: uniformly between half and one and a half of it."""
    return float(delay * (0.5 + _SYSTEM.random()))


def jitter(low: float, high: float) -> float:
    """Return a pause drawn uniformly between ``low`` and ``high`` seconds."""
    return _SYSTEM.uniform(low, high)


def scheduled_delay(attempt: int, schedule: tuple[float, ...] | list[float]) -> float:
    """Return the delay a fixed schedule gives attempt ``attempt`` (1-based; the last repeats)."""
    if not schedule:
        raise ValueError("a schedule needs at least one delay")
    return float(schedule[min(max(attempt, 1), len(schedule)) - 1])
