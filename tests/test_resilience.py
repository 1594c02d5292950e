"""Incremental sync that never loses a record: resume, faults, windows, drift, limits."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import pytest
from typer.testing import CliRunner

from nvdsync.cli import app
from nvdsync.config import Settings
from nvdsync.errors import MirrorBusy, SyncIncomplete
from nvdsync.mock import generate
from nvdsync.source.windows import parse_when
from nvdsync.store import open_store
from nvdsync.sync import SyncReport, sync, sync_async
from support import delete_record, export_values, make_settings, mock_values
from test_sync import page_requests, query

runner = CliRunner()


@pytest.fixture
def db_path(any_db: Path | str) -> Path | str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_db


def recent(records: list[bytes], days_ago: float = 1.0) -> list[bytes]:
    """The records with lastModified moved to ``days_ago`` (into a recent window)."""
    base = datetime.now(UTC) - timedelta(days=days_ago)
    out = []
    for i, raw in enumerate(records):
        value = msgspec.json.decode(raw)
        stamp = base + timedelta(seconds=i)
        value["lastModified"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + "000"
        out.append(msgspec.json.encode(value))
    return out


def set_watermark(db: Path, when: datetime) -> None:
    store = open_store(str(db))
    try:
        store.complete_sync(when)
    finally:
        store.close()


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NVDSYNC_", "NVD_"))}
    env.update({"NVDSYNC_BACKOFF_BASE": "0.01", "NVDSYNC_BACKOFF_MAX": "0.05",
                "NVDSYNC_RATE_LIMIT": "off", "NVDSYNC_TIMEOUT": "10"})
    env.update(extra)
    return env


def test_sigkill_at_random_moments_then_resume_gives_an_exact_mirror(mock_nvd, db_path):
    server = mock_nvd(generate(12_000, seed=11), page_latency=0.08)
    command = [sys.executable, "-m", "nvdsync", "sync", "--db", str(db_path),
               "--api-url", server.url, "--page-size", "200", "--no-progress", "-q"]
    rng = random.Random(2026)
    kills = resumed_checks = 0
    while kills < 6:
        plan = None
        if not isinstance(db_path, Path) or db_path.exists():
            store = open_store(str(db_path))
            plan = store.load_plan()
            store.close()
        before = len(server.stats.log)
        proc = subprocess.Popen(command, env=cli_env())
        time.sleep(rng.uniform(0.9, 2.2))
        if proc.poll() is not None:
            break  # finished before we could kill it: nothing left to interrupt
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        later = [query(e.target) for e in server.stats.log[before:]]
        window = next((w for w in plan.windows if not w.done), None) if plan else None
        starts = [int(q["startIndex"]) for q in later
                  if window is not None and q.get("lastModStartDate") == window.start]
        if starts:
            # Nothing before the first uncommitted page is fetched again. A request the
            # killed process had in flight may be logged late (always further ahead),
            # and on a loaded machine the new process may be killed before its first
            # request, so "resumed exactly there" is counted only when it was seen.
            assert min(starts) >= window.next_index
            resumed_checks += window.next_index in starts
    assert kills >= 5 and resumed_checks >= 3
    final = subprocess.run(command, env=cli_env(), timeout=120)
    assert final.returncode == 0
    assert export_values(db_path) == mock_values(server)
    store = open_store(str(db_path))
    runs = store.status(runs=20).runs
    store.close()
    assert runs[0].outcome == "success"
    assert {r.outcome for r in runs[1:]} == {"interrupted"}  # the killed ones
    # Committed pages were not downloaded again: a kill repeats at most the page being
    # committed and the one read ahead.
    starts = [q["startIndex"] for q in page_requests(server) if "lastModStartDate" not in q]
    assert len(starts) - len(set(starts)) <= 2 * kills


def test_faults_503_cut_bodies_and_403_burst_still_give_an_exact_mirror(mock_nvd, db_path):
    server = mock_nvd(generate(4000, seed=12), error_rate=0.10, cut_rate=0.05,
                      burst_403=(4, 3), seed=1)
    report = sync(make_settings(server, db_path, page_size=100, rate_limit="1000/0.2"))
    assert report.ok
    assert export_values(db_path) == mock_values(server)
    seen = server.stats.by_status
    assert seen.get(403, 0) == 3 and sum(seen.get(s, 0) for s in (502, 503, 504, 524)) > 0
    assert server.stats.cuts > 0
    assert report.retries == sum(report.retry_reasons.values()) >= 3 + server.stats.cuts
    store = open_store(str(db_path))
    try:
        assert store.status().runs[0].retries == report.retries
    finally:
        store.close()


def test_mock_down_for_good_exits_1_within_the_retry_budget(mock_nvd, db_path):
    server = mock_nvd(generate(100, seed=13))
    assert sync(make_settings(server, db_path)).ok
    store = open_store(str(db_path))
    watermark = store.get_watermark()
    store.close()
    server.config.down = True
    result = runner.invoke(app, ["sync", "--db", str(db_path), "--api-url", server.url,
                                 "--rate-limit", "off", "--max-retries", "50",
                                 "--retry-budget", "0.3", "--full", "--json"])
    assert result.exit_code == 1
    assert "retry budget" in result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "failed" and report["retries"] < 50
    store = open_store(str(db_path))
    try:
        assert store.get_watermark() == watermark
        assert store.status().runs[0].outcome == "failed"
        assert "retry budget" in (store.status().runs[0].error or "")
    finally:
        store.close()


def test_a_200_day_gap_becomes_two_windows_of_at_most_120_days(mock_nvd, db_path):
    server = mock_nvd(generate(200, seed=14))
    set_watermark(db_path, datetime.now(UTC) - timedelta(days=200))
    report = sync(make_settings(server, db_path, overlap_minutes=0))
    assert report.ok and report.mode == "incremental"
    windows = []
    for q in page_requests(server):
        pair = (q["lastModStartDate"], q["lastModEndDate"])
        if pair not in windows:
            windows.append(pair)
    assert len(windows) == 2
    spans = [parse_when(b) - parse_when(a) for a, b in windows]
    assert all(span <= timedelta(days=120) for span in spans)
    assert windows[0][1] == windows[1][0]  # contiguous
    assert sum(spans, timedelta()) >= timedelta(days=199, hours=23)


def test_records_drifting_during_a_window_are_not_lost(mock_nvd, db_path, caplog):
    data = recent(generate(3000, seed=15), days_ago=1)
    # Each of the first 6 pages modifies 4 records: they leave the window (their new
    # lastModified is after its end) and every later record shifts down.
    server = mock_nvd(data, mutate=(4, 6), seed=5)
    set_watermark(db_path, datetime.now(UTC) - timedelta(days=2))
    with caplog.at_level("WARNING", logger="nvdsync"):
        report = sync(make_settings(server, db_path, page_size=200))
    assert report.ok and report.mode == "incremental"
    assert "totalResults fell" in caplog.text
    assert export_values(db_path) == mock_values(server)


def test_client_limit_5_per_3s_draws_no_403_from_a_mock_enforcing_it(mock_nvd, db_path):
    server = mock_nvd(generate(1100, seed=16), rate_limit_anonymous=(5, 3.0))
    report = sync(make_settings(server, db_path, page_size=100, rate_limit="5/3"))
    assert report.ok and report.requests >= 12
    assert server.stats.forbidden == 0 and report.retries == 0
    assert export_values(db_path) == mock_values(server)


@pytest.mark.parametrize("workers", [1, 4])
def test_one_and_four_workers_give_the_same_mirror(mock_nvd, db_path, workers):
    server = mock_nvd(generate(5000, seed=17), page_latency=0.01)
    db = db_path
    report = sync(make_settings(server, db, page_size=300, workers=workers))
    assert report.ok and report.records_written == 5000
    assert export_values(db) == mock_values(server)


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts how many requests are in flight at once (response bodies included)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.active = self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()
        finally:
            self.active -= 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def sync_counting(settings: Settings) -> tuple[SyncReport, CountingTransport]:
    """Sync through a transport that records the most downloads in flight at once."""
    transport = CountingTransport()

    async def run() -> SyncReport:
        async with httpx.AsyncClient(transport=transport) as client:
            return await sync_async(settings, client=client)

    return asyncio.run(run()), transport


def test_four_workers_fetch_pages_concurrently(mock_nvd, db_path):
    server = mock_nvd(generate(3000, seed=18), slow_seconds=0.15)
    report, transport = sync_counting(make_settings(server, db_path, page_size=200, workers=4))
    assert report.ok and export_values(db_path) == mock_values(server)
    assert transport.peak == 4  # never more than --workers, and really in parallel


def test_verify_finds_a_deleted_record_and_repair_restores_it(mock_nvd, db_path):
    server = mock_nvd(generate(1500, seed=19))
    assert sync(make_settings(server, db_path)).ok
    victim = mock_values(server)[700]
    delete_record(db_path, victim["id"])
    base = ["--db", str(db_path), "--api-url", server.url, "--rate-limit", "off", "--json"]
    result = runner.invoke(app, ["verify", *base])
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    assert len(report["mismatched"]) == 1
    bad = report["mismatched"][0]
    assert bad["remote"] - bad["local"] == 1
    published = victim["published"]
    assert bad["start"][:23] <= published <= bad["end"][:23]
    repaired = runner.invoke(app, ["verify", "--repair", *base])
    assert repaired.exit_code == 0, repaired.stderr
    assert export_values(db_path) == mock_values(server)
    again = runner.invoke(app, ["verify", *base])
    assert again.exit_code == 0 and json.loads(again.stdout)["mismatched"] == []


def test_since_forces_windows_and_full_resyncs(mock_nvd, db_path):
    server = mock_nvd(generate(300, seed=20))
    assert sync(make_settings(server, db_path)).ok
    since = datetime.now(UTC) - timedelta(days=10)
    report = sync(make_settings(server, db_path), since=since)
    assert report.mode == "incremental"
    last = page_requests(server)[-1]
    assert parse_when(last["lastModStartDate"]) >= since - timedelta(seconds=1)
    assert sync(make_settings(server, db_path), full=True).mode == "full"


def test_incremental_picks_up_changes_since_the_watermark(mock_nvd, db_path):
    server = mock_nvd(generate(500, seed=21))
    assert sync(make_settings(server, db_path)).ok
    changed = mock_values(server)[42]["id"]
    server.dataset.modify(changed)
    before = len(server.stats.log)
    report = sync(make_settings(server, db_path))
    assert report.mode == "incremental" and report.records_written >= 1
    assert len(server.stats.log) - before <= 3  # a window or two, not a full sync
    assert export_values(db_path) == mock_values(server)
    server.config.down = True
    with pytest.raises(SyncIncomplete):
        sync(make_settings(server, db_path, max_retries=0))


def test_a_second_sync_on_the_same_mirror_is_refused(mock_nvd, db_path):
    server = mock_nvd(generate(20, seed=22))
    holder = open_store(str(db_path))
    try:
        with holder.writer_lock():
            result = runner.invoke(app, ["sync", "--db", str(db_path), "--api-url",
                                         server.url, "--rate-limit", "off"])
            assert result.exit_code == 3  # its own code: nothing failed, nothing written
            # Names the holder: this process (SQLite's lock file, PG's application_name).
            assert f"another nvdsync sync (pid {os.getpid()}" in " ".join(result.stderr.split())
            assert "--wait" in result.stderr
            assert server.stats.requests == 0
            with pytest.raises(MirrorBusy, match=r"after waiting 0\.5 s"):
                sync(make_settings(server, db_path), wait=0.5)
            assert server.stats.requests == 0
    finally:
        holder.close()
    assert sync(make_settings(server, db_path)).ok  # the lock is gone with its holder


@pytest.mark.parametrize("workers", [1, 4])
def test_pages_shorter_than_asked_leave_no_gap(mock_nvd, db_path, workers):
    """A server (or proxy) that serves fewer records than resultsPerPage asks for."""
    server = mock_nvd(generate(1000, seed=24))
    original = server.dataset.page

    def capped(query):  # type: ignore[no-untyped-def]
        page = original(query)
        return type(page)(page.total, page.records[:37])

    server.dataset.page = capped  # type: ignore[method-assign]
    db = db_path
    report = sync(make_settings(server, db, page_size=100, workers=workers))
    assert report.ok and report.records_written == 1000
    assert export_values(db) == mock_values(server)


def test_a_record_joining_the_window_behind_the_cursor_is_not_lost(mock_nvd, db_path):
    data = generate(300, seed=25)
    ordered = sorted(data, key=lambda r: (msgspec.json.decode(r)["published"],
                                          msgspec.json.decode(r)["id"]))
    # The 10 oldest keep old lastModified values (outside the window); the rest are recent.
    server = mock_nvd(ordered[:10] + recent(ordered[10:], days_ago=1))
    set_watermark(db_path, datetime.now(UTC) - timedelta(days=2))
    ids = [msgspec.json.decode(r)["id"] for r in ordered]
    original = server.dataset.page
    state = {"done": False}

    def shift(query):  # type: ignore[no-untyped-def]
        page = original(query)
        if query.start_index == 50 and not state["done"]:
            state["done"] = True
            server.dataset.modify(ids[200])  # two leave the window (modified now) ...
            server.dataset.modify(ids[250])
            # ... and an old record joins it, sorted far behind the cursor.
            server.dataset.modify(ids[3], when=datetime.now(UTC) - timedelta(hours=12))
        return page

    server.dataset.page = shift  # type: ignore[method-assign]
    report = sync(make_settings(server, db_path, page_size=50))
    assert report.ok
    stored = {v["id"]: v for v in export_values(db_path)}
    assert ids[3] in stored  # only found by reading the window again
    current = {v["id"]: v for v in mock_values(server)}
    assert stored[ids[3]] == current[ids[3]]
    assert stored[ids[200]] == current[ids[200]]  # its new version, via catch-up


def test_verify_repair_under_the_servers_limit_draws_no_403(mock_nvd, db_path):
    records = recent(generate(400, seed=26), days_ago=30)
    server = mock_nvd(records)
    assert sync(make_settings(server, db_path)).ok
    victim = mock_values(server)[123]["id"]
    delete_record(db_path, victim)
    server.config.rate_limit_anonymous = (5, 3.0)
    since = min(v["published"] for v in mock_values(server))[:10]
    result = runner.invoke(app, ["verify", "--repair", "--from", since, "--db", str(db_path),
                                 "--api-url", server.url, "--rate-limit", "5/3", "--json"])
    assert result.exit_code == 0, result.stderr
    assert server.stats.forbidden == 0
    assert export_values(db_path) == mock_values(server)


def test_verify_repair_reports_what_it_could_not_fix(mock_nvd, db_path):
    server = mock_nvd(generate(300, seed=27))
    assert sync(make_settings(server, db_path)).ok
    gone = mock_values(server)[50]["id"]
    server.dataset.delete(gone)  # NVD no longer serves it; the mirror still has it
    base = ["--db", str(db_path), "--api-url", server.url, "--rate-limit", "off", "--json"]
    result = runner.invoke(app, ["verify", "--repair", *base])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["repair"]["outcome"] == "success"
    assert [(m["local"] - m["remote"]) for m in report["remaining"]] == [1]


def test_a_join_seen_before_a_crash_still_gets_the_window_read_again(mock_nvd, db_path):
    """The "window moved" mark is saved with the cursor, so a resumed run re-reads it."""
    ordered = sorted(generate(300, seed=25), key=lambda r: (
        msgspec.json.decode(r)["published"], msgspec.json.decode(r)["id"]))
    server = mock_nvd(ordered[:10] + recent(ordered[10:], days_ago=1))
    set_watermark(db_path, datetime.now(UTC) - timedelta(days=2))
    ids = [msgspec.json.decode(r)["id"] for r in ordered]
    original = server.dataset.page
    state = {"joined": False, "crashed": False}

    def page(query):  # type: ignore[no-untyped-def]
        if query.start_index == 150 and state["joined"] and not state["crashed"]:
            state["crashed"] = True
            server.config.down = True  # NVD goes down part-way: run 1 gives up
        result = original(query)
        if query.start_index == 50 and not state["joined"]:
            state["joined"] = True
            server.dataset.modify(ids[3], when=datetime.now(UTC) - timedelta(hours=12))
        return result

    server.dataset.page = page  # type: ignore[method-assign]
    settings = make_settings(server, db_path, page_size=50, max_retries=1)
    with pytest.raises(SyncIncomplete):
        sync(settings)
    server.config.down = False
    assert sync(settings).ok
    stored = {v["id"]: v for v in export_values(db_path)}
    current = {v["id"]: v for v in mock_values(server)}
    assert stored[ids[3]] == current[ids[3]]  # found only by re-reading the window
    assert all(current[i] == v for i, v in stored.items())
    assert set(ids[10:]) <= set(stored)  # every record of the window


def test_a_total_that_keeps_jumping_fails_instead_of_paging_forever(mock_nvd, db_path):
    """Two NVD replicas with different totals behind one address: bounded, honest."""
    server = mock_nvd(generate(1000, seed=28))
    original = server.dataset.page
    calls = {"n": 0}

    def flapping(query):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        result = original(query)
        if calls["n"] % 2 == 0:  # every other answer comes from a smaller replica
            return type(result)(result.total - 150, result.records)
        return result

    server.dataset.page = flapping  # type: ignore[method-assign]
    with pytest.raises(SyncIncomplete, match="keeps changing"):
        sync(make_settings(server, db_path, page_size=100))
    assert server.stats.requests < 200
    store = open_store(str(db_path))
    try:
        assert store.get_watermark() is None
    finally:
        store.close()


def test_refetched_pages_never_exceed_the_worker_count(mock_nvd, db_path):
    server = mock_nvd(generate(2000, seed=29), slow_seconds=0.05)
    original = server.dataset.page
    garbled = {"done": False}

    def garble_once(query):  # type: ignore[no-untyped-def]
        result = original(query)
        if query.start_index == 500 and not garbled["done"]:
            garbled["done"] = True  # a complete body that is not JSON
            return type(result)(result.total, [b"{not json", *result.records[1:]])
        return result

    server.dataset.page = garble_once  # type: ignore[method-assign]
    report, transport = sync_counting(make_settings(server, db_path, page_size=100, workers=2))
    assert report.ok and report.retry_reasons.get("ParseError") == 1
    assert transport.peak <= 2
    assert export_values(db_path) == mock_values(server)
