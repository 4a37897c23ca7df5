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


def test_cache_load_refused_only_when_its_own_key_was_dropped() -> None:
    """A drop of another key leaves a load free to be kept; a drop of the same key does not."""
    cache: TtlCache[str, int] = TtlCache(10, 60)
    since = cache.generation
    cache.drop("other")
    cache.put("hot", 1, since=since)
    assert cache.get("hot") == 1
    since = cache.generation
    cache.drop("hot")
    cache.put("hot", 2, since=since)
    assert cache.get("hot") is None


def test_cache_forgotten_drops_make_older_loads_stale() -> None:
    """Once a drop falls out of the bounded memory of drops, loads older than it are refused."""
    cache: TtlCache[int, int] = TtlCache(1, 60)
    since = cache.generation
    cache.drop(0)
    for key in range(1, 2000):  # more drops than the cache remembers
        cache.drop(key)
    cache.put(0, 1, since=since)
    assert cache.get(0) is None
    cache.put(0, 1, since=cache.generation)
    assert cache.get(0) == 1


def test_cache_drop_where_refuses_every_load_under_way() -> None:
    cache: TtlCache[str, int] = TtlCache(10, 60)
    since = cache.generation
    cache.drop_where(lambda v: v == 99)
    cache.put("any", 1, since=since)
    assert cache.get("any") is None
