"""Memory over a run, end to end: samples stored with the run, `nvdsync runs`, the
chart, GC flags, backpressure inside a real sync, and the record cache on `show`."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from nvdsync.cli import app
from nvdsync.memory import MemoryMonitor
from nvdsync.mirror import Mirror
from nvdsync.mock import generate
from nvdsync.store import open_store
from nvdsync.store.runs import RunHistory
from nvdsync.sync import sync
from support import make_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from nvdsync.mock import MockServer

runner = CliRunner()
MB = 1024 * 1024


@pytest.fixture
def db_path(any_db: Path | str) -> Path | str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_db


@pytest.fixture
def synced(mock_nvd: Callable[..., MockServer], db_path: Path | str) -> Path | str:
    """A mirror with one full sync of 1,200 records in pages of 300."""
    server = mock_nvd(generate(1200, seed=5))
    sync(make_settings(server, db_path, page_size=300, memory_sample_seconds=0.01))
    return db_path


@contextmanager
def history(db: Path | str) -> Iterator[RunHistory]:
    store = open_store(str(db))
    try:
        found = RunHistory.of(store)
        assert found is not None
        yield found
    finally:
        store.close()


def test_a_run_stores_its_memory_figures_and_samples(synced: Path | str) -> None:
    with history(synced) as runs:
        [run] = runs.list_runs()
        samples = runs.samples(run.id)
    assert (run.outcome, run.records_written, run.gcs_run) == ("success", 1200, 0)
    assert (run.warning_mb, run.critical_mb) == (1024.0, 2048.0)
    assert run.start_rss_mb is not None and run.peak_rss_mb is not None
    assert run.growth_mb is not None and run.peak_rss_mb >= run.start_rss_mb
    pages = [s.page for s in samples if s.page is not None]
    assert pages == list(range(1, run.pages + 1))  # one mark per committed page, in order
    assert len(samples) > len(pages)  # plus the timed ones
    times = [s.t_seconds for s in samples]
    assert times == sorted(times) and times[0] == 0.0
    assert all(s.rss_mb > 0 for s in samples)


def test_runs_lists_and_shows_a_run_with_a_chart(synced: Path | str, tmp_path: Path) -> None:
    listing = runner.invoke(app, ["runs", "--db", str(synced)])
    assert listing.exit_code == 0, listing.output
    row = listing.stdout.splitlines()[1].split()
    assert row[0] == "1" and "success" in row and "1,200" in row
    shown = runner.invoke(app, ["runs", "show", "1", "--db", str(synced), "--width", "30"])
    assert shown.exit_code == 0, shown.output
    assert "run 1: full sync, success" in shown.stdout
    assert "limits    warning 1024.0 MB, critical 2048.0 MB" in shown.stdout
    chart = shown.stdout.split("RSS over time (highest per column):\n")[1].splitlines()
    assert len(chart) == 8 + 2 and all(len(line) == 13 + 30 for line in chart[:8])
    as_json = json.loads(runner.invoke(app, ["runs", "show", "1", "--db", str(synced),
                                             "--json"]).stdout)
    assert as_json["run"]["records_written"] == 1200 and as_json["samples"]


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_runs_show_plot_writes_a_chart(synced: Path | str, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"memory{suffix}"
    result = runner.invoke(app, ["runs", "show", "1", "--db", str(synced), "--plot",
                                 str(target)])
    assert result.exit_code == 0, result.output
    data = target.read_bytes()
    if suffix == ".svg":
        text = data.decode()
        assert text.lstrip().startswith("<?xml") and "<svg" in text
    else:
        assert data.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "9"], 1, "there is no run 9"),
        (["show", "1", "--plot", "chart.pdf"], 2, "as .svg or .png"),
        (["show", "1", "--plot", "no/such/dir/c.svg"], 2, "does not exist"),
        (["show", "1", "--plot", "."], 2, "as .svg or .png"),
        (["show", "1", "--plot", "taken.svg"], 1, "cannot write it"),
        (["show", "99999999999999999999"], 2, "less than or equal"),
        (["--limit", "99999999999999999999"], 2, "less than or equal"),
    ],
)
def test_runs_errors_are_clear(synced: Path | str, args: list[str], code: int,
                               message: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken.svg").mkdir()  # a directory where the chart should go
    result = runner.invoke(app, ["runs", *args, "--db", str(synced)])
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_runs_on_an_empty_mirror(db_path: Path | str) -> None:
    result = runner.invoke(app, ["runs", "--db", str(db_path)])
    assert result.exit_code == 0
    assert "no runs yet" in result.stdout


def test_gc_flags_reach_the_run(mock_nvd: Callable[..., MockServer],
                                db_path: Path | str) -> None:
    server = mock_nvd(generate(900, seed=6))
    base = ["sync", "--db", str(db_path), "--api-url", server.url, "--rate-limit", "off",
            "--page-size", "300", "--batch-size", "100", "--json"]
    result = runner.invoke(app, [*base, "--gc-every-pages", "1", "--gc-every-batches", "off",
                                 "--gc-every-db-batches", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # 3 pages of 300 + the empty catch-up page: 4 page GCs; 9 batches + the catch-up
    # page's plan-only write: 10 DB batches, so 3 more.
    assert report["gcs_run"] == 4 + 3
    bad = runner.invoke(app, [*base, "--gc-every-pages", "often"])
    assert bad.exit_code == 2
    assert "gc_every_pages" in bad.stderr


class Pressure:
    """An RSS reader that reports critical memory for a stretch of reads."""

    def __init__(self, critical_from: int, critical_until: int) -> None:
        self.reads = 0
        self.window = (critical_from, critical_until)

    def __call__(self) -> float:
        self.reads += 1
        low, high = self.window
        return (3000.0 if low <= self.reads < high else 100.0) * MB


def test_backpressure_inside_a_sync_halves_batches_and_recovers(
    mock_nvd: Callable[..., MockServer], db_path: Path | str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = mock_nvd(generate(1200, seed=8))
    monitor = MemoryMonitor(1024.0, 2048.0, rss_reader=Pressure(5, 40),
                            system_reader=lambda: (16e9, 8e9))
    settings = make_settings(server, db_path, page_size=300, batch_size=40, workers=3,
                             memory_sample_seconds=60.0)
    with caplog.at_level(logging.INFO, logger="nvdsync"):
        report = sync(settings, monitor=monitor)
    assert report.ok and report.records_written == 1200  # nothing lost under pressure
    logged = [r.getMessage() for r in caplog.records]
    assert any("backpressure on, batch size 40 -> 20, read-ahead paused" in m for m in logged)
    assert any("backpressure off, batch size" in m and "-> 40, read-ahead resumed" in m
               for m in logged)
    assert any(m.startswith("memory at critical after batch") for m in logged)
    assert report.gcs_run >= 1


def test_show_reads_through_the_mirror_cache(synced: Path | str) -> None:
    store = open_store(str(synced))
    some_id = next(iter(store.iter_raw()))
    store.close()
    cve_id = json.loads(some_id)["id"]
    with Mirror.open(make_settings_for(synced)) as mirror:
        first, second = mirror.get(cve_id), mirror.get(cve_id)
        assert first == second is not None
        record = mirror.record(cve_id)
        assert record is not None and record.id == cve_id
        info = mirror.cache_info()
        assert (info.hits, info.misses, info.size) == (2, 1, 1)
        assert mirror.get("CVE-1999-99999") is None
        mirror.cache_clear()
        assert mirror.cache_info().size == 0
    with Mirror.open(make_settings_for(synced, cache_size=0)) as mirror:
        assert mirror.get(cve_id) == first
        assert mirror.cache_info().hits == 0  # cache off
    shown = runner.invoke(app, ["show", cve_id, "--db", str(synced)])
    assert shown.exit_code == 0 and cve_id in shown.stdout
    raw = runner.invoke(app, ["show", cve_id.lower(), "--db", str(synced), "--json"])
    assert raw.exit_code == 0 and json.loads(raw.stdout)["id"] == cve_id
    missing = runner.invoke(app, ["show", "CVE-1999-99999", "--db", str(synced)])
    assert missing.exit_code == 1 and "not in the mirror" in missing.stderr


def make_settings_for(db: Path | str, **overrides: object):  # type: ignore[no-untyped-def]
    from nvdsync.config import load_settings

    return load_settings(db=str(db), **overrides)
