"""Backpressure end to end: while memory reads critical, no download starts beyond the
cursor's own page and batches shrink; the mirror is still exact."""

from __future__ import annotations

import time
from typing import Any

import pytest

from nvdsync.memory import MemoryMonitor
from nvdsync.mock import generate
from nvdsync.pipeline import Runner
from nvdsync.source.nvd import NvdSource
from nvdsync.store import SqlStore
from nvdsync.sync import sync
from support import export_values, make_settings, mock_values

MB = 2**20


def traced_sync(monkeypatch: pytest.MonkeyPatch, settings: Any, rss_mb: float
                ) -> tuple[list[int], list[int]]:
    """Run a sync whose memory always reads ``rss_mb``.

    Returns the startIndex of each download begun before the previous page was
    committed (read-ahead), and the size of every batch written.
    """
    committed: set[int] = set()
    early: list[int] = []
    batches: list[int] = []
    fetch, write_page = NvdSource.fetch, Runner._write_page
    write_batch = SqlStore.write_batch
    step = settings.page_size

    async def traced_fetch(self: NvdSource, window: Any, start: int, size: int) -> Any:
        if start and start - step not in committed:
            early.append(start)
        return await fetch(self, window, start, size)

    def slow_write_page(self: Runner, plan: Any, index: int, body: Any, cursor: int) -> Any:
        time.sleep(0.05)  # a slow disk: gives read-ahead the time to start
        try:
            return write_page(self, plan, index, body, cursor)
        finally:
            committed.add(cursor)

    def counted_batch(self: SqlStore, records: Any, *args: Any, **kwargs: Any) -> int:
        batches.append(len(records))
        return write_batch(self, records, *args, **kwargs)

    monkeypatch.setattr(NvdSource, "fetch", traced_fetch)
    monkeypatch.setattr(Runner, "_write_page", slow_write_page)
    monkeypatch.setattr(SqlStore, "write_batch", counted_batch)
    monitor = MemoryMonitor(100, 200, rss_reader=lambda: rss_mb * MB,
                            system_reader=lambda: (8e9, 16e9), collector=lambda: 0)
    report = sync(settings, monitor=monitor)
    assert report.ok
    return early, batches


@pytest.mark.parametrize("workers", [1, 3])
def test_critical_memory_pauses_read_ahead_and_halves_batches(
        mock_nvd, db_path, monkeypatch, workers):
    server = mock_nvd(generate(3000, seed=5))
    settings = make_settings(server, db_path, page_size=200, workers=workers)
    early, batches = traced_sync(monkeypatch, settings, rss_mb=300)
    # The first page is read before memory is first checked; after that, none early.
    assert [i for i in early if i > settings.page_size] == []
    # Memory is read after each batch: the first is whole, then halved at once and
    # halved again after each page still critical, down to one record.
    assert batches[0] == 50
    assert max(batches[1:]) <= 25
    assert batches[-1] == 1
    assert export_values(db_path) == mock_values(server)


def test_normal_memory_reads_ahead_while_committing(mock_nvd, db_path, monkeypatch):
    # The same run under normal memory: the probe does see read-ahead, so an
    # empty list there means the pause worked, not that the probe is blind.
    server = mock_nvd(generate(3000, seed=5))
    settings = make_settings(server, db_path, page_size=200, workers=3)
    early, batches = traced_sync(monkeypatch, settings, rss_mb=50)
    assert early
    assert max(batches) == 50
    assert export_values(db_path) == mock_values(server)
