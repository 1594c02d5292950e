"""RSS over a run's time: a light daemon thread plus one mark per committed page.

The pipeline checks memory after every batch and page, but a spike can rise and fall
between two checks (a page body being spooled, SQLite growing its cache), so a thread
reads RSS every ``interval`` seconds (default 1 s, ``memory_sample_seconds``) and
feeds the monitor's peak. The same readings, with one extra sample per committed page,
become the run's memory chart (``nvdsync runs show N``).

Bounded however long the run: at most ``max_points`` timed samples are kept. When the
buffer fills, neighbouring samples are merged pairwise, keeping the *higher* RSS of
each pair (a chart of a memory bound must never lose the peak), and the interval
doubles. A 16-hour run at 1 s would be 57,600 samples; with the default cap of 3,600
it keeps one sample per 16 s, which still shows every trend while the buffer stays
around 200 KB. Page marks are capped the same way (``max_pages``); a full NVD sync has
about 160 pages, so in practice every page is kept.

Standalone like :mod:`nvdsync.memory`: it takes any ``read_rss_mb`` callable.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MemorySampler", "RssSample"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RssSample:
    """One point of the chart: seconds since the run started, RSS in MB, and the
    number of pages committed when it marks a page (None for a timed sample)."""

    t_seconds: float
    rss_mb: float
    page: int | None = None


class MemorySampler:
    """Collects :class:`RssSample`s; ``start()`` runs the timed thread."""

    def __init__(
        self,
        read_rss_mb: Callable[[], float],
        interval: float = 1.0,
        *,
        max_points: int = 3600,
        max_pages: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be greater than 0, got {interval!r}")
        if max_points < 2 or max_pages < 2:
            raise ValueError("max_points and max_pages must be at least 2")
        self._read = read_rss_mb
        self.interval = float(interval)
        self.max_points = max_points
        self.max_pages = max_pages
        self._clock = clock
        self._t0 = clock()
        self._timed: list[RssSample] = []
        self._pages: list[RssSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- recording --------------------------------------------------------------------
    def tick(self) -> RssSample:
        """Take one timed sample (the thread's call; tests call it directly)."""
        sample = RssSample(self._clock() - self._t0, self._read())
        with self._lock:
            self._timed.append(sample)
            if len(self._timed) >= self.max_points:
                self._timed = _halve(self._timed)
                self.interval *= 2  # keep the rate at what the buffer can hold
        return sample

    def mark_page(self, pages: int) -> RssSample:
        """Record RSS right after page number ``pages`` was committed."""
        sample = RssSample(self._clock() - self._t0, self._read(), pages)
        with self._lock:
            self._pages.append(sample)
            if len(self._pages) >= self.max_pages:
                self._pages = _halve(self._pages)
        return sample

    def samples(self) -> list[RssSample]:
        """Timed samples and page marks merged in time order."""
        with self._lock:
            merged = self._timed + self._pages
        return sorted(merged, key=lambda s: (s.t_seconds, s.page is not None))

    # --- the thread -------------------------------------------------------------------
    def start(self) -> Self:
        """Restart the clock, take a first sample and start the daemon thread."""
        self._t0 = self._clock()
        self.tick()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="nvdsync-memory",
                                        daemon=True)  # never keeps a dying process alive
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # a failed read must not kill the sampler
                log.debug("memory sample failed", exc_info=True)

    def stop(self) -> None:
        """Stop the thread and take a last sample, so the chart reaches the run's end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            self.tick()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _halve(samples: list[RssSample]) -> list[RssSample]:
    """Merge neighbours pairwise, keeping the sample with the higher RSS."""
    kept = [max(a, b, key=lambda s: s.rss_mb) for a, b in zip(samples[::2], samples[1::2],
                                                              strict=False)]
    if len(samples) % 2:
        kept.append(samples[-1])
    return kept
