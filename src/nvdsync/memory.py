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

A monitor is meant to be used from one thread (the batching stage); it has no locks.
"""

from __future__ import annotations

import gc
import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MemoryMonitor", "MemorySample", "MemoryStats", "MemoryStatus"]

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
        #: Label of the ``check()`` that last ran a collection, for the caller's logs.
        self.last_gc_label: str | None = None
        self._reset()

    def _reset(self) -> None:
        self._baseline_mb: float | None = None
        self._peak_mb = 0.0
        self._samples = 0
        self._gcs_run = 0
        self._last_status = MemoryStatus.NORMAL  # status seen by the previous check()
        self._rss_at_last_gc_mb: float | None = None
        self.last_gc_label = None

    def start(self) -> MemorySample:
        """Reset the counters, take the baseline reading and return it as a sample."""
        self._reset()
        self._baseline_mb = self._read_rss() / _MB
        return self.sample()

    def sample(self) -> MemorySample:
        """Read memory now and update the peak. Starts the monitor if ``start()`` wasn't."""
        rss_mb = self._read_rss() / _MB
        if self._baseline_mb is None:
            self._baseline_mb = rss_mb
        if rss_mb > self._peak_mb:
            self._peak_mb = rss_mb
        self._samples += 1
        total, available = self._read_system()
        return MemorySample(
            rss_mb=rss_mb,
            peak_mb=self._peak_mb,
            growth_mb=rss_mb - self._baseline_mb,
            system_total_mb=total / _MB,
            system_available_mb=available / _MB,
            status=self.status_for(rss_mb),
        )

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
            self._collect()
            self._gcs_run += 1
            self._rss_at_last_gc_mb = sample.rss_mb
            self.last_gc_label = label
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
        """The final log line, e.g. ``memory final: peak 312.4MB, growth +67.1MB, 0 GCs run``."""
        stats = self.stats()
        return (
            f"memory final: peak {stats.peak_mb:.1f}MB, growth {_signed(stats.growth_mb)}MB, "
            f"{stats.gcs_run} GCs run"
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
