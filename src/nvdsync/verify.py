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

    @property
    def ok(self) -> bool:
        repaired = self.repair is not None and self.repair.ok
        return not self.mismatched or repaired


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
        source, retry, _ = build_source(settings, client)
        windows = split(start or NVD_EPOCH, now())
        mismatched: list[WindowCount] = []
        for lo, hi in windows:
            window = Window("pub", format_nvd(lo), format_nvd(hi))

            async def remote_count(window: Window = window) -> int:
                with await source.fetch(window, 0, 1) as body:
                    return decode_page(body.read(), start_index=0).header.total

            remote = await retry.run(f"count of {window.start}", remote_count)
            local = store.count_published(nvd_text(lo), nvd_text(hi))
            if local != remote:
                log.warning("published %s -> %s: local %d, NVD %d",
                            window.start, window.end, local, remote)
                mismatched.append(WindowCount(window.start or "", window.end or "",
                                              local, remote))
        report = VerifyReport(len(windows), store.count(), mismatched)
        if repair and mismatched:
            report.repair = await sync_async(
                settings, client=client, store=store, now=now,
                repair=[Window("pub", m.start, m.end) for m in mismatched],
            )
        return report
    finally:
        if own_client:
            await client.aclose()
        if own_store:
            store.close()


def parse_start(text: str | None) -> datetime | None:
    return parse_when(text) if text else None
