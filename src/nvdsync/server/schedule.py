"""Syncs run by the service: on a schedule (``--sync-every``) or on request (POST /api/sync).

One :class:`SyncService` per app. It runs :func:`nvdsync.sync.sync` in a background
thread, never two at once in this process (a second request while one runs is
refused, a tick that finds one running is skipped); across processes the store's
writer lock refuses the second sync, which is recorded as a failed attempt here. The
outcome of the last attempt is kept for ``/api/status`` and handed to a listener
(the metrics).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from nvdsync.errors import ConfigError, MirrorBusy, NvdSyncError, SyncIncomplete
from nvdsync.sync import SyncReport

if TYPE_CHECKING:
    from collections.abc import Callable

    from nvdsync.config import Settings

__all__ = ["SyncAttempt", "SyncService", "parse_duration"]

log = logging.getLogger(__name__)

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """``"2h"``, ``"30m"``, ``"1h30m"``, ``"90s"``, ``"1d"`` → seconds (> 0).

    Raises ConfigError naming the value, so ``serve`` can print it as a usage error.
    """
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(f"{n}{u}" for n, u in parts) != compact:
        raise ConfigError(f"sync_every {text!r} is not a duration like 30m, 2h, 1h30m or 1d")
    seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"sync_every {text!r} must be longer than zero")
    return seconds


class SyncAttempt(msgspec.Struct):
    """One sync started by the service, as ``/api/status`` shows it."""

    trigger: str  # "schedule" | "api"
    started_at: str
    ended_at: str | None = None
    outcome: str = "running"  # running | success | failed | error
    run_id: int | None = None
    pages: int = 0
    records_written: int = 0
    retries: int = 0
    retry_reasons: dict[str, int] = msgspec.field(default_factory=dict)
    error: str | None = None


def _run_sync(settings: Settings) -> SyncReport:
    from nvdsync.sync import sync

    return sync(settings)  # incremental from the watermark (full on an empty mirror)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SyncService:
    """Runs syncs one at a time, on a timer and on demand."""

    def __init__(
        self,
        settings: Settings,
        *,
        every: float | None = None,
        sync_fn: Callable[[Settings], SyncReport] = _run_sync,
        on_done: Callable[[SyncAttempt], None] | None = None,
    ) -> None:
        self.settings = settings
        self.every = every
        self._sync_fn = sync_fn
        self._on_done = on_done
        self._busy = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self.current: SyncAttempt | None = None
        self.last: SyncAttempt | None = None
        self.next_due: float | None = None  # time.time() of the next scheduled run

    @property
    def running(self) -> bool:
        return self._busy.locked()

    def trigger(self, trigger: str = "api") -> bool:
        """Start a sync in the background; False when one is already running."""
        if not self._busy.acquire(blocking=False):
            return False
        self._worker = threading.Thread(
            target=self._run_locked, args=(trigger,), name="nvdsync-sync", daemon=True
        )
        try:
            self._worker.start()
        except BaseException:  # no thread (e.g. RuntimeError at the limit): not busy
            self._busy.release()
            raise
        return True

    def run_once(self, trigger: str = "schedule") -> SyncAttempt | None:
        """Run a sync in this thread; None (skipped) when one is already running."""
        if not self._busy.acquire(blocking=False):
            log.info("a sync is still running; this %s run is skipped", trigger)
            return None
        return self._run_locked(trigger)

    def _run_locked(self, trigger: str) -> SyncAttempt:
        attempt = SyncAttempt(trigger=trigger, started_at=_now())
        self.current = attempt
        try:
            report = self._sync_fn(self.settings)
            _copy_report(attempt, report)
        except SyncIncomplete as exc:
            if isinstance(exc.report, SyncReport):
                _copy_report(attempt, exc.report)
            attempt.outcome, attempt.error = "failed", str(exc)
        except MirrorBusy as exc:  # another process's sync is writing: not a failure
            attempt.outcome, attempt.error = "skipped", str(exc)
        except NvdSyncError as exc:
            attempt.outcome, attempt.error = "failed", str(exc)
        except Exception as exc:  # a bug must not kill the service's scheduler
            log.exception("scheduled sync crashed")
            attempt.outcome, attempt.error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            attempt.ended_at = _now()
            self.last, self.current = attempt, None
            self._busy.release()
        log.info("sync (%s) ended: %s%s", trigger, attempt.outcome,
                 f" ({attempt.error})" if attempt.error else "")
        if self._on_done is not None:
            try:
                self._on_done(attempt)
            except Exception:  # a metrics/cache hook must not stop the timer thread
                log.exception("after-sync hook failed")
        return attempt

    # -- the timer -----------------------------------------------------------------

    def start(self) -> None:
        """Start the timer thread (when ``every`` is set); the first run is one period away.

        Waiting a period first keeps a restart loop from hammering NVD; run
        ``nvdsync sync`` or POST /api/sync for an immediate one.
        """
        if self.every is None or self._timer is not None:
            return
        self._stop.clear()
        self._timer = threading.Thread(target=self._tick, name="nvdsync-schedule", daemon=True)
        self._timer.start()

    def _tick(self) -> None:
        assert self.every is not None
        while True:
            self.next_due = time.time() + self.every
            if self._stop.wait(self.every):
                return
            self.run_once("schedule")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the timer. A sync in progress is left to finish in its daemon thread:
        it commits batch by batch, so being cut off at exit loses nothing."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout)
            self._timer = None
        self.next_due = None

    def snapshot(self) -> dict[str, Any]:
        """The service's sync state for ``/api/status``."""
        due = self.next_due
        return {
            "every_seconds": self.every,
            "running": msgspec.to_builtins(self.current) if self.current else None,
            "last": msgspec.to_builtins(self.last) if self.last else None,
            "next_due": datetime.fromtimestamp(due, UTC).isoformat(timespec="seconds")
            if due is not None else None,
        }


def _copy_report(attempt: SyncAttempt, report: SyncReport) -> None:
    attempt.outcome = report.outcome
    attempt.run_id = report.run_id
    attempt.pages = report.pages
    attempt.records_written = report.records_written
    attempt.retries = report.retries
    attempt.retry_reasons = dict(report.retry_reasons)
    attempt.error = report.error
