"""The TTL cache: expiry, per-entry deadlines, LRU bound, targeted drops."""

from __future__ import annotations

from libs.common.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cache_entries_expire_at_their_own_deadline() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10, ttl=60, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2, ttl=5)
    cache.put("c", 3, ttl=600)  # capped at the cache's ttl
    cache.put("gone", 4, ttl=0)
    assert (cache.get("a"), cache.get("b"), cache.get("gone")) == (1, 2, None)
    clock.now = 6
    assert (cache.get("a"), cache.get("b")) == (1, None)
    clock.now = 61
    assert (cache.get("a"), cache.get("c")) == (None, None)


def test_cache_evicts_least_recently_used() -> None:
    cache: TtlCache[str, int] = TtlCache(2, ttl=60)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_cache_drops_by_key_and_by_value() -> None:
    cache: TtlCache[str, tuple[str, int]] = TtlCache(10, ttl=60)
    for i in range(4):
        cache.put(f"k{i}", ("even" if i % 2 == 0 else "odd", i))
    cache.drop("k0")
    cache.drop_where(lambda v: v[0] == "odd")
    assert [cache.get(f"k{i}") for i in range(4)] == [None, None, ("even", 2), None]
    assert len(cache) == 1
    assert len(TtlCache[str, int](0, ttl=60)) == 0
