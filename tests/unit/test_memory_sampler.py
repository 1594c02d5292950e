"""MemorySampler: timed samples, page marks, the bound on long runs, the thread."""

from __future__ import annotations

import itertools
import threading

import pytest

from nvdsync.memory_sampler import MemorySampler, RssSample


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_ticks_and_page_marks_merge_in_time_order() -> None:
    clock, rss = Clock(), iter([10.0, 11.0, 12.0, 13.0])
    sampler = MemorySampler(lambda: next(rss), 1.0, clock=clock)
    sampler.tick()
    clock.now = 1.5
    sampler.mark_page(1)
    clock.now = 1.0  # a tick that landed at the same moment as another sample sorts first
    sampler.tick()
    clock.now = 2.0
    sampler.tick()
    assert sampler.samples() == [
        RssSample(0.0, 10.0), RssSample(1.0, 12.0), RssSample(1.5, 11.0, page=1),
        RssSample(2.0, 13.0),
    ]


def test_a_long_run_is_downsampled_keeping_the_peaks() -> None:
    clock = Clock()
    values = itertools.count()
    # RSS is flat at 100 except one spike at the 7th reading.
    sampler = MemorySampler(lambda: 500.0 if next(values) == 7 else 100.0, 1.0,
                            max_points=8, clock=clock)
    for second in range(40):
        clock.now = float(second)
        sampler.tick()
    kept = sampler.samples()
    assert len(kept) < 8
    assert max(s.rss_mb for s in kept) == 500.0  # the spike survived every halving
    assert kept[-1].t_seconds > 30  # the end of the run is still there
    assert sampler.interval > 1.0  # and the rate went down with the resolution


def test_page_marks_are_bounded_too() -> None:
    sampler = MemorySampler(lambda: 1.0, 1.0, max_pages=4, clock=Clock())
    for page in range(1, 20):
        sampler.mark_page(page)
    assert len(sampler.samples()) < 4


def test_thread_samples_until_stopped_and_takes_a_last_sample() -> None:
    reads = []
    lock = threading.Lock()

    def read() -> float:
        with lock:
            reads.append(1)
            return float(len(reads))

    with MemorySampler(read, 0.001) as sampler:
        while True:  # wait for the thread's own samples, however slow the machine
            with lock:
                if len(reads) >= 3:
                    break
            threading.Event().wait(0.001)
    after_stop = len(sampler.samples())
    assert after_stop >= 4  # start + >= 2 from the thread + the last one at stop()
    threading.Event().wait(0.01)
    assert len(sampler.samples()) == after_stop  # the thread has stopped


@pytest.mark.parametrize(("interval", "points"), [(0.0, 10), (-1.0, 10), (1.0, 1)])
def test_bad_arguments_are_refused(interval: float, points: int) -> None:
    with pytest.raises(ValueError, match=r"interval|max_points"):
        MemorySampler(lambda: 1.0, interval, max_points=points)
