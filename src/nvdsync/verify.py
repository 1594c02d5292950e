"""``verify``: compare the mirror with NVD window by window, and optionally repair.

For each published-date window of at most 120 days, NVD's ``totalResults`` (one
request with ``resultsPerPage=1``) is compared with the local count of records
published in the same window. Disagreeing windows are listed; ``repair=True``
re-fetches exactly those windows through the normal sync pipeline (resumable,
batched, quarantining) without moving the watermark.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

from nvdsync.decode import decode_page
from nvdsync.models import Window
from nvdsync.source.windows import format_nvd, nvd_text, parse_when, split

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from nvdsync.config import Settings
    from nvdsync.store.base import Store
    from nvdsync.sync import SyncReport

__all__ = ["NVD_EPOCH", "VerifyReport", "WindowCount", "verify", "verify_async"]

log = logging.getLogger(__name__)
NVD_EPOCH = datetime(1988, 1, 1, tzinfo=UTC)  # the oldest CVE publication dates


class WindowCount(msgspec.Struct):
    start: str
    end: str
    local: int
    remote: int


class VerifyReport(msgspec.Struct):
    windows_checked: int
    local_total: int
    mismatched: list[WindowCount]
    repair: SyncReport | None = None
    remaining: list[WindowCount] | None = None  # still disagreeing after the repair

    @property
    def ok(self) -> bool:
        if self.repair is not None:
            return self.repair.ok and not self.remaining
        return not self.mismatched


def verify(settings: Settings, **kwargs: object) -> VerifyReport:
    import asyncio

    return asyncio.run(verify_async(settings, **kwargs))  # type: ignore[arg-type]


async def verify_async(
    settings: Settings,
    *,
    repair: bool = False,
    start: datetime | None = None,
    client: httpx.AsyncClient | None = None,
    store: Store | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> VerifyReport:
    """Count-check every window from ``start`` (default 1988) to now."""
    from nvdsync.store import open_store
    from nvdsync.sync import build_source, make_client, sync_async

    own_store, own_client = store is None, client is None
    store = store if store is not None else open_store(settings.db)
    client = client if client is not None else make_client(settings)
    try:
        source, retry, limiter = build_source(settings, client)

        async def check(lo: datetime, hi: datetime) -> WindowCount:
            window = Window("pub", format_nvd(lo), format_nvd(hi))

            async def remote_count() -> int:
                with await source.fetch(window, 0, 1) as body:
                    return decode_page(body.read(), start_index=0).header.total

            remote = await retry.run(f"count of {window.start}", remote_count)
            local = store.count_published(nvd_text(lo), nvd_text(hi))
            return WindowCount(window.start or "", window.end or "", local, remote)

        windows = split(start or NVD_EPOCH, now())
        mismatched = []
        for lo, hi in windows:
            counted = await check(lo, hi)
            if counted.local != counted.remote:
                log.warning("published %s -> %s: local %d, NVD %d",
                            counted.start, counted.end, counted.local, counted.remote)
                mismatched.append(counted)
        report = VerifyReport(len(windows), store.count(), mismatched)
        if repair and mismatched:
            report.repair = await sync_async(
                settings, client=client, store=store, now=now, limiter=limiter,
                repair=[Window("pub", m.start, m.end) for m in mismatched],
            )
            # Count again: a repair can only add what NVD serves, so a window with
            # more local records than NVD, or a quarantined record, still disagrees.
            report.remaining = [
                again for m in mismatched
                if (again := await check(parse_when(m.start), parse_when(m.end))).local
                != again.remote
            ]
        return report
    finally:
        if own_client:
            await client.aclose()
        if own_store:
            store.close()
