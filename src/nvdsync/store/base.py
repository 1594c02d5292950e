"""The store port: what the pipeline and the read side need from a database.

Every method that writes runs in one transaction; a failure rolls it back and is
raised as :class:`nvdsync.errors.StoreError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator, Sequence
    from contextlib import AbstractContextManager
    from datetime import datetime

    from nvdsync.models import CveRecord, Quarantined, RunInfo, StoreStatus, SyncPlan

__all__ = ["Store"]


class Store(Protocol):
    #: Human-readable location (file path or URL with the password masked).
    location: str

    # --- write side -------------------------------------------------------------------
    def write_batch(
        self,
        records: Sequence[CveRecord],
        quarantined: Sequence[Quarantined] = (),
        plan: SyncPlan | None = None,
    ) -> int:
        """Upsert records, add quarantined rows and save ``plan``, all in one transaction.

        A record replaces a stored one only when its ``last_modified`` is not older.
        Returns how many records were inserted or replaced.
        """
        ...

    def writer_lock(
        self, *, wait: float | None = None, on_wait: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> AbstractContextManager[None]:
        """Exclusive for one sync; raises MirrorBusy when another holds it.

        With ``wait`` (seconds, or ``math.inf``) it waits that long for the holder to
        finish, calling ``on_wait(holder)`` once when it starts waiting; setting
        ``stop`` ends the wait with MirrorBusy.
        """
        ...

    def begin_run(self, mode: str, started_at: datetime) -> int: ...

    def finish_run(self, run: RunInfo) -> None:
        """Update the run row ``run.id`` with the final counters and outcome."""
        ...

    def load_plan(self) -> SyncPlan | None: ...

    def save_plan(self, plan: SyncPlan | None) -> None:
        """Store (or with ``None`` clear) the resume state."""
        ...

    def complete_sync(self, watermark: datetime) -> None:
        """Set the watermark and clear the plan in one transaction."""
        ...

    # --- read side --------------------------------------------------------------------
    def get_watermark(self) -> datetime | None: ...

    def get_raw(self, cve_id: str) -> bytes | None:
        """The record exactly as NVD sent it (JSON text of the ``cve`` object)."""
        ...

    def get_record(self, cve_id: str) -> CveRecord | None: ...

    def iter_raw(self) -> Iterator[bytes]:
        """Every record's JSON, ordered by published then id, in bounded memory."""
        ...

    def count(self) -> int: ...

    def count_published(self, start: str, end: str) -> int:
        """Records whose ``published`` (NVD text form) lies in [start, end]."""
        ...

    def status(self, runs: int = 5) -> StoreStatus: ...

    def close(self) -> None: ...
