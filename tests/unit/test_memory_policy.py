"""MemoryPolicy with a fake RSS reader: GC on warning, backpressure and its release,
periodic GC points and the log lines."""

from __future__ import annotations

import logging

import pytest

from nvdsync.memory import MemoryMonitor
from nvdsync.memory_policy import MemoryPolicy
from nvdsync.memory_sampler import MemorySampler

MB = 1024 * 1024


class Fake:
    def __init__(self) -> None:
        self.rss_mb = 100.0
        self.collections = 0

    def rss(self) -> float:
        return self.rss_mb * MB

    def system(self) -> tuple[float, float]:
        return 16384.0 * MB, 12697.6 * MB

    def collect(self) -> int:
        self.collections += 1
        return 7


def policy(fake: Fake, **kwargs: object) -> MemoryPolicy:
    monitor = MemoryMonitor(500.0, 1000.0, rss_reader=fake.rss, system_reader=fake.system,
                            collector=fake.collect)
    values: dict[str, object] = {"batch_size": 50, "log_every_pages": 0}
    values.update(kwargs)
    result = MemoryPolicy(monitor, **values)  # type: ignore[arg-type]
    result.start()
    return result


@pytest.fixture
def fake() -> Fake:
    return Fake()


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "nvdsync.memory_policy"]


def test_start_logs_the_start_and_system_lines(
    fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    fake.rss_mb = 245.3
    with caplog.at_level(logging.INFO, logger="nvdsync"):
        policy(fake)
    assert messages(caplog) == [
        "memory at start of sync: 245.3MB current, 245.3MB peak, +0.0MB since start, "
        "status: normal",
        "system memory: 12.4GB available of 16.0GB",
    ]


def test_crossing_warning_runs_a_gc_and_logs_it(
    fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    p = policy(fake)
    caplog.clear()  # only this block's lines (another test may have left INFO on)
    fake.rss_mb = 600.0
    with caplog.at_level(logging.INFO, logger="nvdsync"):
        p.after_db_batch()
        p.after_db_batch()  # still warning: no second collection
    assert fake.collections == 1
    assert messages(caplog) == [
        "memory at warning after batch 1 (600.0MB), running preventive GC",
        "automatic GC: 7 objects, 0.0MB freed",
    ]
    assert (p.batch_size, p.prefetch_paused) == (50, False)  # warning alone: no backpressure


def test_critical_halves_the_batch_and_pauses_read_ahead_until_under_warning(
    fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    p = policy(fake)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nvdsync"):
        fake.rss_mb = 1200.0
        p.after_db_batch()
        assert (p.batch_size, p.prefetch_paused, p.backpressure_events) == (25, True, 1)
        p.after_db_batch()  # still critical, same page: no further halving
        assert p.batch_size == 25
        fake.rss_mb = 700.0  # under critical but at warning: backpressure stays on
        p.after_db_batch()
        assert (p.batch_size, p.prefetch_paused) == (25, True)
        fake.rss_mb = 400.0
        p.after_db_batch()
    assert (p.batch_size, p.prefetch_paused) == (50, False)
    logged = messages(caplog)
    assert ("memory critical after batch 1 (1200.0MB >= 1000MB): backpressure on, batch "
            "size 50 -> 25, read-ahead paused") in logged
    assert ("memory back under warning after batch 4 (400.0MB < 500MB): backpressure off, "
            "batch size 25 -> 50, read-ahead resumed") in logged


def test_still_critical_after_a_whole_page_halves_again_down_to_one(fake: Fake) -> None:
    p = policy(fake, batch_size=6)
    p.after_page(1)
    fake.rss_mb = 1500.0
    p.after_db_batch()  # during page 2
    assert p.batch_size == 3
    p.after_page(2)  # page 2 was mostly read at 6: not yet
    assert p.batch_size == 3
    p.after_page(3)  # a whole page at 3, still critical
    assert p.batch_size == 1
    p.after_page(4)
    p.after_page(5)
    assert p.batch_size == 1  # the floor
    fake.rss_mb = 100.0
    p.after_page(6)
    assert (p.batch_size, p.prefetch_paused) == (6, False)


def test_backpressure_engages_again_after_a_release(fake: Fake) -> None:
    p = policy(fake)
    for rss in (1100.0, 100.0, 1100.0):
        fake.rss_mb = rss
        p.after_db_batch()
    assert (p.backpressure_events, p.batch_size, p.prefetch_paused) == (2, 25, True)


@pytest.mark.parametrize(
    ("kwargs", "hook", "calls", "expected"),
    [
        ({"gc_every_batches": 2}, "after_batch", 7, 3),
        ({"gc_every_db_batches": 3}, "after_db_batch", 7, 2),
        ({}, "after_batch", 7, 0),
    ],
)
def test_periodic_gc_points(fake: Fake, kwargs: dict[str, int], hook: str, calls: int,
                            expected: int) -> None:
    p = policy(fake, **kwargs)
    for _ in range(calls):
        getattr(p, hook)()
    assert fake.collections == expected
    assert p.monitor.gcs_run == expected


def test_gc_every_pages(fake: Fake) -> None:
    p = policy(fake, gc_every_pages=5)
    for page in range(1, 12):
        p.after_page(page)
    assert fake.collections == 2  # after pages 5 and 10


def test_memory_line_every_n_pages_and_statistics_at_the_end(
    fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    p = policy(fake, log_every_pages=2)
    caplog.clear()  # the start lines (if an earlier test left INFO on) are not this test's
    with caplog.at_level(logging.INFO, logger="nvdsync"):
        for page in range(1, 6):
            fake.rss_mb = 100.0 + page
            p.after_page(page)
        stats = p.finish()
    lines = messages(caplog)
    assert [line.split(":")[0] for line in lines] == [
        "memory after page 2", "memory after page 4", "memory statistics"]
    assert lines[-1] == "memory statistics: peak 105.0MB, growth +5.0MB, GCs run: 0"
    assert (stats.peak_mb, stats.growth_mb) == (105.0, 5.0)


def test_pages_are_marked_on_the_sampler(fake: Fake) -> None:
    times = iter(float(t) for t in range(100))
    sampler = MemorySampler(lambda: fake.rss_mb, 3600.0, clock=lambda: next(times))
    p = policy(fake, sampler=sampler)
    fake.rss_mb = 150.0
    p.after_page(1)
    p.finish()
    marks = [s for s in sampler.samples() if s.page is not None]
    assert [(s.page, s.rss_mb) for s in marks] == [(1, 150.0)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"batch_size": 5, "gc_every_pages": 0}, "gc_every_pages must be at least 1"),
        ({"batch_size": 5, "gc_every_batches": -2}, "gc_every_batches must be at least 1"),
    ],
)
def test_bad_settings_are_refused(fake: Fake, kwargs: dict[str, int], message: str) -> None:
    monitor = MemoryMonitor(500.0, 1000.0, rss_reader=fake.rss, system_reader=fake.system)
    with pytest.raises(ValueError, match=message):
        MemoryPolicy(monitor, **kwargs)  # type: ignore[arg-type]
