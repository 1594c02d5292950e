"""Process memory monitor: samples RSS, classifies it against two thresholds.

The sync's memory is bounded by design (one HTTP chunk, one record being parsed, one
batch), so this monitor is a guard rail and a reporting aid, not a garbage-collection
scheduler. The seed design forced ``gc.collect()`` every few batches; that costs
throughput (a full collection walks every tracked object) and buys little, because a
batch-bounded pipeline leaves little cyclic garbage and CPython frees everything else by
reference counting. Here a collection runs only when RSS *crosses into* the warning or
critical level, or keeps growing while already critical, so a healthy run performs none.

The module is standalone (it imports nothing from nvdsync) and does not log: callers
format a line with ``format()``/``format_stats()`` and log it themselves. RSS and system
readers are injectable so tests can drive it with fixed numbers. Sizes are reported in
MB meaning MiB (1,048,576 bytes), as ``ps``/``top`` do.

Threads: the pipeline checks from its database thread and its event loop, and the
background sampler (:mod:`nvdsync.memory_sampler`) feeds ``sample_rss()`` from its own
thread, so the counters are updated under a lock. What to *do* about a status
(backpressure, periodic collections, log lines) is :mod:`nvdsync.memory_policy`'s job.
"""

from __future__ import annotations

import gc
import sys
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["GcResult", "MemoryMonitor", "MemorySample", "MemoryStats", "MemoryStatus"]

_MB = 1024 * 1024


class MemoryStatus(StrEnum):
    """How close RSS is to the configured limits."""

    NORMAL = "normal"
    WARNING = "warning"
    CRITICAL = "critical"


