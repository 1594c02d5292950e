"""Retries with exponential back-off and jitter, bounded per request and per run.

Every request of a run shares one :class:`RetryPolicy`, so the run's total time spent
waiting on retries is capped (``retry_budget``) however many requests fail; a single
request gives up after ``max_retries`` retries. Rate-limit refusals wait out the
limiter's window (NVD sends ``Retry-After: 0``, which would only draw another 403).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from typing import TYPE_CHECKING, TypeVar

from nvdsync.errors import ParseError, RateLimited, RetryBudgetExceeded, SourceError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nvdsync.ratelimit import RateLimiter

__all__ = ["RetryPolicy"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class RetryPolicy:
    def __init__(
        self,
        *,
        max_retries: int = 8,
        budget: float = 1800.0,
        base: float = 2.0,
        cap: float = 120.0,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.max_retries = max_retries
        self.budget = budget
        self.base = base
        self.cap = cap
        self.limiter = limiter
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.retries = 0
        self.waited = 0.0
        self.reasons: Counter[str] = Counter()

    def _delay(self, attempt: int, exc: Exception) -> float:
        # "Full jitter" on an exponential ceiling: spreads retries of parallel workers.
        ceiling = min(self.cap, self.base * (2**attempt))
        backoff = self._rng.uniform(ceiling / 2, ceiling)
        if isinstance(exc, RateLimited):
            if self.limiter is None:  # no known window (--rate-limit off): back off
                return max(exc.retry_after or 0.0, backoff)
            # NVD sends Retry-After: 0, which would only draw another 403: wait out
            # the whole window, and hold every other request back for as long.
            wait = max(exc.retry_after or 0.0, self.limiter.window)
            self.limiter.penalize(wait)
            return wait * self._rng.uniform(1.0, 1.1)
        return backoff

    async def run(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Await ``call()`` until it succeeds or the bounds are hit.

        Retries SourceError subclasses marked retryable and ParseError (a cut or
        garbled body); anything else propagates at once.
        """
        attempt = 0
        while True:
            try:
                return await call()
            except (SourceError, ParseError) as exc:
                if isinstance(exc, SourceError) and not exc.retryable:
                    raise
                if attempt >= self.max_retries:
                    raise RetryBudgetExceeded(
                        f"{what}: gave up after {attempt} retries; last error: {exc}"
                    ) from exc
                delay = self._delay(attempt, exc)
                if self.waited + delay > self.budget:
                    raise RetryBudgetExceeded(
                        f"{what}: the run's retry budget of {self.budget:g}s is spent "
                        f"({self.waited:.1f}s waited); last error: {exc}"
                    ) from exc
                attempt += 1
                self.retries += 1
                reason = type(exc).__name__
                self.reasons[reason] += 1
                log.warning(
                    "retry %d/%d of %s in %.1fs: %s: %s",
                    attempt, self.max_retries, what, delay, reason, exc,
                )
                self.waited += delay
                await self._sleep(delay)
