"""A bounded in-memory cache whose entries expire: hot reads with event-driven invalidation."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Least-recently-used entries, each trusted until its own deadline.

    The cache is per process; whoever changes the source of truth also drops entries
    here, and every replica drops them again when it hears the change's event. ``ttl``
    bounds how long a missed event can leave an entry stale.

    A lookup that began before a drop must not store what it read after it: the value it
    read may be the one the drop was for (read, then the change commits and is dropped,
    then the read is stored, stale for a whole ``ttl``). Every drop advances
    :attr:`generation`; a loader reads it before reading the source of truth and passes it
    to :meth:`put` as ``since``, which then stores nothing if *that key* was dropped
    meanwhile. Drops are remembered per key in a bounded list of recent ones (older ones
    raise a floor below which every load counts as stale), so a steady stream of drops of
    other keys never stops hot keys from being cached.
    """

    def __init__(self, size: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._size = size
        self._ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._generation = 0
        self._dropped: OrderedDict[K, int] = OrderedDict()  # key → generation of its last drop
        self._floor = 0  # loads that began before this generation are all suspect
        self._remember = max(1024, size)

    @property
    def generation(self) -> int:
        """Return how many drops happened so far (read it before loading; see :meth:`put`)."""
        return self._generation

    def get(self, key: K) -> V | None:
        """Return the live entry for ``key``, if any."""
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return hit[1]

    def put(self, key: K, value: V, ttl: float | None = None, *, since: int | None = None) -> None:
        """Keep ``value`` for ``min(ttl, the cache's ttl)`` seconds (not at all when ≤ 0).

        ``since`` is the :attr:`generation` read before ``value`` was loaded: when anything
        was dropped since then, ``value`` may be stale and is not kept.
        """
        life = self._ttl if ttl is None else min(ttl, self._ttl)
        if self._size == 0 or life <= 0 or (since is not None and self._stale(key, since)):
            return
        self._entries[key] = (self._clock() + life, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def drop(self, key: K) -> None:
        """Forget ``key`` (and refuse loads of it that began before now)."""
        self._generation += 1
        self._entries.pop(key, None)
        self._dropped[key] = self._generation
        self._dropped.move_to_end(key)
        while len(self._dropped) > self._remember:
            _, forgotten = self._dropped.popitem(last=False)
            self._floor = max(self._floor, forgotten)

    def drop_where(self, doomed: Callable[[V], bool]) -> None:
        """Forget every entry whose value ``doomed`` says so (and refuse every load under way).

        A load under way may be of a key ``doomed`` would name, which cannot be asked of a
        value not read yet: every load that began before this drop is refused.
        """
        self._generation += 1
        self._floor = self._generation
        for key in [k for k, (_, v) in self._entries.items() if doomed(v)]:
            del self._entries[key]

    def _stale(self, key: K, since: int) -> bool:
        """Tell whether ``key`` may have changed since generation ``since``."""
        return since < self._floor or self._dropped.get(key, 0) > since

    def __len__(self) -> int:
        return len(self._entries)
