"""The rolling-window limiter, driven by a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from nvdsync.ratelimit import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def stamps(limiter: RateLimiter, t: FakeTime, count: int, latency: float = 0.0) -> list[float]:
    async def run() -> list[float]:
        sent = []
        for _ in range(count):
            slot = await limiter.acquire()
            sent.append(t.now)
            t.now += latency  # the response arrives later
            slot.release()
        return sent

    return asyncio.run(run())


def test_at_most_n_requests_in_any_window():
    t = FakeTime()
    limiter = RateLimiter(5, 30.0, clock=t.clock, sleep=t.sleep)
    sent = stamps(limiter, t, 12)
    assert sent[:5] == [0.0] * 5
    for i in range(5, 12):
        assert sent[i] - sent[i - 5] >= 30.0


def test_window_counts_from_the_response_not_the_send():
    """A slow request is stamped when its response arrives, so its successor waits."""
    t = FakeTime()
    limiter = RateLimiter(2, 10.0, clock=t.clock, sleep=t.sleep)
    sent = stamps(limiter, t, 4, latency=3.0)
    # Request 0 was answered at 3.0; request 2 may only start 10 s after that.
    assert sent[2] >= 3.0 + 10.0
    assert sent[3] >= 6.0 + 10.0


def test_penalize_holds_every_request_back():
    t = FakeTime()
    limiter = RateLimiter(50, 30.0, clock=t.clock, sleep=t.sleep)
    limiter.penalize()
    sent = stamps(limiter, t, 1)
    assert sent[0] >= 30.0
    assert limiter.waited >= 30.0


def test_in_flight_slots_count_until_released():
    async def run() -> bool:
        limiter = RateLimiter(1, 1.0)
        slot = await limiter.acquire()
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0.01)
        blocked = not waiter.done()
        slot.release()
        (await waiter).release()
        return blocked

    assert asyncio.run(run())


def test_rejects_nonsense():
    with pytest.raises(ValueError, match="requests >= 1"):
        RateLimiter(0, 30.0)
