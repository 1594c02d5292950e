"""``sync()``: the library entry point that the CLI and the HTTP app call.

It builds the pieces from :class:`Settings` (or takes injected ones), runs the plan,
records the run, and either returns a successful :class:`SyncReport` or raises
:class:`SyncIncomplete` carrying the failed report. It never returns success while a
page is missing, and the watermark moves only after every window completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec

from nvdsync.errors import ConfigError, NvdSyncError, SyncIncomplete
from nvdsync.models import RunInfo, SyncPlan
from nvdsync.plan import choose_plan
from nvdsync.source.windows import format_nvd

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from nvdsync.config import Settings
    from nvdsync.memory import MemoryMonitor
    from nvdsync.memory_sampler import RssSample
    from nvdsync.models import Window
    from nvdsync.pipeline import PageEvent
    from nvdsync.ratelimit import RateLimiter
    from nvdsync.retry import RetryPolicy
    from nvdsync.source.nvd import NvdSource
    from nvdsync.store.base import Store

__all__ = ["SyncReport", "sync", "sync_async"]

log = logging.getLogger(__name__)


class SyncReport(msgspec.Struct):
    """What one ``nvdsync sync`` run did; ``--json`` prints exactly these keys."""

    run_id: int
    mode: str
    outcome: str  # success | failed | interrupted
    resumed: bool
    db: str
    pages: int = 0
    records_written: int = 0
    records_quarantined: int = 0
    requests: int = 0
    retries: int = 0
    retry_reasons: dict[str, int] = msgspec.field(default_factory=dict)
    rate_limit_wait_s: float = 0.0
    duration_s: float = 0.0
    peak_rss_mb: float = 0.0
    memory_growth_mb: float = 0.0
    gcs_run: int = 0
    watermark: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "success"


def _finish_run(store: Store, run: RunInfo, samples: list[RssSample]) -> None:
    """Record the run's end and its memory samples; a failure here must not hide the
    sync's own error."""
    from nvdsync.store.runs import RunHistory

    try:
        store.finish_run(run)
        history = RunHistory.of(store)
        if history is not None:
            history.save_samples(run.id, samples)
    except NvdSyncError as exc:
        log.error("could not record the end of run %d: %s", run.id, exc)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def sync(
    settings: Settings,
    *,
    full: bool = False,
    since: datetime | None = None,
    restart: bool = False,
    client: httpx.AsyncClient | None = None,
    store: Store | None = None,
    on_page: Callable[[PageEvent], None] | None = None,
    now: Callable[[], datetime] = _utcnow,
    wait: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    monitor: MemoryMonitor | None = None,
) -> SyncReport:
    """Bring the mirror up to date; see :func:`sync_async`.

    Memory: the thresholds and GC points come from ``settings``
    (``memory_warning_mb``, ``memory_critical_mb``, ``auto_gc``, ``gc_every_*``,
    ``memory_log_every_pages``, ``memory_sample_seconds``), so an embedding
    application sets its own with ``Settings(memory_warning_mb=..., ...)``. To
    measure memory another way (say, a cgroup's usage instead of RSS), pass a
    ``monitor`` built with your own ``rss_reader``; its thresholds then win.
    """
    return asyncio.run(sync_async(settings, full=full, since=since, restart=restart,
                                  client=client, store=store, on_page=on_page, now=now,
                                  wait=wait, on_wait=on_wait, monitor=monitor))


def build_source(
    settings: Settings, client: httpx.AsyncClient, limiter: RateLimiter | None = None
) -> tuple[NvdSource, RetryPolicy, RateLimiter | None]:
    """The NVD source with its limiter (new, or shared) and retry policy, from settings."""
    from nvdsync.ratelimit import RateLimiter
    from nvdsync.retry import RetryPolicy
    from nvdsync.source.nvd import NvdSource

    rate = settings.rate()
    if limiter is None and rate is not None:
        limiter = RateLimiter(*rate)
    retry = RetryPolicy(max_retries=settings.max_retries, budget=settings.retry_budget,
                        base=settings.backoff_base, cap=settings.backoff_max, limiter=limiter)
    source = NvdSource(client, api_url=settings.api_url, api_key=settings.api_key_value(),
                       limiter=limiter, spool_bytes=settings.spool_kb * 1024,
                       deadline=settings.page_deadline)
    return source, retry, limiter


def make_client(settings: Settings) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.timeout, connect=30.0),
        limits=httpx.Limits(max_connections=settings.workers + 1),
        follow_redirects=True,
    )


