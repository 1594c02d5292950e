"""The read side of a mirror: one object that ``show``, ``search`` and the HTTP API share.

The CLI and the HTTP app are thin layers over :class:`Mirror`; neither talks to the
store directly for reads, so caching, search and metrics live in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from nvdsync.store import SqlStore, open_store

if TYPE_CHECKING:
    from nvdsync.config import Settings
    from nvdsync.models import CveRecord, StoreStatus

__all__ = ["Mirror"]


class Mirror:
    """Read access to one mirror. Thread-safe: the HTTP app shares one instance."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    @classmethod
    def open(cls, settings: Settings) -> Self:
        """Open the mirror that ``settings.db`` names (creating an empty one if needed)."""
        return cls(open_store(settings.db))

    @property
    def location(self) -> str:
        return self.store.location

    def get(self, cve_id: str) -> bytes | None:
        """The record exactly as NVD sent it, or None when the mirror lacks it."""
        return self.store.get_raw(cve_id)

    def record(self, cve_id: str) -> CveRecord | None:
        """The record's typed summary (for display), or None."""
        return self.store.get_record(cve_id)

    def status(self) -> StoreStatus:
        return self.store.status()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
