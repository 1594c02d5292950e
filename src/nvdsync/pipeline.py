"""The one module that wires source -> decode -> normalise -> batch -> store.

A run pages through every window of its :class:`SyncPlan`. Up to ``workers`` pages
are downloaded ahead (spooled to temporary files past a small threshold); pages are
committed strictly in index order, each in mini-batches of ``batch_size`` records, and
the plan (window, next ``startIndex``) is saved in the same transaction as a page's
last batch. So a crash at any moment resumes at the first uncommitted page.

Paging drift: NVD's result set moves while we page. When a page reports a smaller
``totalResults`` than the page before it, records ahead of us shifted down by the
difference and some of them slid behind our cursor, so the cursor rewinds by that
difference (re-reading is harmless: the store keeps the newest ``lastModified``).
Records modified during the run are picked up by a catch-up pass over lastMod windows
from the run's start, repeated while drift is seen.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from nvdsync.decode import decode_page, iter_records
from nvdsync.errors import BadRequest, ParseError
from nvdsync.models import CveRecord, Quarantined, SyncPlan, Window
from nvdsync.normalize import normalize
from nvdsync.plan import catchup_window, windows_end

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime

    from nvdsync.decode import Page
    from nvdsync.memory import MemoryMonitor
    from nvdsync.retry import RetryPolicy
    from nvdsync.source.nvd import NvdSource, PageBody
    from nvdsync.store.base import Store

__all__ = ["PageEvent", "Runner"]

log = logging.getLogger(__name__)
T = TypeVar("T")
FALLBACK_PAGE_SIZE = 1000  # what NVD accepts when it refuses 2000 (nvd-api.md §7)
MAX_EMPTY_PAGES = 3


@dataclass(frozen=True, slots=True)
class PageEvent:
    """Progress after each committed page, for whoever renders progress."""

    pages: int  # pages committed in this run
    written: int  # records inserted or replaced in this run
    quarantined: int
    records: int  # the current window's cursor (records paged so far)
    total: int  # the current window's totalResults
    window: int  # 1-based index of the current window
    window_count: int


class Runner:
    """Executes a plan; holds the counters that become the run's record."""

    def __init__(
        self,
        *,
        store: Store,
        source: NvdSource,
        retry: RetryPolicy,
        monitor: MemoryMonitor,
        batch_size: int,
        workers: int,
        catchup_passes: int,
        now: Callable[[], Any],
        on_page: Callable[[PageEvent], None] | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.retry = retry
        self.monitor = monitor
        self.batch_size = batch_size
        self.workers = workers
        self.catchup_passes = catchup_passes
        self.now = now
        self.on_page = on_page
        self.pages = 0
        self.written = 0
        self.quarantined = 0
        self.drift = False
        # One thread owns the database connection: SQLite objects must not hop threads,
        # and writes off the event loop let downloads continue while a page commits.
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nvdsync-db")

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, fn, *args)

    def close(self) -> None:
        self._db_thread.shutdown(wait=True)

    # --- the plan -----------------------------------------------------------------------
    async def run(self, plan: SyncPlan, *, resumed: bool) -> datetime:
        """Complete every window, then catch-up passes; return the new watermark."""
        self.drift = resumed  # an interrupted run may have missed drift: check once more
        while True:
            for index, window in enumerate(plan.windows):
                if not window.done:
                    await self._page_window(plan, index)
            if plan.mode == "repair":
                return windows_end(plan.windows, plan.started_at)
            wants_catchup = plan.catchup_passes == 0 if plan.mode == "full" else self.drift
            if not wants_catchup or plan.catchup_passes >= self.catchup_passes:
                return windows_end(plan.windows, plan.started_at)
            new = catchup_window(plan, self.now())
            plan.catchup_passes += 1
            plan.windows.extend(new)
            self.drift = False
            log.info("catch-up pass %d: %s -> %s", plan.catchup_passes, new[0].start, new[-1].end)
            await self.db(self.store.save_plan, plan)

    async def _page_window(self, plan: SyncPlan, index: int) -> None:
        window = plan.windows[index]
        label = f"window {index + 1}/{len(plan.windows)} ({_describe(window)})"
        log.info("%s: paging from startIndex=%d", label, window.next_index)
        pending: dict[int, asyncio.Task[PageBody]] = {}
        fresh = False  # seen a page of this window in this run: its total is current
        empty_pages = 0
        scheduled = window.next_index
        try:
            while True:
                depth = self.workers if fresh else 1
                while len(pending) < depth and (not fresh or scheduled < (window.total or 0)):
                    pending[scheduled] = asyncio.create_task(
                        self._download(window, scheduled, plan.page_size)
                    )
                    scheduled += plan.page_size
                cursor = window.next_index
                task = pending.pop(cursor, None)
                if task is None:
                    break  # nothing left to fetch: the window is complete
                try:
                    page = await self._page(window, cursor, plan.page_size, task)
                except BadRequest as exc:
                    if "resultsperpage" not in exc.nvd_message.lower():
                        raise
                    if plan.page_size <= FALLBACK_PAGE_SIZE:
                        raise
                    log.warning("NVD refused resultsPerPage=%d (%s); using %d",
                                plan.page_size, exc.nvd_message, FALLBACK_PAGE_SIZE)
                    plan.page_size = FALLBACK_PAGE_SIZE
                    scheduled = self._cancel(pending, cursor)
                    continue
                fresh = True
                rewound = self._advance(window, page, label)
                empty_pages = empty_pages + 1 if not page.items and not window.done else 0
                if empty_pages > MAX_EMPTY_PAGES:
                    raise ParseError(
                        f"{label}: NVD keeps answering startIndex={cursor} with no records "
                        f"while reporting totalResults={page.total}"
                    )
                await self._commit(plan, page)
                del page
                if rewound:
                    scheduled = self._cancel(pending, window.next_index)
                self._report(plan, index)
        finally:
            self._cancel(pending, 0)

    @staticmethod
    def _cancel(pending: dict[int, asyncio.Task[PageBody]], restart: int) -> int:
        for task in pending.values():
            task.cancel()
        pending.clear()
        return restart

    def _advance(self, window: Window, page: Page, label: str) -> bool:
        """Move the window's cursor past ``page``; return True when it rewound."""
        previous, cursor = window.total, page.start_index
        window.total = page.total
        rewound = False
        if previous is not None and page.total < previous:
            back = previous - page.total
            window.next_index = max(0, cursor - back)
            rewound = True
            self.drift = True
            log.warning("%s: totalResults fell %d -> %d at startIndex=%d; re-reading from %d",
                        label, previous, page.total, cursor, window.next_index)
        else:
            if previous is not None and page.total > previous and window.kind != "all":
                self.drift = True
            window.next_index = cursor + len(page)
        if not page.items and cursor < page.total:
            window.next_index = cursor  # an empty page inside the result set: ask again
        window.done = window.next_index >= page.total
        return rewound

    async def _download(self, window: Window, start: int, size: int) -> PageBody:
        return await self.retry.run(
            f"download of startIndex={start}", lambda: self.source.fetch(window, start, size)
        )

    async def _page(self, window: Window, start: int, size: int,
                    prefetched: asyncio.Task[PageBody]) -> Page:
        """The decoded page at ``start``; a body that fails to decode is fetched again."""
        first: asyncio.Task[PageBody] | None = prefetched

        async def attempt() -> Page:
            nonlocal first
            if first is not None:
                body, first = await first, None
            else:
                body = await self.source.fetch(window, start, size)
            with body:
                data = body.read()
            return decode_page(data, start_index=start)

        return await self.retry.run(f"page at startIndex={start}", attempt)

    # --- committing ---------------------------------------------------------------------
    async def _commit(self, plan: SyncPlan, page: Page) -> None:
        written, quarantined = await self.db(self._write_page, plan, page)
        self.pages += 1
        self.written += written
        self.quarantined += quarantined
        sample = self.monitor.check("page")
        log.info("page startIndex=%d: %d records, %d written, %d quarantined (total %d); %s",
                 page.start_index, len(page), written, quarantined, page.total,
                 self.monitor.format("memory", sample))

    def _write_page(self, plan: SyncPlan, page: Page) -> tuple[int, int]:
        """Runs on the database thread: normalise and write the page batch by batch."""
        written = quarantined = 0
        remaining = len(page)
        results = (r if isinstance(r, Quarantined) else normalize(r) for r in iter_records(page))
        for chunk in _chunks(results, self.batch_size):
            remaining -= len(chunk)
            records = [r for r in chunk if isinstance(r, CveRecord)]
            bad = [r for r in chunk if isinstance(r, Quarantined)]
            for item in bad:
                log.warning("quarantined %s: %s", item.cve_id or "a record", item.reason)
            # The plan rides on the page's last batch: committed together or not at all.
            written += self.store.write_batch(records, bad, plan if remaining == 0 else None)
            quarantined += len(bad)
            log.debug("batch committed: %d records, %d quarantined", len(records), len(bad))
        if len(page) == 0:
            self.store.save_plan(plan)
        return written, quarantined

    def _report(self, plan: SyncPlan, index: int) -> None:
        if self.on_page is None:
            return
        window = plan.windows[index]
        self.on_page(PageEvent(
            pages=self.pages, written=self.written, quarantined=self.quarantined,
            records=window.next_index, total=window.total or 0, window=index + 1,
            window_count=len(plan.windows),
        ))


def _chunks(items: Iterator[CveRecord | Quarantined], size: int,
            ) -> Iterator[list[CveRecord | Quarantined]]:
    while chunk := list(islice(items, size)):
        yield chunk


def _describe(window: Window) -> str:
    if window.kind == "all":
        return "all CVEs"
    return f"{window.kind} {window.start} -> {window.end}"

