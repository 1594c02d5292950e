"""RecordCache: LRU order, the entry and byte bounds, expiry, counters, threads."""

from __future__ import annotations

import threading

import pytest

from nvdsync.cache import CacheInfo, RecordCache


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_evicts_the_least_recently_used_entry() -> None:
    cache = RecordCache(max_entries=3, max_bytes=1000)
    for key in "abc":
        cache.put(key, key.encode())
    assert cache.get("a") == b"a"  # a is now the most recently used
    cache.put("d", b"d")
    assert cache.get("b") is None  # b was the least recently used
    assert [cache.get(k) for k in "acd"] == [b"a", b"c", b"d"]
    info = cache.info()
    assert (info.size, info.evictions) == (3, 1)


def test_the_byte_bound_holds_and_counts_evictions() -> None:
    cache = RecordCache(max_entries=50, max_bytes=100)
    for i in range(5):
        cache.put(f"k{i}", bytes(30))
    info = cache.info()
    assert info.bytes <= 100 and info.size == 3
    assert info.evictions == 2
    assert cache.get("k0") is None and cache.get("k4") == bytes(30)


def test_a_record_larger_than_the_byte_bound_is_not_cached() -> None:
    cache = RecordCache(max_entries=5, max_bytes=10)
    cache.put("big", bytes(11))
    cache.put("small", bytes(10))
    assert cache.get("big") is None
    assert cache.get("small") == bytes(10)


def test_counters() -> None:
    cache = RecordCache(max_entries=1, max_bytes=100)
    assert cache.get("x") is None
    cache.put("x", b"xx")
    assert cache.get("x") == b"xx"
    assert cache.get("x") == b"xx"
    cache.put("y", b"yyy")
    assert cache.info() == CacheInfo(hits=2, misses=1, evictions=1, size=1, bytes=3,
                                     max_entries=1, max_bytes=100)


def test_entries_expire_after_the_ttl() -> None:
    timer = Timer()
    cache = RecordCache(max_entries=5, max_bytes=100, ttl=60.0, timer=timer)
    cache.put("a", b"old")
    timer.now = 59.0
    assert cache.get("a") == b"old"
    timer.now = 61.0
    assert cache.get("a") is None
    assert cache.info().size == 0
    assert cache.info().evictions == 0  # expiry is not a bound's eviction


def test_clear_empties_but_keeps_counting() -> None:
    cache = RecordCache(max_entries=5, max_bytes=100)
    cache.put("a", b"a")
    cache.put("b", b"b")
    cache.get("a")
    cache.clear()
    assert cache.get("a") is None
    info = cache.info()
    assert (info.size, info.bytes, info.hits, info.misses, info.evictions) == (0, 0, 1, 1, 0)


def test_threads_never_break_the_bounds() -> None:
    cache = RecordCache(max_entries=10, max_bytes=10_000)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(2000):
                key = f"k{(i * 7 + n) % 40}"
                if cache.get(key) is None:
                    cache.put(key, key.encode() * 5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    info = cache.info()
    assert errors == []
    assert info.size <= 10 and info.bytes <= 10_000
    assert info.hits + info.misses == 8 * 2000


@pytest.mark.parametrize(("entries", "size", "ttl"), [(0, 10, 1.0), (1, 0, 1.0), (1, 1, 0.0)])
def test_bad_bounds_are_refused(entries: int, size: int, ttl: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        RecordCache(entries, size, ttl)
