"""Run one call per key at a time in a process; concurrent callers share its result.

Used where many requests in one replica want the same expensive answer at once (a
token's verification, a credential's renewal): the first caller runs it, the others
await the same future. Across replicas a different mechanism (a row lock) is needed;
this only saves the duplicate work inside one process. A failure is shared as well,
and the key is free again as soon as the call ends, so the next caller starts afresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Deduplicate concurrent calls by key within one event loop."""

    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._inflight)

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        """Return ``call()``'s result, running it only if no call for ``key`` is in flight."""
        existing = self._inflight.get(key)
        if existing is not None:
            return await asyncio.shield(existing)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await call()
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved: no "never retrieved" warning
            raise
        else:
            future.set_result(result)
            return result
        finally:
            self._inflight.pop(key, None)