_LEVEL = {MemoryStatus.NORMAL: 0, MemoryStatus.WARNING: 1, MemoryStatus.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class MemorySample:
    """One reading. All sizes in MB; ``growth_mb`` is RSS minus the RSS at ``start()``."""

    rss_mb: float
    peak_mb: float
    growth_mb: float
    system_total_mb: float
    system_available_mb: float
    status: MemoryStatus


@dataclass(frozen=True, slots=True)
class GcResult:
    """What one collection did: unreachable objects found and RSS it gave back (MB).

    ``freed_mb`` is RSS before minus RSS after, so it can be 0 or even negative:
    CPython's allocator keeps freed arenas for reuse, which is why a collection often
    frees objects without shrinking RSS.
    """

    objects: int
    freed_mb: float
    rss_after_mb: float

    def describe(self) -> str:
        """``1247 objects, 23.4MB freed``."""
        return f"{self.objects} objects, {round(self.freed_mb, 1) + 0.0:.1f}MB freed"


@dataclass(frozen=True, slots=True)
class MemoryStats:
    """Summary for the end of a run: ``growth_mb`` is peak minus baseline."""

    peak_mb: float
    growth_mb: float
    gcs_run: int
    samples: int


class MemoryMonitor:
    """Samples process memory and runs a collection when a threshold is crossed.

    ``rss_reader`` returns the process RSS in bytes and ``system_reader`` returns
    ``(total, available)`` system memory in bytes; both default to psutil. ``collector``
    is called (with no arguments) to free memory; it defaults to ``gc.collect``.
    ``critical_regrowth_mb`` is how much RSS must grow, while still critical, before
    another collection is worth its cost.
    """

    def __init__(
        self,
        warning_mb: float = 1024.0,
        critical_mb: float = 2048.0,
        auto_gc: bool = True,
        rss_reader: Callable[[], float] | None = None,
        system_reader: Callable[[], tuple[float, float]] | None = None,
        collector: Callable[[], object] = gc.collect,
        *,
        critical_regrowth_mb: float = 64.0,
    ) -> None:
        # ``not x > 0`` rather than ``x <= 0`` so that NaN is rejected too.
        if not warning_mb > 0:
            raise ValueError(f"warning_mb must be greater than 0, got {warning_mb!r}")
        if not critical_mb > 0:
            raise ValueError(f"critical_mb must be greater than 0, got {critical_mb!r}")
        if not warning_mb < critical_mb:
            raise ValueError(
                f"warning_mb ({warning_mb!r}) must be less than critical_mb ({critical_mb!r})"
            )
        if not critical_regrowth_mb >= 0:
            raise ValueError(
                f"critical_regrowth_mb must be 0 or more, got {critical_regrowth_mb!r}"
            )
        self.warning_mb = float(warning_mb)
        self.critical_mb = float(critical_mb)
        self.auto_gc = auto_gc
        self.critical_regrowth_mb = float(critical_regrowth_mb)
        if rss_reader is None or system_reader is None:
            default_rss, default_system = _psutil_readers()
            rss_reader = rss_reader or default_rss
            system_reader = system_reader or default_system
        self._read_rss = rss_reader
        self._read_system = system_reader
        self._collect = collector
        self._lock = threading.Lock()
        #: Label of the ``check()`` that last ran a collection, for the caller's logs.
        self.last_gc_label: str | None = None
        #: What the last collection (threshold-driven or ``collect()``) did.
        self.last_gc: GcResult | None = None
        self._reset()

    def _reset(self) -> None:
        self._baseline_mb: float | None = None
        self._peak_mb = 0.0
        self._samples = 0
        self._gcs_run = 0
        self._last_status = MemoryStatus.NORMAL  # status seen by the previous check()
        self._rss_at_last_gc_mb: float | None = None
        self.last_gc_label = None
        self.last_gc = None

    @property
    def baseline_mb(self) -> float | None:
        """RSS at ``start()`` (or at the first sample), in MB."""
        return self._baseline_mb

    def start(self) -> MemorySample:
        """Reset the counters, take the baseline reading and return it as a sample."""
        self._reset()
        self._baseline_mb = self._read_rss() / _MB
        return self.sample()

    def sample_rss(self) -> float:
        """Read RSS only (MB) and update the peak: the background sampler's call, and
        the per-batch one, cheaper than ``sample()`` (no system-wide read)."""
        rss_mb = self._read_rss() / _MB
        with self._lock:
            if self._baseline_mb is None:
                self._baseline_mb = rss_mb
            if rss_mb > self._peak_mb:
                self._peak_mb = rss_mb
            self._samples += 1
        return rss_mb

    def sample(self) -> MemorySample:
        """Read memory now and update the peak. Starts the monitor if ``start()`` wasn't."""
        rss_mb = self.sample_rss()
        total, available = self._read_system()
        with self._lock:
            peak, baseline = self._peak_mb, self._baseline_mb
        assert baseline is not None
        return MemorySample(
            rss_mb=rss_mb,
            peak_mb=peak,
            growth_mb=rss_mb - baseline,
            system_total_mb=total / _MB,
            system_available_mb=available / _MB,
            status=self.status_for(rss_mb),
        )

    def collect(self, label: str) -> GcResult:
        """Run the collector now (a periodic GC point, or a crossing) and measure it."""
        before = self._read_rss() / _MB
        found = self._collect()
        after = self.sample_rss()
        result = GcResult(found if isinstance(found, int) else 0, before - after, after)
        with self._lock:
            self._gcs_run += 1
            self._rss_at_last_gc_mb = before
        self.last_gc_label = label
        self.last_gc = result
        return result

    def status_for(self, rss_mb: float) -> MemoryStatus:
        """Classify an RSS value (thresholds are inclusive)."""
        if rss_mb >= self.critical_mb:
            return MemoryStatus.CRITICAL
        if rss_mb >= self.warning_mb:
            return MemoryStatus.WARNING
        return MemoryStatus.NORMAL

    def check(self, label: str) -> MemorySample:
        """Sample, and run the collector if RSS has just crossed into a higher level.

        While critical, another collection runs only once RSS has grown by
        ``critical_regrowth_mb`` since the previous one: repeating a collection that
        freed nothing would only slow the run down. The returned sample is the one
        taken before any collection. ``label`` names the call site for
        ``last_gc_label``.
        """
        sample = self.sample()
        if self.auto_gc and self._should_collect(sample):
            self.collect(label)
        self._last_status = sample.status
        return sample

    def _should_collect(self, sample: MemorySample) -> bool:
        status = sample.status
        if status is MemoryStatus.NORMAL:
            return False
        if _LEVEL[status] > _LEVEL[self._last_status]:
            return True  # normal -> warning, normal -> critical or warning -> critical
        if status is MemoryStatus.CRITICAL and self._rss_at_last_gc_mb is not None:
            return sample.rss_mb - self._rss_at_last_gc_mb >= self.critical_regrowth_mb
        return False

    @property
    def gcs_run(self) -> int:
        """Collections run since ``start()``."""
        return self._gcs_run

    def stats(self) -> MemoryStats:
        """Peak, growth of the peak over the baseline, collections and samples so far."""
        baseline = self._baseline_mb
        if baseline is None:
            return MemoryStats(peak_mb=0.0, growth_mb=0.0, gcs_run=0, samples=0)
        return MemoryStats(
            peak_mb=self._peak_mb,
            growth_mb=self._peak_mb - baseline,
            gcs_run=self._gcs_run,
            samples=self._samples,
        )

    def format(self, label: str, sample: MemorySample) -> str:
        """Render ``sample`` as one log line: the label, current RSS, peak, signed growth
        and status. ``format("memory at start of sync", s)`` gives (on one line)
        ``memory at start of sync: 245.3MB current, 245.3MB peak, +0.0MB since start,
        status: normal``.
        """
        return (
            f"{label}: {sample.rss_mb:.1f}MB current, {sample.peak_mb:.1f}MB peak, "
            f"{_signed(sample.growth_mb)}MB since start, status: {sample.status.value}"
        )

    def format_stats(self) -> str:
        """The final log line: ``memory statistics: peak 312.4MB, growth +67.1MB, GCs run: 0``."""
        stats = self.stats()
        return (
            f"memory statistics: peak {stats.peak_mb:.1f}MB, "
            f"growth {_signed(stats.growth_mb)}MB, GCs run: {stats.gcs_run}"
        )

    @staticmethod
    def format_system(sample: MemorySample) -> str:
        """``system memory: 12.4GB available of 16.0GB``."""
        return (
            f"system memory: {sample.system_available_mb / 1024:.1f}GB available of "
            f"{sample.system_total_mb / 1024:.1f}GB"
        )

    @staticmethod
    def os_peak_mb() -> float | None:
        """The OS's high-water mark of this process's RSS, or None where unavailable.

        Kept apart from ``peak_mb`` on purpose: ``ru_maxrss`` covers the whole life of
        the process (imports, earlier runs in the same process, test suites) and never
        goes down, so mixing it in would make ``peak_mb - baseline`` report growth that
        this sync did not cause. It is still useful next to the sampled peak, because it
        also catches spikes that happened between two samples.
        """
        try:
            import resource
        except ImportError:  # Windows has no resource module
            return None
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if maxrss <= 0:
            return None
        # Linux and the BSDs report KiB; macOS reports bytes.
        scale = 1 if sys.platform == "darwin" else 1024
        return maxrss * scale / _MB


def _signed(value: float) -> str:
    # Round first and add 0.0 so that a tiny negative growth prints as "+0.0", not "-0.0".
    return f"{round(value, 1) + 0.0:+.1f}"


def _psutil_readers() -> tuple[Callable[[], float], Callable[[], tuple[float, float]]]:
    """Readers backed by psutil; imported lazily so tests with fakes never need it."""
    # psutil ships no type information; "unused-ignore" keeps this line quiet if
    # types-psutil gets installed later.
    import psutil  # type: ignore[import-untyped,unused-ignore]

    process = psutil.Process()

    def read_rss() -> float:
        return float(process.memory_info().rss)

    def read_system() -> tuple[float, float]:
        memory = psutil.virtual_memory()
        return float(memory.total), float(memory.available)

    return read_rss, read_system
