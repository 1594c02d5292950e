"""What a sync does about its memory: GC points, backpressure and the memory log lines.

:class:`~nvdsync.memory.MemoryMonitor` measures; this module decides and logs. The
pipeline calls three hooks:

* ``after_batch()`` when a mini-batch has been normalised, before it is written;
* ``after_db_batch()`` when its transaction committed: a cheap check (one /proc
  read) that runs the threshold-driven GC when RSS crosses a threshold and
  engages or releases backpressure;
* ``after_page(pages)`` when a page committed: the page mark for the chart, the
  periodic log line and, while critical, a further halving of the batch size.

**Periodic GC** (the seed design's strategic points) is optional: ``gc_every_batches``,
``gc_every_pages``, ``gc_every_db_batches``, each None for off. In nvdsync a mini-batch
is written in one transaction, so "batches" and "DB batches" count the same events at
two points (before and after the write); both are kept so the seed's three settings
map one to one. They are off by default: ``bench/bench_gc_policy.py`` measured them
(docs/benchmarks.md §5) and they cost throughput without lowering the peak.

**Backpressure** on crossing into critical: the mini-batch size is halved (floor 1)
and read-ahead downloads (pages beyond the one being committed) pause. If a whole page
later RSS is still critical, the size is halved again. When RSS is back *under
warning* (not merely under critical, so it does not flap at the line) the configured
size and read-ahead come back. Every change is logged at WARNING/INFO.

Hooks run on the database thread and the event loop; the shared state sits under a
lock. Standalone apart from the monitor and sampler, so an embedding application can
build one with its own thresholds (see :func:`nvdsync.sync.sync`).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from nvdsync.memory import MemoryStatus

if TYPE_CHECKING:
    from nvdsync.memory import MemoryMonitor, MemorySample, MemoryStats
    from nvdsync.memory_sampler import MemorySampler

__all__ = ["MemoryPolicy"]

log = logging.getLogger(__name__)


class MemoryPolicy:
    """GC points and backpressure for one run; read ``batch_size``/``prefetch_paused``."""

    def __init__(
        self,
        monitor: MemoryMonitor,
        *,
        batch_size: int,
        gc_every_batches: int | None = None,
        gc_every_pages: int | None = None,
        gc_every_db_batches: int | None = None,
        log_every_pages: int = 10,
        sampler: MemorySampler | None = None,
        logger: logging.Logger = log,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        for name, every in (("gc_every_batches", gc_every_batches),
                            ("gc_every_pages", gc_every_pages),
                            ("gc_every_db_batches", gc_every_db_batches)):
            if every is not None and every < 1:
                raise ValueError(f"{name} must be at least 1 or None (off), got {every!r}")
        self.monitor = monitor
        self.sampler = sampler
        self.configured_batch_size = batch_size
        self.every_batches = gc_every_batches
        self.every_pages = gc_every_pages
        self.every_db_batches = gc_every_db_batches
        self.log_every_pages = log_every_pages
        self._log = logger
        self._lock = threading.Lock()
        self._batches = self._db_batches = 0
        #: The mini-batch size to use now (halved under backpressure).
        self.batch_size = batch_size
        #: True while read-ahead downloads are paused.
        self.prefetch_paused = False
        #: How many times backpressure engaged in this run.
        self.backpressure_events = 0
        self._pages = 0  # pages committed so far
        self._halved_at = 0  # pages committed when the batch size was last halved

    # --- run boundaries ---------------------------------------------------------------
    def start(self) -> MemorySample:
        """Take the baseline, log the start and system lines, start the sampler."""
        sample = self.monitor.start()
        self._log.info(self.monitor.format("memory at start of sync", sample))
        self._log.info(self.monitor.format_system(sample))
        if self.sampler is not None:
            self.sampler.start()
        return sample

    def finish(self) -> MemoryStats:
        """Stop the sampler, log the statistics line and return the figures."""
        if self.sampler is not None:
            self.sampler.stop()
        self.monitor.sample_rss()
        self._log.info(self.monitor.format_stats())
        return self.monitor.stats()

    # --- hooks ------------------------------------------------------------------------
    def after_batch(self) -> None:
        """A mini-batch was normalised and is about to be written."""
        with self._lock:
            self._batches += 1
            due = _due(self._batches, self.every_batches)
        if due:
            self._periodic_gc(f"batch {self._batches}")

    def after_db_batch(self) -> None:
        """A batch's transaction committed: check thresholds, adjust backpressure."""
        with self._lock:
            self._db_batches += 1
            count = self._db_batches
        self._check(f"batch {count}")
        if _due(count, self.every_db_batches):
            self._periodic_gc(f"DB batch {count}")

    def after_page(self, pages: int) -> None:
        """Page number ``pages`` of this run was committed."""
        with self._lock:
            self._pages = pages
        if self.sampler is not None:
            self.sampler.mark_page(pages)
        if _due(pages, self.every_pages):
            self._periodic_gc(f"page {pages}")
        sample = self._check(f"page {pages}")
        if sample.status is MemoryStatus.CRITICAL:
            self._halve_again(pages, sample)
        if self.log_every_pages and pages % self.log_every_pages == 0:
            self._log.info(self.monitor.format(f"memory after page {pages}", sample))

    # --- decisions --------------------------------------------------------------------
    def _check(self, where: str) -> MemorySample:
        before = self.monitor.gcs_run
        sample = self.monitor.check(where)
        if self.monitor.gcs_run > before and self.monitor.last_gc is not None:
            action = ("running preventive GC" if sample.status is MemoryStatus.WARNING
                      else "running GC")
            self._log.warning("memory at %s after %s (%.1fMB), %s", sample.status.value,
                              where, sample.rss_mb, action)
            self._log.info("automatic GC: %s", self.monitor.last_gc.describe())
        self._adjust(sample, where)
        return sample

    def _adjust(self, sample: MemorySample, where: str) -> None:
        with self._lock:
            if sample.status is MemoryStatus.CRITICAL and not self.prefetch_paused:
                old = self.batch_size
                self.batch_size = max(1, old // 2)
                self.prefetch_paused = True
                self.backpressure_events += 1
                self._halved_at = self._pages
                self._log.warning(
                    "memory critical after %s (%.1fMB >= %.0fMB): backpressure on, batch "
                    "size %d -> %d, read-ahead paused", where, sample.rss_mb,
                    self.monitor.critical_mb, old, self.batch_size)
            elif sample.status is MemoryStatus.NORMAL and self.prefetch_paused:
                old = self.batch_size
                self.batch_size = self.configured_batch_size
                self.prefetch_paused = False
                self._log.info(
                    "memory back under warning after %s (%.1fMB < %.0fMB): backpressure "
                    "off, batch size %d -> %d, read-ahead resumed", where, sample.rss_mb,
                    self.monitor.warning_mb, old, self.batch_size)

    def _halve_again(self, pages: int, sample: MemorySample) -> None:
        with self._lock:
            # Only after a *whole* page ran at the current size: the page during
            # which backpressure engaged was mostly read at the old size.
            if not self.prefetch_paused or self.batch_size <= 1 or pages - self._halved_at < 2:
                return
            old = self.batch_size
            self.batch_size = max(1, old // 2)
            self._halved_at = pages - 1
        self._log.warning("memory still critical after page %d (%.1fMB): batch size "
                          "%d -> %d", pages, sample.rss_mb, old, self.batch_size)

    def _periodic_gc(self, where: str) -> None:
        result = self.monitor.collect(where)
        self._log.debug("periodic GC after %s: %s", where, result.describe())


def _due(count: int, every: int | None) -> bool:
    return every is not None and count % every == 0
