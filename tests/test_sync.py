"""Full sync against the mock NVD: paging, exact mirror, catch-up, quarantine, 404s."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest
from typer.testing import CliRunner

from nvdsync.cli import app
from nvdsync.errors import SyncIncomplete
from nvdsync.mock import generate
from nvdsync.store import open_store
from nvdsync.sync import sync
from support import export_values, make_settings, mock_values

runner = CliRunner()


@pytest.fixture
def db_path(any_db: Path | str) -> Path | str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_db


def query(target: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}


def page_requests(server) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return [query(e.target) for e in server.stats.log if e.status == 200]


def test_full_sync_of_10k_records_exports_the_mocks_data(mock_nvd, db_path, generated_10k):
    server = mock_nvd(generated_10k)
    report = sync(make_settings(server, db_path))
    assert report.ok and report.mode == "full"
    assert report.records_written == 10_000
    exported = export_values(db_path)
    assert len(exported) == 10_000
    assert exported == mock_values(server)  # same JSON values, same order
    # Pages of 2000 with startIndex paging, then one catch-up window request.
    starts = [q.get("startIndex") for q in page_requests(server)]
    assert starts[:5] == ["0", "2000", "4000", "6000", "8000"]
    assert "lastModStartDate" in page_requests(server)[-1]
    store = open_store(str(db_path))
    try:
        status = store.status()
        assert status.records == 10_000 and status.watermark is not None
        assert status.runs[0].outcome == "success" and status.runs[0].records_written == 10_000
        assert not status.pending_plan
    finally:
        store.close()


def test_paging_reads_the_empty_page_past_the_end(mock_nvd, db_path):
    """A shrinking result set leaves our cursor past the end: NVD answers 200 + []."""
    records = generate(300, seed=3)
    server = mock_nvd(records)
    state = {"deleted": False}
    original = server.dataset.page

    def page_then_shrink(q):  # type: ignore[no-untyped-def]
        page = original(q)
        if q.start_index == 100 and not state["deleted"]:
            state["deleted"] = True  # 150 records vanish after the second page was built
            for raw in records[:150]:
                server.dataset.delete(msgspec.json.decode(raw)["id"])
        return page

    server.dataset.page = page_then_shrink  # type: ignore[method-assign]
    report = sync(make_settings(server, db_path, page_size=100))
    assert report.ok
    starts = [int(q["startIndex"]) for q in page_requests(server) if "lastModStartDate" not in q]
    # startIndex=200 is past the new end (150): an empty page, then a rewind.
    assert 200 in starts and starts[starts.index(200) + 1] < 200
    exported = {v["id"] for v in export_values(db_path)}
    assert {v["id"] for v in mock_values(server)} <= exported


def test_records_modified_during_full_sync_arrive_via_catch_up(mock_nvd, db_path):
    records = generate(3000, seed=5)
    # Every served page modifies 5 records (lastModified = now) for the first 3 pages.
    server = mock_nvd(records, mutate=(5, 3))
    report = sync(make_settings(server, db_path, page_size=500))
    assert report.ok
    assert export_values(db_path) == mock_values(server)
    modified = [v for v in mock_values(server) if v["vulnStatus"] == "Modified"
                and v["lastModified"] >= report.watermark[:10]]
    assert modified, "the mock should have modified records during the sync"
    assert any("lastModStartDate" in q for q in page_requests(server))


def test_malformed_record_is_quarantined_and_the_rest_syncs(mock_nvd, db_path, real_records):
    bad_type = json.loads(real_records[0])
    bad_type["published"] = 123
    missing = json.loads(real_records[1])
    del missing["lastModified"]
    data = [json.dumps(bad_type).encode(), json.dumps(missing).encode(), *real_records[2:]]
    server = mock_nvd(data)
    report = sync(make_settings(server, db_path, batch_size=7))
    assert report.ok and report.records_quarantined == 2
    assert report.records_written == len(real_records) - 2
    result = runner.invoke(app, ["status", "--db", str(db_path), "--json"])
    status = json.loads(result.stdout)
    assert status["quarantined"] == 2 and status["records"] == len(real_records) - 2


def test_bad_record_never_overwrites_a_stored_one(mock_nvd, db_path, real_records):
    server = mock_nvd(real_records)
    assert sync(make_settings(server, db_path)).ok
    victim = json.loads(real_records[5])
    broken = dict(victim, lastModified="2099-01-01T00:00:00.000", published=None)
    server.dataset.put(json.dumps(broken).encode())
    report = sync(make_settings(server, db_path), full=True)
    assert report.records_quarantined == 1
    store = open_store(str(db_path))
    try:
        assert json.loads(store.get_raw(victim["id"]) or b"null") == victim
    finally:
        store.close()


def test_invalid_api_key_exits_1_with_nvds_message(mock_nvd, db_path):
    server = mock_nvd(generate(10, seed=1), valid_api_keys={"good-key"})
    result = runner.invoke(app, ["sync", "--db", str(db_path), "--api-url", server.url,
                                 "--api-key", "bad-key", "--rate-limit", "off"])
    assert result.exit_code == 1
    assert "Invalid apiKey." in result.stderr
    assert "bad-key" not in result.stdout + result.stderr  # the key is never printed
    store = open_store(str(db_path))
    try:
        assert store.get_watermark() is None and store.count() == 0
        assert store.status().runs[0].outcome == "failed"
    finally:
        store.close()


def test_results_per_page_404_falls_back_to_1000(mock_nvd, db_path):
    server = mock_nvd(generate(2500, seed=2), max_page_size=1000)
    report = sync(make_settings(server, db_path))
    assert report.ok and report.records_written == 2500
    sizes = [q["resultsPerPage"] for q in (query(e.target) for e in server.stats.log)]
    assert sizes[0] == "2000" and set(sizes[1:]) == {"1000"}
    assert export_values(db_path) == mock_values(server)


def test_show_json_gives_back_every_real_record_unchanged(mock_nvd, db_path, real_records):
    server = mock_nvd(real_records)
    assert sync(make_settings(server, db_path)).ok
    for line in real_records:
        cve_id = json.loads(line)["id"]
        result = runner.invoke(app, ["show", cve_id, "--db", str(db_path), "--json"])
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout) == json.loads(line)
        assert result.stdout_bytes.rstrip(b"\n") == line  # byte for byte, even


def test_show_summary_and_unknown_id(mock_nvd, db_path, real_records):
    server = mock_nvd(real_records)
    assert sync(make_settings(server, db_path)).ok
    result = runner.invoke(app, ["show", "cve-2024-1086", "--db", str(db_path)])
    assert result.exit_code == 0 and "CISA KEV" in result.stdout
    missing = runner.invoke(app, ["show", "CVE-1900-0001", "--db", str(db_path)])
    assert missing.exit_code == 1 and "not in the mirror" in missing.stderr


def test_export_cli_to_file_is_ordered_jsonl(mock_nvd, db_path, tmp_path: Path):
    server = mock_nvd(generate(700, seed=9))
    assert sync(make_settings(server, db_path, page_size=300)).ok
    out = tmp_path / "all.jsonl"
    result = runner.invoke(app, ["export", "--db", str(db_path), "--out", str(out)])
    assert result.exit_code == 0
    lines = [json.loads(x) for x in out.read_bytes().splitlines()]
    assert lines == mock_values(server)
    assert [(v["published"], v["id"]) for v in lines] == sorted(
        (v["published"], v["id"]) for v in lines)


def test_failed_sync_raises_and_keeps_the_watermark(mock_nvd, db_path):
    server = mock_nvd(generate(50, seed=4))
    settings = make_settings(server, db_path, max_retries=1)
    first = sync(settings)
    server.config.down = True
    with pytest.raises(SyncIncomplete) as info:
        sync(settings, full=True)
    assert info.value.report.outcome == "failed"  # type: ignore[attr-defined]
    store = open_store(str(db_path))
    try:
        assert store.get_watermark().isoformat() == first.watermark  # type: ignore[union-attr]
    finally:
        store.close()


def test_progress_bar_and_plain_log_lines(mock_nvd, db_path):
    server = mock_nvd(generate(900, seed=6))
    base = ["sync", "--db", str(db_path), "--api-url", server.url, "--rate-limit", "off",
            "--page-size", "300"]
    bar = runner.invoke(app, [*base, "--progress"])
    assert bar.exit_code == 0, bar.stderr
    assert "window 2/2" in bar.stderr and "pages" in bar.stderr and "rec/s" in bar.stderr
    plain = runner.invoke(app, [*base, "--full", "--no-progress"])
    assert plain.exit_code == 0
    assert plain.stderr.count("page startIndex=") == 3 + 1  # 3 pages + the catch-up page
    assert "memory at start of sync:" in plain.stderr and "memory statistics: peak" in plain.stderr
    assert "system memory: " in plain.stderr


def test_sync_events_report_progress_per_page(mock_nvd, db_path):
    server = mock_nvd(generate(1000, seed=8))
    events = []
    report = sync(make_settings(server, db_path, page_size=250), on_page=events.append)
    assert [e.records for e in events[:4]] == [250, 500, 750, 1000]
    assert events[3].total == 1000 and events[-1].pages == report.pages == 5
    assert events[-1].written == report.records_written == 1000


def test_the_same_bad_record_is_quarantined_once(mock_nvd, db_path, real_records):
    bad = json.loads(real_records[0])
    del bad["lastModified"]
    server = mock_nvd([json.dumps(bad).encode(), *real_records[1:]])
    assert sync(make_settings(server, db_path)).records_quarantined == 1
    assert sync(make_settings(server, db_path), full=True).ok  # sees it again
    store = open_store(str(db_path))
    try:
        assert store.status().quarantined == 1
    finally:
        store.close()
