"""The read side of a mirror: one object that ``show``, ``search`` and the HTTP API share.

The CLI and the HTTP app are thin layers over :class:`Mirror`; neither talks to the
store directly for reads, so caching, search and metrics live in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from nvdsync.store import SqlStore, open_store

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nvdsync.cache import CacheInfo, RecordCache
    from nvdsync.config import Settings
    from nvdsync.models import CveRecord, StoreStatus
    from nvdsync.search import SearchPage, SearchQuery
    from nvdsync.store.runs import RunHistory

__all__ = ["Mirror"]


class Mirror:
    """Read access to one mirror. Thread-safe: the HTTP app shares one instance."""

    def __init__(self, store: SqlStore, cache: RecordCache | None = None) -> None:
        self.store = store
        self.cache = cache  # None: every read goes to the database

    @classmethod
    def open(cls, settings: Settings) -> Self:
        """Open the mirror that ``settings.db`` names (creating an empty one if needed),
        with an LRU of ``cache_size`` records / ``cache_max_mb`` (0 entries: none)."""
        from nvdsync.cache import RecordCache

        cache = None
        if settings.cache_size > 0:
            cache = RecordCache(settings.cache_size, int(settings.cache_max_mb * 1024 * 1024),
                                settings.cache_ttl_seconds)
        return cls(open_store(settings.db), cache)

    @property
    def location(self) -> str:
        return self.store.location

    def get(self, cve_id: str) -> bytes | None:
        """The record exactly as NVD sent it, or None when the mirror lacks it."""
        if self.cache is None:
            return self.store.get_raw(cve_id)
        raw = self.cache.get(cve_id)
        if raw is None:
            raw = self.store.get_raw(cve_id)
            if raw is not None:  # misses for absent ids are not cached: a sync adds them
                self.cache.put(cve_id, raw)
        return raw

    def record(self, cve_id: str) -> CveRecord | None:
        """The record's typed summary (for display), or None.

        Normalised from the (cached) raw record: the same function made the stored
        columns from the same bytes, so this equals the stored row, in one read.
        """
        from nvdsync.models import CveRecord
        from nvdsync.normalize import normalize

        raw = self.get(cve_id)
        if raw is None:
            return None
        result = normalize(raw)
        return result if isinstance(result, CveRecord) else self.store.get_record(cve_id)

    def cache_info(self) -> CacheInfo:
        """Hits, misses, evictions, entries and bytes of the record cache (zeros if off)."""
        from nvdsync.cache import CacheInfo

        if self.cache is None:
            return CacheInfo(0, 0, 0, 0, 0, 0, 0)
        return self.cache.info()

    def cache_clear(self) -> None:
        """Drop cached records; call after a sync in this process (see nvdsync.cache)."""
        if self.cache is not None:
            self.cache.clear()

    def runs(self) -> RunHistory:
        """The runs history with memory samples (``nvdsync runs``)."""
        from nvdsync.store.runs import RunHistory

        return RunHistory(self.store.engine, self.store.location)

    def status(self) -> StoreStatus:
        return self.store.status()

    # Search (nvdsync.search): InvalidQuery for bad filters, raised by the call itself.
    def search(self, query: SearchQuery) -> SearchPage:
        """The total and one page of typed hits."""
        from nvdsync.search import search

        return search(self.store, query)

    def count(self, query: SearchQuery) -> int:
        """How many records match (offset and limit ignored)."""
        from nvdsync.search import count

        return count(self.store, query)

    def iter_raw(self, query: SearchQuery) -> Iterator[bytes]:
        """Matching records' JSON by published then id, streamed in bounded memory."""
        from nvdsync.search import iter_raw

        return iter_raw(self.store, query)

    def count_and_iter_raw(self, query: SearchQuery) -> tuple[int, Iterator[bytes]]:
        """The total and the page's records (lazily), from one scan of the matches."""
        from nvdsync.search import count_and_iter_raw

        return count_and_iter_raw(self.store, query)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
