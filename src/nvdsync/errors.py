"""The one exception tree nvdsync raises.

Our exception hierarchy::

    NvdSyncError                 anything nvdsync raises on purpose
    ├── ConfigError              bad settings or flags (CLI exit 2)
    ├── InvalidQuery             a search filter is malformed (bad CPE name, date, ...)
    ├── SourceError              the NVD API could not give us what we asked for
    │   ├── BadRequest           404 from NVD: the request itself is wrong; never retried
    │   │   └── InvalidApiKey    404 "Invalid apiKey."
    │   ├── RateLimited          403/429 from the NVD firewall (retried)
    │   ├── ServerError          5xx/524 (retried)
    │   ├── TransportError       timeout, reset, refused connection (retried)
    │   └── RetryBudgetExceeded  retries ran out for a request or for the run
    ├── ParseError               a page body that is not a complete NVD envelope (retried)
    ├── StoreError               the database failed; the current batch was rolled back
    │   └── MirrorBusy           another sync holds the mirror's writer lock (CLI exit 3)
    └── SyncIncomplete           the run ended with pages not committed; watermark unchanged

Third-party errors (httpx, sqlite3, psycopg, SQLAlchemy) are translated at the
boundary that sees them and chained with ``raise ... from``.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "ConfigError",
    "InvalidApiKey",
    "InvalidQuery",
    "MirrorBusy",
    "NvdSyncError",
    "ParseError",
    "RateLimited",
    "RetryBudgetExceeded",
    "ServerError",
    "SourceError",
    "StoreError",
    "SyncIncomplete",
    "TransportError",
]


class NvdSyncError(Exception):
    """Base of every error nvdsync raises on purpose."""


class ConfigError(NvdSyncError):
    """Settings or flags are invalid; the message names the setting and the fix."""


class InvalidQuery(NvdSyncError):
    """A search filter is malformed; the message names the filter and the fix.

    Raised before the database is touched, so callers (the CLI, the HTTP API) can
    answer 2 / 400 without a traceback. ``field`` is the ``SearchQuery`` field at
    fault (e.g. ``"cpe"``), for callers that name their own parameters.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SourceError(NvdSyncError):
    """The NVD API (or a mirror of it) failed to answer a request usefully."""

    #: Whether retrying the same request may succeed.
    retryable: bool = True


class BadRequest(SourceError):
    """NVD answered 404: the request is invalid. ``message`` is NVD's header."""

    retryable = False

    def __init__(self, message: str, *, url: str = "") -> None:
        self.nvd_message = message
        self.url = url
        super().__init__(f"NVD rejected the request: {message or '(no message header)'}")


class InvalidApiKey(BadRequest):
    """NVD does not know the API key we sent."""

    def __init__(self, message: str = "Invalid apiKey.", *, url: str = "") -> None:
        super().__init__(message, url=url)
        self.args = (
            f"NVD rejected the API key: {message} Check --api-key / NVD_API_KEY, "
            "or leave it unset to use the keyless rate limit.",
        )


class RateLimited(SourceError):
    """NVD's firewall refused the request (403 or 429)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerError(SourceError):
    """NVD answered 5xx (or Cloudflare's 524)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class TransportError(SourceError):
    """The connection failed: timeout, reset, refused, body cut short."""


class RetryBudgetExceeded(SourceError):
    """A request failed more times than ``max_retries`` or the run's time budget allows."""

    retryable = False


class ParseError(NvdSyncError):
    """A page body is not a complete NVD CVE envelope (cut off or malformed)."""


class StoreError(NvdSyncError):
    """The database failed; the batch in flight was rolled back."""


class MirrorBusy(StoreError):
    """Another sync is writing this mirror (one writer per mirror); nothing was written.

    ``holder`` says who holds the lock (a pid, or a PostgreSQL session); ``waited``
    is how long we waited for it, or None when we did not wait.
    """

    def __init__(self, location: str, holder: str, *, waited: float | None = None) -> None:
        self.location = location
        self.holder = holder
        self.waited = waited
        if waited is None:
            message = f"another nvdsync sync ({holder}) is writing {location}"
        else:
            message = (f"another nvdsync sync ({holder}) is still writing {location} "
                       f"after waiting {waited:g} s")
        super().__init__(message)


class SyncIncomplete(NvdSyncError):
    """The run stopped before every page was committed; the watermark did not move.

    ``report`` is the run's :class:`nvdsync.sync.SyncReport` (outcome ``failed``).
    """

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report
