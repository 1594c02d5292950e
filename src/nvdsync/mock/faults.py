"""Request bookkeeping for the mock: statistics, the rate limiter and fault decisions.

Fault decisions are deterministic given the seed and the request's arrival number:
request *n* draws from its own RNG seeded with ``(seed, n)``. Concurrent clients can
interleave arrivals, but a sequential client gets the same faults on every run.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

    from nvdsync.mock.config import MockConfig

__all__ = ["Decision", "FaultPlan", "MockStats", "RateLimiter", "RequestLogEntry"]


class RequestLogEntry(NamedTuple):
    """One answered request: method, path with query string, status sent."""

    method: str
    target: str
    status: int


class MockStats:
    """Thread-safe counters and a request log (the most recent ``log_limit`` entries)."""

    def __init__(self, log_limit: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._log: deque[RequestLogEntry] = deque(maxlen=log_limit)
        self._by_status: Counter[int] = Counter()
        self._cuts = 0

    def record(
        self, method: str, target: str, status: int, *, cut: bool = False
    ) -> None:
        """Count one answered request."""
        with self._lock:
            self._log.append(RequestLogEntry(method, target, status))
            self._by_status[status] += 1
            self._cuts += cut

    @property
    def requests(self) -> int:
        """Number of requests answered (all paths, all statuses)."""
        with self._lock:
            return sum(self._by_status.values())

    @property
    def by_status(self) -> dict[int, int]:
        """Requests answered per status code (a copy)."""
        with self._lock:
            return dict(self._by_status)

    @property
    def forbidden(self) -> int:
        """Number of 403s sent (rate limit and ``burst_403``)."""
        with self._lock:
            return self._by_status[403]

    @property
    def cuts(self) -> int:
        """Number of 200 bodies cut mid-stream."""
        with self._lock:
            return self._cuts

    @property
    def log(self) -> list[RequestLogEntry]:
        """The request log, oldest first (a copy)."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Forget every count and log entry."""
        with self._lock:
            self._log.clear()
            self._by_status.clear()
            self._cuts = 0


class RateLimiter:
    """Rolling-window limiter per bucket (an API key, or the anonymous bucket).

    Only admitted requests are remembered, so requests refused with 403 do not extend
    the lock-out: a client that backs off for one window always gets back in. (NVD's
    firewall may be harsher; this is the documented behaviour of the mock.)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}
        self._clock = clock

    def admit(self, bucket: str, limit: tuple[int, float] | None) -> bool:
        """Whether one more request fits in ``bucket``'s window; records it if so."""
        if limit is None:
            return True
        count, window = limit
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(bucket, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= count:
                return False
            hits.append(now)
            return True


@dataclass(frozen=True, slots=True)
class Decision:
    """What the fault injector decided for one request."""

    number: int
    forbidden: bool
    error_status: int | None
    cut: bool
    rng: random.Random


class FaultPlan:
    """Numbers requests in arrival order and draws each one's faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def next(self, config: MockConfig) -> Decision:
        """Number the next request and decide its faults from ``config``."""
        with self._lock:
            self._count += 1
            number = self._count
        rng = random.Random(f"nvdsync-mock:{config.seed}:{number}")
        # Always draw both numbers so that changing one rate never shifts the other.
        error_draw, cut_draw = rng.random(), rng.random()
        burst = config.burst_403
        forbidden = burst is not None and burst[0] <= number < burst[0] + burst[1]
        error_status = rng.choice(config.error_statuses) if error_draw < config.error_rate else None
        return Decision(
            number=number,
            forbidden=forbidden,
            error_status=error_status,
            cut=cut_draw < config.cut_rate,
            rng=rng,
        )
