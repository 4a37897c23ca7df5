"""Retry idempotent calls when a service replica or a NATS node went away mid-request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from libs.common.errors import Timeout, Unavailable

T = TypeVar("T")


async def idempotent(
    call: Callable[[], Awaitable[T]], *, attempts: int = 3, pause: float = 0.1
) -> T:
    """Run ``call``; on Unavailable or Timeout run it again (a read may safely be repeated)."""
    for attempt in range(attempts - 1):
        try:
            return await call()
        except (Unavailable, Timeout):
            await asyncio.sleep(pause * 3**attempt)  # let NATS route around the failure
    return await call()
