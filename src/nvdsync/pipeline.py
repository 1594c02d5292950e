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
from typing import TYPE_CHECKING, Any, TypeVar

from nvdsync.decode import NotCompact, decode_page, iter_records, open_page
from nvdsync.errors import BadRequest, ParseError, SyncIncomplete
from nvdsync.models import CveRecord, Quarantined, SyncPlan, Window
from nvdsync.normalize import normalize
from nvdsync.plan import catchup_window, windows_end

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from datetime import datetime

    from nvdsync.decode import PageHeader
    from nvdsync.memory_policy import MemoryPolicy
    from nvdsync.retry import RetryPolicy
    from nvdsync.source.nvd import NvdSource, PageBody
    from nvdsync.store.base import Store

__all__ = ["PageEvent", "Runner"]

log = logging.getLogger(__name__)
T = TypeVar("T")
FALLBACK_PAGE_SIZE = 1000  # what NVD accepts when it refuses 2000 (nvd-api.md §7)
MAX_EMPTY_PAGES = 3
MAX_REPAGES = 3  # re-reads of a window whose result set kept moving


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
        memory: MemoryPolicy,
        workers: int,
        catchup_passes: int,
        now: Callable[[], Any],
        on_page: Callable[[PageEvent], None] | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.retry = retry
        # Batch size and read-ahead come from the memory policy: backpressure lowers
        # them while memory is critical.
        self.memory = memory
        self.monitor = memory.monitor
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
            unfinished = [w for w in plan.windows if not w.done]
            if unfinished:  # never move the watermark past a window we did not finish
                raise SyncIncomplete(f"{len(unfinished)} window(s) did not complete, first "
                                     f"{_describe(unfinished[0])} at startIndex="
                                     f"{unfinished[0].next_index}")
            if plan.mode == "repair":
                return windows_end(plan.windows, plan.started_at)
            # A full sync always gets one pass for what changed while it paged; any
            # sync gets another while drift is seen (or after a resume, which may have
            # missed drift while it was down).
            wants_catchup = self.drift or (plan.mode == "full" and plan.catchup_passes == 0)
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
        empty_pages = pages_here = 0
        scheduled = window.next_index

        async def read_ahead(cursor_downloading: bool) -> None:
            # Up to `workers` downloads at once, counting the cursor's own: pages
            # ahead download while this one is committed, once this run knows the
            # window's total. A cursor page fetched again makes room first.
            nonlocal scheduled
            room = self.workers - cursor_downloading
            if len(pending) > room:
                furthest = max(pending)
                await self._cancel({furthest: pending.pop(furthest)})
                scheduled = min(scheduled, furthest)
            if self.memory.prefetch_paused:
                # Backpressure: no page beyond the cursor starts while memory is
                # critical. Downloads already running finish (their bytes are spent).
                return
            while fresh and len(pending) < room and scheduled < (window.total or 0):
                pending[scheduled] = self._spawn(window, scheduled, plan.page_size)
                scheduled += plan.page_size

        try:
            while True:
                cursor = window.next_index
                task = pending.pop(cursor, None)
                if task is None and window.done:
                    if not (window.unstable and window.repages < MAX_REPAGES):
                        break  # the window is complete
                    # Records joined or left the window while we paged: the cursor
                    # rewinds cover records that left, but one that joined behind the
                    # cursor is only found by reading the window again.
                    window.repages += 1
                    window.next_index, window.total, window.done = 0, None, False
                    window.unstable = False
                    log.warning("%s: totalResults changed while paging; reading the "
                                "window again (%d/%d)", label, window.repages, MAX_REPAGES)
                    await self.db(self.store.save_plan, plan)
                    fresh = False
                    empty_pages = pages_here = 0
                    continue
                if task is None:
                    # Nothing downloading at the cursor: the window's first page, or a
                    # short page left the cursor between pages scheduled ahead.
                    await self._cancel(pending)
                    task = self._spawn(window, cursor, plan.page_size)
                    scheduled = cursor + plan.page_size

                await read_ahead(not task.done())
                try:
                    step = await self._page(plan, index, cursor, task, read_ahead)
                except BadRequest as exc:
                    if "resultsperpage" not in exc.nvd_message.lower():
                        raise
                    if plan.page_size <= FALLBACK_PAGE_SIZE:
                        raise
                    log.warning("NVD refused resultsPerPage=%d (%s); using %d",
                                plan.page_size, exc.nvd_message, FALLBACK_PAGE_SIZE)
                    plan.page_size = FALLBACK_PAGE_SIZE
                    await self._cancel(pending)
                    continue
                fresh = True
                if step.rewound:
                    log.warning("%s: totalResults fell %d -> %d at startIndex=%d; "
                                "re-reading from %d", label, step.previous_total,
                                step.header.total, cursor, window.next_index)
                    await self._cancel(pending)  # read again from the new cursor
                self.drift = self.drift or step.drift
                empty_pages = empty_pages + 1 if not step.header.count and not window.done else 0
                pages_here += 1
                # Rewinds and re-reads are bounded: a result set that keeps jumping
                # (say, two NVD replicas with different totals) fails the run
                # instead of paging forever.
                if pages_here > 3 * -(-step.header.total // plan.page_size) + 10:
                    raise ParseError(f"{label}: totalResults keeps changing "
                                     f"(now {step.header.total}); gave up after "
                                     f"{pages_here} pages")
                if empty_pages > MAX_EMPTY_PAGES:
                    raise ParseError(
                        f"{label}: NVD keeps answering startIndex={cursor} with no records "
                        f"while reporting totalResults={step.header.total}"
                    )
                self._report(plan, index)
        finally:
            await self._cancel(pending)

    @staticmethod
    async def _cancel(pending: dict[int, asyncio.Task[PageBody]]) -> None:
        """Drop every download ahead, and wait until they really stopped, so that new
        downloads never run beside cancelled ones still in flight."""
        tasks = list(pending.values())
        pending.clear()
        for task in tasks:
            task.cancel()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if not isinstance(result, BaseException):
                result.close()  # a downloaded body we no longer need

    def _spawn(self, window: Window, start: int, size: int) -> asyncio.Task[PageBody]:
        return asyncio.create_task(self.retry.run(
            f"download of startIndex={start}", lambda: self.source.fetch(window, start, size)
        ))

    async def _page(self, plan: SyncPlan, index: int, cursor: int,
                    prefetched: asyncio.Task[PageBody],
                    downloaded: Callable[[bool], Awaitable[None]]) -> _Step:
        """Commit the page at ``cursor``; a body that fails to decode is fetched again.

        ``downloaded(False)`` runs once its body is in, before the commit starts;
        ``downloaded(True)`` before it is fetched again.
        """
        window = plan.windows[index]
        first: asyncio.Task[PageBody] | None = prefetched

        async def attempt() -> _Step:
            nonlocal first
            if first is not None:
                body, first = await first, None
            else:
                await downloaded(True)  # fetched again: count it in `workers`
                body = await self.source.fetch(window, cursor, plan.page_size)
            await downloaded(False)
            self.monitor.sample_rss()  # the peak is often here: a body just spooled
            with body:
                return await self.db(self._write_page, plan, index, body, cursor)

        step = await self.retry.run(f"page at startIndex={cursor}", attempt)
        self.pages += 1
        self.written += step.written
        self.quarantined += step.quarantined
        log.info("page startIndex=%d: %d records, %d written, %d quarantined (total %d)",
                 cursor, step.header.count, step.written, step.quarantined,
                 step.header.total)
        self.memory.after_page(self.pages)  # memory lines every N pages and on crossings
        return step

    # --- committing (on the database thread) --------------------------------------------
    def _write_page(self, plan: SyncPlan, index: int, body: PageBody, cursor: int) -> _Step:
        try:
            header, items = open_page(body, start_index=cursor)
            return self._write_items(plan, index, header, items)
        except NotCompact as exc:
            # Not NVD's compact layout (e.g. pretty-printed): decode it whole instead.
            # Batches already written are rewritten; the store keeps one copy.
            log.debug("page at startIndex=%d decoded whole: %s", cursor, exc)
            body.seek(0)
            page = decode_page(body.read(), start_index=cursor)
            return self._write_items(plan, index, page.header, iter_records(page))

    def _write_items(self, plan: SyncPlan, index: int, header: PageHeader,
                     items: Iterator[bytes | Quarantined]) -> _Step:
        """Normalise and write batch by batch; the plan rides on the page's last batch."""
        window = plan.windows[index]
        step = _Step.after(window, header)
        results = (r if isinstance(r, Quarantined) else normalize(r) for r in items)
        chunk: list[CveRecord | Quarantined] = []
        # One record of look-ahead: the iterator checks the page's end (record count,
        # closing brackets) before the last batch, and the plan, are written.
        ahead = next(results, None)
        while ahead is not None:
            chunk.append(ahead)
            ahead = next(results, None)
            if len(chunk) < self.memory.batch_size and ahead is not None:
                continue
            self.memory.after_batch()
            self._write_batch(chunk, plan if ahead is None else None, window, step)
            chunk = []
        if header.count == 0:
            self._write_batch([], plan, window, step)
        return step

    def _write_batch(self, chunk: list[CveRecord | Quarantined], plan: SyncPlan | None,
                     window: Window, step: _Step) -> None:
        records = [r for r in chunk if isinstance(r, CveRecord)]
        bad = [r for r in chunk if isinstance(r, Quarantined)]
        for item in bad:
            log.warning("quarantined %s: %s", item.cve_id or "a record", item.reason)
        if plan is None:
            step.written += self.store.write_batch(records, bad, None)
        else:
            # Move the cursor only for this write: if it fails, the page is retried
            # from the same place.
            before = (window.next_index, window.total, window.done, window.unstable)
            window.next_index, window.total, window.done = step.cursor
            # Saved with the cursor, so a resumed run still re-reads a moved window.
            window.unstable = window.unstable or (step.changed and window.kind != "all")
            try:
                if chunk:
                    step.written += self.store.write_batch(records, bad, plan)
                else:
                    self.store.save_plan(plan)
            except BaseException:
                window.next_index, window.total, window.done, window.unstable = before
                raise
        step.quarantined += len(bad)
        self.memory.after_db_batch()  # thresholds: GC on crossing, backpressure
        log.debug("batch committed: %d records, %d quarantined", len(records), len(bad))

    def _report(self, plan: SyncPlan, index: int) -> None:
        if self.on_page is None:
            return
        window = plan.windows[index]
        self.on_page(PageEvent(
            pages=self.pages, written=self.written, quarantined=self.quarantined,
            records=window.next_index, total=window.total or 0, window=index + 1,
            window_count=len(plan.windows),
        ))


@dataclass
class _Step:
    """What committing one page did, and where it moves the window's cursor."""

    header: PageHeader
    cursor: tuple[int, int, bool]  # next_index, total, done after this page
    previous_total: int | None
    rewound: bool
    drift: bool
    changed: bool  # totalResults differs from the previous page's
    written: int = 0
    quarantined: int = 0

    @classmethod
    def after(cls, window: Window, header: PageHeader) -> _Step:
        previous, start = window.total, header.start_index
        rewound = previous is not None and header.total < previous
        if rewound:
            assert previous is not None
            # Records ahead of us shifted down by the difference; re-read the stretch
            # that may have slid behind the cursor.
            next_index = max(0, start - (previous - header.total))
        elif header.count == 0 and start < header.total:
            next_index = start  # an empty page inside the result set: ask again
        else:
            next_index = start + header.count  # what we received, never the page size
        changed = previous is not None and header.total != previous
        grew = changed and header.total > (previous or 0) and window.kind != "all"
        return cls(header, (next_index, header.total, next_index >= header.total),
                   previous, rewound, rewound or grew, changed)


def _describe(window: Window) -> str:
    if window.kind == "all":
        return "all CVEs"
    return f"{window.kind} {window.start} -> {window.end}"

