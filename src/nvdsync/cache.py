"""A bounded, thread-safe LRU of raw records for the read path (``Mirror.get``).

Built on :class:`cachetools.TTLCache` (LRU eviction plus an age limit) rather than
written by hand. Two bounds hold at once: ``max_entries`` (the seed design's 50) and
``max_bytes``, the sum of the cached records' lengths (``getsizeof=len``), so a few
huge records (NVD has some of several MB, with thousands of CPE matches) cannot
make a 50-entry cache hold hundreds of MB. A record larger than the byte bound is
served but never cached.

Staleness: records change only through a sync. A sync in this process calls
:meth:`RecordCache.clear` (the HTTP app's scheduled sync does, through
``Mirror.cache_clear``); a sync by *another* process (cron) cannot tell us, so
entries also expire after ``ttl`` seconds. Checking a "last commit" marker in the
database on every read was the alternative; it costs a query per read, which is what
the cache is there to save.

cachetools is not thread-safe, and the HTTP app reads from many threads: every
operation takes one lock (held for a dict operation, never for a database read).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cachetools import TTLCache

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CacheInfo", "RecordCache"]


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """Counters since the cache was made: stable names for metrics (Prometheus)."""

    hits: int
    misses: int
    evictions: int  # entries pushed out by a bound (not expired ones)
    size: int  # entries held now
    bytes: int  # sum of their lengths
    max_entries: int
    max_bytes: int


class _CountingTTLCache(TTLCache[str, bytes]):
    """cachetools evicts through ``popitem``; counting there counts every eviction."""

    evictions = 0

    def popitem(self) -> tuple[str, bytes]:
        item = super().popitem()
        self.evictions += 1
        return item


class RecordCache:
    """LRU of ``cve_id -> raw bytes`` bounded by entries and bytes, with an age limit."""

    def __init__(
        self,
        max_entries: int = 50,
        max_bytes: int = 16 * 1024 * 1024,
        ttl: float = 60.0,
        *,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be at least 1 "
                             f"(got {max_entries!r}, {max_bytes!r})")
        if not ttl > 0:
            raise ValueError(f"ttl must be greater than 0, got {ttl!r}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data = _CountingTTLCache(maxsize=max_bytes, ttl=ttl, timer=timer, getsizeof=len)
        self._lock = threading.Lock()
        self._hits = self._misses = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self._misses += 1
            else:
                self._hits += 1
            return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return  # cachetools would raise; serving it uncached is the right answer
        with self._lock:
            self._data[key] = value
            # The byte bound is cachetools' maxsize; the entry bound is ours.
            while len(self._data) > self.max_entries:
                self._data.popitem()

    def clear(self) -> None:
        """Forget every entry (after a sync); the counters keep counting."""
        with self._lock:
            evictions = self._data.evictions
            self._data.clear()  # MutableMapping.clear() pops items: not evictions
            self._data.evictions = evictions

    def info(self) -> CacheInfo:
        with self._lock:
            self._data.expire()
            return CacheInfo(self._hits, self._misses, self._data.evictions,
                             len(self._data), int(self._data.currsize), self.max_entries,
                             self.max_bytes)
