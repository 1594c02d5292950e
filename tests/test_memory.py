"""Tests for ``nvdsync.memory`` driven by fake RSS/system readers (no real measurements)."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

import nvdsync.memory as memory_module
from nvdsync.memory import MemoryMonitor, MemorySample, MemoryStats, MemoryStatus

MB = 1024 * 1024


class FakeMemory:
    """Readers and a collector whose numbers the test sets directly (in MB)."""

    def __init__(self, rss_mb: float = 100.0) -> None:
        self.rss_mb = rss_mb
        self.total_mb = 16384.0
        self.available_mb = 8192.0
        self.collections = 0

    def rss(self) -> float:
        return self.rss_mb * MB

    def system(self) -> tuple[float, float]:
        return self.total_mb * MB, self.available_mb * MB

    def collect(self) -> int:
        self.collections += 1
        return 0


@pytest.fixture
def fake() -> FakeMemory:
    return FakeMemory()


def make(
    fake: FakeMemory,
    warning_mb: float = 500.0,
    critical_mb: float = 1000.0,
    *,
    auto_gc: bool = True,
    critical_regrowth_mb: float = 64.0,
) -> MemoryMonitor:
    return MemoryMonitor(
        warning_mb,
        critical_mb,
        auto_gc,
        rss_reader=fake.rss,
        system_reader=fake.system,
        collector=fake.collect,
        critical_regrowth_mb=critical_regrowth_mb,
    )


# --- Construction -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("warning", "critical", "message"),
    [
        (0.0, 100.0, "warning_mb must be greater than 0"),
        (-5.0, 100.0, "warning_mb must be greater than 0"),
        (math.nan, 100.0, "warning_mb must be greater than 0"),
        (10.0, 0.0, "critical_mb must be greater than 0"),
        (100.0, 100.0, "must be less than critical_mb"),
        (200.0, 100.0, "must be less than critical_mb"),
    ],
)
def test_constructor_rejects_bad_thresholds(
    fake: FakeMemory, warning: float, critical: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make(fake, warning_mb=warning, critical_mb=critical)


def test_constructor_rejects_negative_regrowth(fake: FakeMemory) -> None:
    with pytest.raises(ValueError, match="critical_regrowth_mb"):
        make(fake, critical_regrowth_mb=-1.0)


def test_defaults() -> None:
    fake = FakeMemory()
    monitor = MemoryMonitor(rss_reader=fake.rss, system_reader=fake.system)
    assert (monitor.warning_mb, monitor.critical_mb, monitor.auto_gc) == (1024.0, 2048.0, True)


def test_default_readers_use_psutil() -> None:
    # Real readers: only check that they return plausible values, never their size.
    monitor = MemoryMonitor()
    sample = monitor.start()
    assert sample.rss_mb > 0
    assert sample.system_total_mb >= sample.system_available_mb > 0


# --- Sampling -----------------------------------------------------------------------


def test_start_sets_baseline_and_returns_a_sample(fake: FakeMemory) -> None:
    fake.rss_mb = 245.3
    monitor = make(fake)
    sample = monitor.start()
    assert sample.rss_mb == sample.peak_mb == pytest.approx(245.3)
    assert sample.growth_mb == 0.0
    assert (sample.system_total_mb, sample.system_available_mb) == (16384.0, 8192.0)
    assert sample.status is MemoryStatus.NORMAL
    assert monitor.stats() == MemoryStats(sample.rss_mb, 0.0, gcs_run=0, samples=1)


def test_peak_and_growth(fake: FakeMemory) -> None:
    monitor = make(fake)
    monitor.start()  # baseline 100
    fake.rss_mb = 180.0
    s1 = monitor.sample()
    fake.rss_mb = 150.0
    s2 = monitor.sample()
    assert (s1.peak_mb, s1.growth_mb) == (180.0, 80.0)
    assert (s2.rss_mb, s2.peak_mb, s2.growth_mb) == (150.0, 180.0, 50.0)
    fake.rss_mb = 90.0
    assert monitor.sample().growth_mb == -10.0
    assert monitor.stats() == MemoryStats(peak_mb=180.0, growth_mb=80.0, gcs_run=0, samples=4)


def test_sample_without_start_takes_baseline(fake: FakeMemory) -> None:
    monitor = make(fake)
    assert monitor.stats() == MemoryStats(0.0, 0.0, 0, 0)
    assert monitor.sample().growth_mb == 0.0
    fake.rss_mb = 130.0
    assert monitor.sample().growth_mb == 30.0


def test_start_resets(fake: FakeMemory) -> None:
    monitor = make(fake)
    monitor.start()
    fake.rss_mb = 700.0
    monitor.check("batch")
    assert monitor.gcs_run == 1
    monitor.start()
    assert monitor.stats() == MemoryStats(peak_mb=700.0, growth_mb=0.0, gcs_run=0, samples=1)
    assert monitor.last_gc_label is None


@pytest.mark.parametrize(
    ("rss", "status"),
    [
        (0.0, MemoryStatus.NORMAL),
        (499.9, MemoryStatus.NORMAL),
        (500.0, MemoryStatus.WARNING),
        (999.9, MemoryStatus.WARNING),
        (1000.0, MemoryStatus.CRITICAL),
        (5000.0, MemoryStatus.CRITICAL),
    ],
)
def test_status_thresholds(fake: FakeMemory, rss: float, status: MemoryStatus) -> None:
    monitor = make(fake)
    monitor.start()
    fake.rss_mb = rss
    assert monitor.sample().status is status
    assert monitor.status_for(rss) is status


# --- Collections --------------------------------------------------------------------


def test_no_collection_while_normal(fake: FakeMemory) -> None:
    monitor = make(fake)
    monitor.start()
    for rss in (100.0, 300.0, 499.0, 200.0):
        fake.rss_mb = rss
        monitor.check("batch")
    assert (fake.collections, monitor.gcs_run) == (0, 0)


def test_collects_once_on_crossing_into_warning(fake: FakeMemory) -> None:
    monitor = make(fake)
    monitor.start()
    fake.rss_mb = 600.0
    assert monitor.check("batch 1").status is MemoryStatus.WARNING
    assert fake.collections == 1
    assert monitor.last_gc_label == "batch 1"
    for rss in (610.0, 700.0, 990.0):  # still warning: no periodic collections
        fake.rss_mb = rss
        monitor.check("batch n")
    assert fake.collections == 1
    assert monitor.last_gc_label == "batch 1"


def test_collects_again_on_crossing_into_critical(fake: FakeMemory) -> None:
    monitor = make(fake)
    monitor.start()
    fake.rss_mb = 600.0
    monitor.check("a")
    fake.rss_mb = 1000.0
    assert monitor.check("b").status is MemoryStatus.CRITICAL
    assert fake.collections == 2
    fake.rss_mb = 1010.0  # still critical, grew less than the regrowth step
    monitor.check("c")
    assert fake.collections == 2


def test_jump_from_normal_to_critical_collects_once(fake: FakeMemory) -> None:
    monitor = make(fake)
    monitor.start()
    fake.rss_mb = 1500.0
    monitor.check("a")
    monitor.check("b")
    assert fake.collections == 1


def test_critical_regrowth_triggers_another_collection(fake: FakeMemory) -> None:
    monitor = make(fake, critical_regrowth_mb=50.0)
    monitor.start()
    fake.rss_mb = 1100.0
    monitor.check("cross")
    fake.rss_mb = 1149.0
    monitor.check("small growth")
    assert fake.collections == 1
    fake.rss_mb = 1150.0
    monitor.check("regrown")
    assert fake.collections == 2
    assert monitor.last_gc_label == "regrown"
    monitor.check("flat")
    assert fake.collections == 2


def test_recrossing_after_dropping_back_collects_again(fake: FakeMemory) -> None:
    monitor = make(fake)
    monitor.start()
    for rss in (600.0, 400.0, 600.0):
        fake.rss_mb = rss
        monitor.check("batch")
    assert fake.collections == 2
    fake.rss_mb = 1200.0
    monitor.check("batch")
    fake.rss_mb = 700.0  # critical -> warning is a drop, not a crossing
    monitor.check("batch")
    assert fake.collections == 3
    assert monitor.stats().gcs_run == 3


def test_sample_alone_never_collects_nor_hides_a_crossing(fake: FakeMemory) -> None:
    monitor = make(fake)
    monitor.start()
    fake.rss_mb = 800.0
    monitor.sample()
    assert fake.collections == 0
    monitor.check("batch")  # the crossing is judged against the previous check()
    assert fake.collections == 1


def test_auto_gc_off_never_collects(fake: FakeMemory) -> None:
    monitor = make(fake, auto_gc=False)
    monitor.start()
    fake.rss_mb = 3000.0
    assert monitor.check("batch").status is MemoryStatus.CRITICAL
    assert (fake.collections, monitor.gcs_run) == (0, 0)


# --- Formatting ---------------------------------------------------------------------


def test_format_start_line(fake: FakeMemory) -> None:
    fake.rss_mb = 245.3
    monitor = make(fake)
    sample = monitor.start()
    assert monitor.format("memory at start of sync", sample) == (
        "memory at start of sync: 245.3MB current, 245.3MB peak, +0.0MB since start, status: normal"
    )


def test_format_given_numbers(fake: FakeMemory) -> None:
    monitor = make(fake)
    sample = MemorySample(612.04, 700.0, 366.76, 16384.0, 8000.0, MemoryStatus.WARNING)
    assert monitor.format("memory after batch 12", sample) == (
        "memory after batch 12: 612.0MB current, 700.0MB peak, +366.8MB since start, "
        "status: warning"
    )
    shrunk = MemorySample(90.0, 120.0, -10.0, 16384.0, 8000.0, MemoryStatus.NORMAL)
    assert "-10.0MB since start" in monitor.format("x", shrunk)
    tiny = MemorySample(99.98, 100.0, -0.02, 16384.0, 8000.0, MemoryStatus.NORMAL)
    assert "+0.0MB since start" in monitor.format("x", tiny)  # never "-0.0"


def test_format_stats(fake: FakeMemory) -> None:
    fake.rss_mb = 245.3
    monitor = make(fake)
    monitor.start()
    fake.rss_mb = 312.4
    monitor.check("batch")
    fake.rss_mb = 280.0
    monitor.check("batch")
    assert monitor.format_stats() == "memory statistics: peak 312.4MB, growth +67.1MB, GCs run: 0"
    fake.rss_mb = 512.0
    monitor.check("batch")
    assert monitor.format_stats() == "memory statistics: peak 512.0MB, growth +266.7MB, GCs run: 1"


# --- OS peak and independence --------------------------------------------------------


def test_os_peak_is_separate_from_sampled_peak(fake: FakeMemory) -> None:
    monitor = make(fake)
    monitor.start()
    os_peak = monitor.os_peak_mb()
    if os_peak is not None:  # None only where the resource module is missing
        assert os_peak > 0
    # The sampled peak comes from the fake reader only.
    assert monitor.stats().peak_mb == 100.0


def test_module_imports_nothing_from_nvdsync() -> None:
    source = Path(memory_module.__file__).read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    assert not {name for name in imported if name.startswith(("nvdsync", "."))}


# --- collect(), cheap samples, system line ----------------------------------------------


class ShrinkingMemory(FakeMemory):
    """A collector that finds ``found`` objects and gives back ``freed_mb`` of RSS."""

    def __init__(self, rss_mb: float, found: int, freed_mb: float) -> None:
        super().__init__(rss_mb)
        self.found, self.freed_mb = found, freed_mb

    def collect(self) -> int:
        self.collections += 1
        self.rss_mb -= self.freed_mb
        return self.found


def test_collect_measures_objects_and_freed_rss() -> None:
    fake = ShrinkingMemory(300.0, found=1247, freed_mb=23.4)
    monitor = make(fake)
    monitor.start()
    result = monitor.collect("page 5")
    assert (result.objects, result.rss_after_mb) == (1247, pytest.approx(276.6))
    assert result.freed_mb == pytest.approx(23.4)
    assert result.describe() == "1247 objects, 23.4MB freed"
    assert (monitor.gcs_run, monitor.last_gc_label, monitor.last_gc) == (1, "page 5", result)


def test_threshold_gc_records_what_it_freed() -> None:
    fake = ShrinkingMemory(100.0, found=12, freed_mb=50.0)
    monitor = make(fake)
    monitor.start()
    fake.rss_mb = 620.0
    sample = monitor.check("batch 3")
    assert sample.rss_mb == 620.0  # the sample is the one taken before the collection
    assert monitor.last_gc is not None
    assert monitor.last_gc.describe() == "12 objects, 50.0MB freed"


def test_collector_that_returns_nothing_counts_zero_objects(fake: FakeMemory) -> None:
    monitor = MemoryMonitor(500.0, 1000.0, rss_reader=fake.rss, system_reader=fake.system,
                            collector=lambda: None)
    monitor.start()
    assert monitor.collect("x").objects == 0
    assert monitor.collect("x").describe() == "0 objects, 0.0MB freed"


def test_sample_rss_updates_the_peak_without_a_system_read(fake: FakeMemory) -> None:
    calls = []
    monitor = MemoryMonitor(500.0, 1000.0, rss_reader=fake.rss,
                            system_reader=lambda: calls.append(1) or (1.0, 1.0))
    monitor.start()
    calls.clear()
    fake.rss_mb = 333.0
    assert monitor.sample_rss() == 333.0
    assert calls == []
    assert monitor.stats().peak_mb == 333.0
    assert monitor.baseline_mb == 100.0


def test_format_system_line(fake: FakeMemory) -> None:
    fake.total_mb, fake.available_mb = 16384.0, 12697.6
    monitor = make(fake)
    assert monitor.format_system(monitor.start()) == (
        "system memory: 12.4GB available of 16.0GB"
    )
