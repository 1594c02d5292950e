"""Configuration of the mock NVD server: limits, page-size cap and fault injection.

The defaults behave like the real NVD on a good day: its rate limits (contract §5), a
2000-record page cap, gzip on request, and no faults. Fields may be changed on a
running server (``server.config.down = False``); each request reads them afresh, so a
test can take NVD "down" and bring it back without restarting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ERROR_STATUSES", "MockConfig"]

#: The 5xx statuses NVD and its CDN are seen to return (contract §7); 524 is Cloudflare's
#: origin timeout.
ERROR_STATUSES: tuple[int, ...] = (503, 502, 504, 524)


@dataclass
class MockConfig:
    """How the mock server behaves. See the module docstring for live changes."""

    #: API keys accepted in the ``apiKey`` request header. A key not in this set gets
    #: 404 ``message: Invalid apiKey.``, as on NVD.
    valid_api_keys: set[str] = field(default_factory=set)
    #: ``(requests, seconds)`` per rolling window without a key; None = unlimited.
    rate_limit_anonymous: tuple[int, float] | None = (5, 30.0)
    #: ``(requests, seconds)`` per rolling window per valid key; None = unlimited.
    rate_limit_keyed: tuple[int, float] | None = (50, 30.0)
    #: The ``resultsPerPage`` cap and default. 2000 is NVD's documented maximum; 1000
    #: simulates the stricter cap some users hit (404 whose message names resultsPerPage).
    max_page_size: int = 2000
    #: Gzip 200 bodies when the client sends ``Accept-Encoding: gzip``.
    gzip: bool = True
    #: Probability that a request (past the rate limit) gets a 5xx from ``error_statuses``.
    error_rate: float = 0.0
    #: The statuses ``error_rate`` picks from.
    error_statuses: tuple[int, ...] = ERROR_STATUSES
    #: Probability that a 200 body is cut mid-stream: the full Content-Length is sent,
    #: about half the body is written, then the connection is closed.
    cut_rate: float = 0.0
    #: Close cut connections with a TCP reset instead of a normal close.
    cut_reset: bool = False
    #: Seconds to sleep before answering each valid page request (NVD's slow pages).
    slow_seconds: float = 0.0
    #: Seconds to sleep at the start of every request, whatever its outcome: a
    #: network round trip, for benchmarks that should not be unrealistically fast.
    page_latency: float = 0.0
    #: ``(first_request_number, count)``: those requests (numbered from 1 in arrival
    #: order) get 403 whatever the rate limit says.
    burst_403: tuple[int, int] | None = None
    #: Answer every request with 503.
    down: bool = False
    #: ``(records_per_request, request_count)``: each of the first ``request_count``
    #: served page requests modifies that many random records (new lastModified = now,
    #: vulnStatus Modified, a description note) after building its page and before
    #: sending it, so the client's next request sees the change.
    mutate: tuple[int, int] | None = None
    #: Brand-new records (published = now) added by each mutating request.
    mutate_new: int = 0
    #: Seed for every random decision (faults, which records mutate).
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "cut_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"MockConfig.{name} must be between 0 and 1, got {value}")
        for name in ("rate_limit_anonymous", "rate_limit_keyed"):
            limit = getattr(self, name)
            if limit is not None and (limit[0] < 1 or limit[1] <= 0):
                raise ValueError(
                    f"MockConfig.{name} must be (requests >= 1, seconds > 0) or None, got {limit}"
                )
        if self.max_page_size < 1:
            raise ValueError(f"MockConfig.max_page_size must be >= 1, got {self.max_page_size}")
        if self.error_rate and not self.error_statuses:
            raise ValueError("MockConfig.error_statuses is empty but error_rate is set")
        if self.slow_seconds < 0 or self.page_latency < 0 or self.mutate_new < 0:
            raise ValueError("MockConfig.slow_seconds, page_latency and mutate_new must be >= 0")
        self.valid_api_keys = set(self.valid_api_keys)
