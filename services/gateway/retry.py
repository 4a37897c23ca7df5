"""Retry idempotent calls when a service replica or a NATS node went away mid-request.

Retries are stamina's (exponential backoff with jitter, bounded attempts); the waits
stay short because a request is waiting: enough for NATS to route around a lost replica.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import stamina

from libs.common.backoff import spread
from libs.common.errors import Timeout, Unavailable

T = TypeVar("T")

RETRYABLE = (Unavailable, Timeout)
"""What says "nobody answered", not "the answer is no": only these are worth a second try."""


async def idempotent(
    call: Callable[[], Awaitable[T]], *, attempts: int = 3, pause: float = 0.1
) -> T:
    """Run ``call``; on Unavailable or Timeout run it again (a read may safely be repeated).

    Waits ``pause``, then three times longer each attempt (plus up to ``pause`` of jitter).
    The first attempt is made directly: it is every read's path, and setting up a retry
    loop costs ~15 µs that only the rare failed read needs.
    """
    try:
        return await call()
    except RETRYABLE:
        if attempts <= 1:
            raise
    await asyncio.sleep(spread(pause))  # let NATS route around the failure
    async for attempt in stamina.retry_context(
        on=RETRYABLE,
        attempts=attempts - 1,
        timeout=None,
        wait_initial=pause * 3,
        wait_exp_base=3,
        wait_jitter=pause,
        wait_max=pause * 3 ** max(attempts - 2, 1),
    ):
        with attempt:
            return await call()
    raise AssertionError("stamina gives up by raising the last error")  # pragma: no cover
