"""A proactive rolling-window rate limiter shared by every request of a sync.

NVD allows N requests in any rolling window of W seconds (5/30 s without a key,
50/30 s with one) and answers 403 past it. Waiting *before* a request is cheaper than
being refused: a 403 costs a whole window of back-off.

Why hand-written: the limit must hold at the *server*, which counts a request when it
arrives. We cannot see arrival times, but a request has certainly arrived by the time
its response headers are back, so a slot is stamped with that later time
(:meth:`Slot.release`). Generic token-bucket libraries stamp the send time, which lets
a slow request's successor land inside the same window. Imports nothing from nvdsync.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["RateLimiter", "Slot"]

# Added to every computed wait: the server's clock and ours tick separately.
_MARGIN = 0.02


class Slot:
    """One request's place in the window; ``release()`` when its response arrived."""

    __slots__ = ("_limiter", "stamp")

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter
        self.stamp = math.inf  # in flight: occupies the window until released

    def release(self) -> None:
        if self.stamp == math.inf:
            self.stamp = self._limiter.clock()
            self._limiter._wake()


class RateLimiter:
    """At most ``requests`` slots stamped within any ``window`` seconds."""

    def __init__(
        self,
        requests: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if requests < 1 or window <= 0:
            raise ValueError("rate limit needs requests >= 1 and window > 0")
        self.requests = requests
        self.window = window
        self.clock = clock
        self._sleep = sleep
        self._slots: list[Slot] = []
        self._blocked_until = 0.0
        self._changed: asyncio.Event | None = None
        self.waited = 0.0  # total seconds spent waiting, for reports

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def acquire(self) -> Slot:
        """Wait until a request may be sent and reserve its slot."""
        while True:
            now = self.clock()
            horizon = now - self.window
            self._slots = [s for s in self._slots if s.stamp > horizon]
            blocked = self._blocked_until - now
            if blocked <= 0 and len(self._slots) < self.requests:
                slot = Slot(self)
                self._slots.append(slot)
                return slot
            wait: float | None = blocked
            if blocked <= 0:
                oldest = min(s.stamp for s in self._slots)
                wait = oldest + self.window - now + _MARGIN if oldest != math.inf else None
            await self._wait(wait)

    async def _wait(self, seconds: float | None) -> None:
        start = self.clock()
        if seconds is None:  # every slot is in flight: wait for one to be released
            self._changed = self._changed or asyncio.Event()
            self._changed.clear()
            await self._changed.wait()
        else:
            await self._sleep(max(seconds, 0.0))
        self.waited += self.clock() - start

    def penalize(self, seconds: float | None = None) -> None:
        """The server refused us (403/429): send nothing for ``seconds`` (default a window)."""
        until = self.clock() + (self.window if seconds is None else seconds)
        self._blocked_until = max(self._blocked_until, until)