async def sync_async(
    settings: Settings,
    *,
    full: bool = False,
    since: datetime | None = None,
    restart: bool = False,
    client: httpx.AsyncClient | None = None,
    store: Store | None = None,
    on_page: Callable[[PageEvent], None] | None = None,
    now: Callable[[], datetime] = _utcnow,
    repair: list[Window] | None = None,
    limiter: RateLimiter | None = None,
    wait: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    monitor: MemoryMonitor | None = None,
) -> SyncReport:
    """Run one sync. Returns a successful report or raises SyncIncomplete.

    ``repair`` re-fetches the given windows only (``verify --repair``): the watermark
    is left alone. ``limiter`` shares a rate limiter with requests made before.
    When another sync is writing the mirror this raises
    :class:`~nvdsync.errors.MirrorBusy`, or with ``wait`` (seconds, ``math.inf`` for
    no limit) first waits for it, calling ``on_wait(holder)`` once.
    """
    from nvdsync.memory import MemoryMonitor
    from nvdsync.memory_policy import MemoryPolicy
    from nvdsync.memory_sampler import MemorySampler
    from nvdsync.pipeline import Runner
    from nvdsync.store import open_store

    if since is not None and since.tzinfo is None:
        raise ConfigError("--since needs a timezone or a date (UTC is assumed for dates)")
    try:
        if monitor is None:
            monitor = MemoryMonitor(settings.memory_warning_mb, settings.memory_critical_mb,
                                    auto_gc=settings.auto_gc)
        sampler = MemorySampler(monitor.sample_rss, settings.memory_sample_seconds)
        memory = MemoryPolicy(
            monitor, batch_size=settings.batch_size,
            gc_every_batches=settings.gc_every_batches,
            gc_every_pages=settings.gc_every_pages,
            gc_every_db_batches=settings.gc_every_db_batches,
            log_every_pages=settings.memory_log_every_pages, sampler=sampler,
        )
    except ValueError as exc:
        raise ConfigError(f"memory settings: {exc}") from exc
    own_store = store is None
    store = store if store is not None else open_store(settings.db)
    own_client = client is None
    if client is None:
        client = make_client(settings)
    source, retry, limiter = build_source(settings, client, limiter)
    runner = Runner(store=store, source=source, retry=retry, memory=memory,
                    workers=settings.workers, catchup_passes=settings.catchup_passes,
                    now=now, on_page=on_page)
    started = time.monotonic()
    report: SyncReport | None = None
    held = contextlib.ExitStack()
    try:
        # In a thread: waiting for the lock must not block an event loop that serves.
        # On cancellation (Ctrl-C) the thread is told to stop waiting and awaited, so
        # that it can neither keep the process alive nor take the lock afterwards.
        stop = threading.Event()
        taking = asyncio.ensure_future(asyncio.to_thread(
            held.enter_context, store.writer_lock(wait=wait, on_wait=on_wait, stop=stop)))
        try:
            await asyncio.shield(taking)
        except asyncio.CancelledError:
            stop.set()
            with contextlib.suppress(BaseException):
                await taking
            raise
        pending = await runner.db(store.load_plan)
        if repair is not None and pending is not None and pending.mode != "repair":
            raise ConfigError("an interrupted sync is pending: run `nvdsync sync` to finish it "
                              "before repairing")
        if repair is not None:
            plan, resumed = SyncPlan(0, "repair", format_nvd(now()), repair), False
        else:
            plan, resumed = choose_plan(
                pending=pending,
                watermark=await runner.db(store.get_watermark),
                now=now(), full=full, since=since, restart=restart,
                overlap=timedelta(minutes=settings.overlap_minutes),
                page_size=settings.page_size,
            )
        if not resumed:
            plan.page_size = settings.page_size
        run_id = await runner.db(store.begin_run, plan.mode, now())
        if plan.run_id == 0:
            plan.run_id = run_id
        if resumed:
            log.info("resuming the %s sync of run %d", plan.mode, plan.run_id)
        # The baseline is taken just before the first request, after the database is
        # open, so "growth" is what syncing costs, not what opening a database costs.
        # The sampler thread starts here too; ``memory.finish()`` below stops it.
        memory.start()
        report = SyncReport(run_id, plan.mode, "running", resumed, store.location)
        outcome, error = "failed", None
        try:
            watermark = await runner.run(plan, resumed=resumed)
            if plan.mode == "repair" or not plan.advance_watermark:
                await runner.db(store.save_plan, None)
                kept = await runner.db(store.get_watermark)
                report.watermark = kept.isoformat() if kept else None
            else:
                await runner.db(store.complete_sync, watermark)
                report.watermark = watermark.isoformat()
            outcome = "success"
        except NvdSyncError as exc:
            error = str(exc)
            log.error("sync failed, watermark unchanged: %s", exc)
        except (KeyboardInterrupt, asyncio.CancelledError):
            outcome, error = "interrupted", "interrupted by the user"
            raise
        except Exception as exc:  # a bug or the OS (disk full): still record why
            error = f"{type(exc).__name__}: {exc}"
            log.error("sync failed, watermark unchanged: %s", error)
            raise
        finally:
            stats = memory.finish()  # stops the sampler, logs "memory statistics: ..."
            report.outcome, report.error = outcome, error
            report.pages, report.records_written = runner.pages, runner.written
            report.records_quarantined = runner.quarantined
            report.requests, report.retries = source.requests, retry.retries
            report.retry_reasons = dict(retry.reasons)
            report.rate_limit_wait_s = round(limiter.waited, 3) if limiter else 0.0
            report.duration_s = round(time.monotonic() - started, 3)
            report.peak_rss_mb = round(stats.peak_mb, 1)
            report.memory_growth_mb = round(stats.growth_mb, 1)
            report.gcs_run = stats.gcs_run
            await runner.db(_finish_run, store, RunInfo(
                id=run_id, mode=plan.mode, started_at="", ended_at=now().isoformat(),
                outcome=outcome, pages=runner.pages, records_written=runner.written,
                records_quarantined=runner.quarantined, retries=retry.retries,
                peak_rss_mb=report.peak_rss_mb, error=error,
                start_rss_mb=_round(monitor.baseline_mb), growth_mb=report.memory_growth_mb,
                gcs_run=stats.gcs_run, warning_mb=monitor.warning_mb,
                critical_mb=monitor.critical_mb,
            ), sampler.samples())
    finally:
        held.close()
        runner.close()
        if own_client:
            await client.aclose()
        if own_store:
            store.close()
    if not report.ok:
        raise SyncIncomplete(f"sync failed: {report.error}", report)
    return report
