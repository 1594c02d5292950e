"""The HTTP service (``nvdsync.server``): JSON API, status, metrics, auth, schedule, CLI."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from nvdsync.config import load_settings
from nvdsync.errors import ConfigError, MirrorBusy, StoreError
from nvdsync.mirror import Mirror
from nvdsync.mock import generate, load_bundled, serve
from nvdsync.models import CveRecord
from nvdsync.normalize import normalize
from nvdsync.server import create_app
from nvdsync.server.api import MAX_LIMIT
from nvdsync.server.schedule import SyncService, parse_duration
from nvdsync.sync import SyncReport, sync
from support import make_settings, quiet_config

with warnings.catch_warnings():
    # Starlette 1.x warns that its TestClient wants the "httpx2" fork; httpx works.
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient


TOKEN = "s3cret-token"


def mirror_records() -> list[bytes]:
    """Real records plus generated ones built from them: 2,634 records, unique ids."""
    return [*load_bundled(), *generate(2500, seed=11)]


def build_mirror(db: Path) -> list[bytes]:
    """Sync ``mirror_records()`` from a mock NVD into ``db``; return the records."""
    records = mirror_records()
    server = serve(quiet_config(), records)
    try:
        assert sync(make_settings(server, db)).ok
    finally:
        server.stop()
    return records


@pytest.fixture(scope="module")
def mirror_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    db = tmp_path_factory.mktemp("served") / "mirror.sqlite"
    return db, build_mirror(db)


@pytest.fixture
def records(mirror_db: tuple[Path, list[bytes]]) -> list[CveRecord]:
    out = [normalize(raw) for raw in mirror_db[1]]
    return [r for r in out if isinstance(r, CveRecord)]


@pytest.fixture
def client(mirror_db: tuple[Path, list[bytes]]) -> Iterator[TestClient]:
    settings = load_settings(db=str(mirror_db[0]), serve_token=TOKEN)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def ordered_ids(records: list[CveRecord]) -> list[str]:
    return [r.id for r in sorted(records, key=lambda r: (r.published, r.id))]


# --- records and search --------------------------------------------------------------


def test_healthz(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_get_cve_returns_the_stored_bytes(client: TestClient, mirror_db: Any) -> None:
    raw = mirror_db[1][0]
    cve_id = msgspec.json.decode(raw)["id"]
    answer = client.get(f"/api/cves/{cve_id.lower()}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.content == raw


def test_get_cve_unknown_and_malformed_ids(client: TestClient) -> None:
    missing = client.get("/api/cves/CVE-1999-99999999")
    assert missing.status_code == 404
    assert "CVE-1999-99999999 is not in the mirror" in missing.json()["detail"]
    bad = client.get("/api/cves/not-a-cve")
    assert bad.status_code == 400
    assert "cve_id" in bad.json()["detail"]


def test_search_pages_cover_the_kev_records_in_order(
    client: TestClient, records: list[CveRecord]
) -> None:
    expected = ordered_ids([r for r in records if r.kev is not None
                            and r.kev.date_added is not None])
    seen: list[str] = []
    for offset in range(0, len(expected) + 7, 7):
        body = client.get("/api/cves", params={"kev": "true", "offset": offset,
                                               "limit": 7}).json()
        assert body["total"] == len(expected)
        assert body["count"] == len(body["cves"])
        seen += [cve["id"] for cve in body["cves"]]
    assert seen == expected


def test_search_by_severity_and_date(client: TestClient, records: list[CveRecord]) -> None:
    # --severity is on the record's best score: v4, else v3, else v2.
    def best(r: CveRecord) -> str | None:
        score = r.cvss_v4 or r.cvss_v3 or r.cvss_v2
        return score.severity if score else None

    expected = ordered_ids([r for r in records if best(r) == "CRITICAL"
                            and r.published >= "2022-01-01T00:00:00.000"])
    assert expected
    body = client.get("/api/cves", params={"severity": "critical", "limit": MAX_LIMIT,
                                           "published_since": "2022-01-01"}).json()
    assert [cve["id"] for cve in body["cves"]] == expected
    assert body["total"] == len(expected)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": MAX_LIMIT + 1}, "limit"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"severity": "extreme"}, "severity"),
        ({"min_score": 11}, "min_score"),
        ({"cwe": "79"}, "cwe"),
        ({"published_since": "yesterday"}, "published_since"),
        ({"modified_until": "2024-13-45"}, "modified_until"),
        ({"cpe": "cpe:2.3:a:*:*:1.0:*:*:*:*:*:*:*"}, "cpe"),
        ({"cpe": "log4j"}, "cpe"),
        ({"kev": "maybe"}, "kev"),
    ],
)
def test_bad_search_parameters_get_400_naming_them(
    client: TestClient, params: dict[str, Any], named: str
) -> None:
    answer = client.get("/api/cves", params=params)
    assert answer.status_code == 400
    assert named in answer.json()["detail"]


# --- status, metrics, errors ------------------------------------------------------------


def test_status_reports_the_mirror(client: TestClient, mirror_db: Any) -> None:
    body = client.get("/api/status").json()
    assert body["records"] == len(mirror_db[1])
    assert body["watermark"] is not None
    assert body["runs"][0]["outcome"] == "success"
    assert body["service_sync"] == {"every_seconds": None, "running": None, "last": None,
                                    "next_due": None}


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text exposition, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if labels else name):
            return float(value)
    return None


def test_metrics(client: TestClient, mirror_db: Any) -> None:
    for _ in range(3):
        client.get("/api/cves/CVE-2021-44228")
    client.get("/no/such/path")
    text = client.get("/metrics").text
    assert metric(text, "nvdsync_records") == len(mirror_db[1])
    assert metric(text, "nvdsync_http_requests_total", method="GET",
                  route="/api/cves/{cve_id}", status="404") == 3
    assert metric(text, "nvdsync_http_requests_total", method="GET",
                  route="<unmatched>", status="404") == 1
    assert metric(text, "nvdsync_http_request_duration_seconds_count", method="GET",
                  route="/api/cves/{cve_id}") == 3
    rss, peak = metric(text, "nvdsync_rss_bytes"), metric(text, "nvdsync_rss_peak_bytes")
    assert rss is not None and peak is not None and 0 < rss <= peak
    assert metric(text, "nvdsync_last_run_info", mode="full", outcome="success") == 1


def test_metrics_count_cache_hits_and_misses(client: TestClient, records: Any) -> None:
    cve_id = records[0].id
    for _ in range(3):
        assert client.get(f"/api/cves/{cve_id}").status_code == 200
    text = client.get("/metrics").text
    assert metric(text, "nvdsync_cache_misses_total") == 1
    assert metric(text, "nvdsync_cache_hits_total") == 2
    assert metric(text, "nvdsync_cache_size") == 1


def test_client_chosen_methods_share_one_metric_label(client: TestClient) -> None:
    for verb in ("FOO1", "FOO2", "BREW"):
        client.request(verb, "/healthz")
    text = client.get("/metrics").text
    assert "FOO1" not in text and "BREW" not in text
    assert metric(text, "nvdsync_http_requests_total", method="OTHER", route="/healthz",
                  status="405") == 3


def test_two_apps_in_one_process_have_separate_metrics(mirror_db: Any) -> None:
    settings = load_settings(db=str(mirror_db[0]))
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        first.get("/healthz")
        text = second.get("/metrics").text
    assert metric(text, "nvdsync_http_requests_total", method="GET", route="/healthz",
                  status="200") is None


class _BrokenMirror(Mirror):
    def status(self) -> Any:
        raise StoreError("database /x is unreadable: disk I/O error")

    def get(self, cve_id: str) -> bytes | None:
        raise StoreError("database /x is unreadable: disk I/O error")


def test_an_unreadable_database_is_503_with_the_reason(mirror_db: Any) -> None:
    mirror = _BrokenMirror(Mirror.open(load_settings(db=str(mirror_db[0]))).store)
    with TestClient(create_app(mirror)) as broken:
        answers = [broken.get("/api/status"), broken.get("/api/cves/CVE-2021-44228")]
    mirror.close()
    for answer in answers:
        assert answer.status_code == 503
        assert "disk I/O error" in answer.json()["detail"]


# --- POST /api/sync, the schedule ------------------------------------------------------


def _report(outcome: str = "success") -> SyncReport:
    return SyncReport(run_id=7, mode="incremental", outcome=outcome, resumed=False, db="x",
                      pages=2, records_written=5, retries=3,
                      retry_reasons={"rate_limited": 2, "server_error": 1})


def test_post_sync_needs_the_configured_token(mirror_db: Any) -> None:
    started = threading.Event()

    def fake_sync(_settings: Any) -> SyncReport:
        started.set()
        return _report()

    settings = load_settings(db=str(mirror_db[0]), serve_token=TOKEN)
    with TestClient(create_app(settings, sync_fn=fake_sync)) as api:
        assert api.post("/api/sync").status_code == 401
        wrong = api.post("/api/sync", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "Bearer" in wrong.json()["detail"]
        assert not started.is_set()
        ok = api.post("/api/sync", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 202
        assert started.wait(10)
        for _ in range(200):  # the background thread records its outcome right after
            last = api.get("/api/status").json()["service_sync"]["last"]
            if last is not None:
                break
            time.sleep(0.02)
        assert last["outcome"] == "success" and last["trigger"] == "api"
        assert last["retry_reasons"] == {"rate_limited": 2, "server_error": 1}
        text = api.get("/metrics").text
    assert metric(text, "nvdsync_service_sync_runs_total", outcome="success") == 1
    assert metric(text, "nvdsync_service_sync_retries_total", reason="rate_limited") == 2
    assert metric(text, "nvdsync_service_sync_records_total") == 5


def test_post_sync_is_disabled_without_a_token(mirror_db: Any) -> None:
    with TestClient(create_app(load_settings(db=str(mirror_db[0])))) as api:
        answer = api.post("/api/sync", headers={"Authorization": "Bearer anything"})
    assert answer.status_code == 403
    assert "--token" in answer.json()["detail"]


def test_a_second_sync_request_while_one_runs_is_409(mirror_db: Any) -> None:
    release = threading.Event()

    def slow_sync(_settings: Any) -> SyncReport:
        release.wait(10)
        return _report()

    settings = load_settings(db=str(mirror_db[0]), serve_token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(settings, sync_fn=slow_sync)) as api:
        assert api.post("/api/sync", headers=auth).status_code == 202
        assert api.post("/api/sync", headers=auth).status_code == 409
        assert api.get("/api/status").json()["service_sync"]["running"]["trigger"] == "api"
        release.set()


def test_scheduled_syncs_never_overlap_and_failures_are_recorded() -> None:
    active, most, calls = 0, 0, 0
    lock = threading.Lock()
    done = threading.Event()

    def fake_sync(_settings: Any) -> SyncReport:
        nonlocal active, most, calls
        with lock:
            active += 1
            most = max(most, active)
            calls += 1
            n = calls
        time.sleep(0.03)  # longer than the period: ticks arrive while it runs
        with lock:
            active -= 1
        if n >= 3:
            done.set()
        if n == 2:
            raise StoreError("the mirror cannot be written")
        return _report()

    attempts: list[str] = []
    service = SyncService(load_settings(), every=0.01, sync_fn=fake_sync,
                          on_done=lambda a: attempts.append(a.outcome))
    service.start()
    try:
        assert done.wait(10)
    finally:
        service.stop()
    assert most == 1
    assert attempts[:3] == ["success", "failed", "success"]


def test_a_sync_held_off_by_another_writer_is_skipped_not_failed() -> None:
    def busy(_settings: Any) -> SyncReport:
        raise MirrorBusy("the mirror", "pid 1 on host")

    attempt = SyncService(load_settings(), sync_fn=busy).run_once()
    assert attempt is not None and attempt.outcome == "skipped"
    assert "pid 1" in (attempt.error or "")


def test_a_crashing_sync_does_not_kill_the_service() -> None:
    def broken(_settings: Any) -> SyncReport:
        raise RuntimeError("boom")

    service = SyncService(load_settings(), sync_fn=broken)
    attempt = service.run_once()
    assert attempt is not None and attempt.outcome == "error"
    assert attempt.error == "RuntimeError: boom"
    assert not service.running


@pytest.mark.parametrize(("text", "seconds"),
                         [("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400),
                          ("90s", 90), (" 2H ", 7200)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "2 hours", "-5m", "0m", "1h-30m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="sync_every"):
        parse_duration(text)


def test_a_sync_run_by_the_service_clears_the_record_cache(tmp_path: Path) -> None:
    from nvdsync.store import open_store

    first = load_bundled()[0]
    original = normalize(first)
    assert isinstance(original, CveRecord)
    db = str(tmp_path / "m.sqlite")
    with open_store(db) as store:
        store.write_batch([original])
    data = msgspec.json.decode(first)
    data["lastModified"] = "2099-01-01T00:00:00.000"
    newer = normalize(msgspec.json.encode(data))
    assert isinstance(newer, CveRecord)

    def fake_sync(settings: Any) -> SyncReport:
        with open_store(settings.db) as store:  # another connection, as a real sync
            store.write_batch([newer])
        return _report()

    settings = load_settings(db=db, serve_token=TOKEN)
    with TestClient(create_app(settings, sync_fn=fake_sync)) as api:
        url = f"/api/cves/{original.id}"
        assert api.get(url).json()["lastModified"] == original.last_modified
        assert api.get(url).json()["lastModified"] == original.last_modified  # cached
        ok = api.post("/api/sync", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 202
        for _ in range(500):  # the background thread records its outcome when done
            if api.get("/api/status").json()["service_sync"]["last"] is not None:
                break
            time.sleep(0.02)
        assert api.get(url).json()["lastModified"] == "2099-01-01T00:00:00.000"


def test_a_failing_after_sync_hook_does_not_stop_the_schedule() -> None:
    calls: list[str] = []
    done = threading.Event()

    def hook(attempt: Any) -> None:
        calls.append(attempt.outcome)
        if len(calls) >= 2:
            done.set()
        raise RuntimeError("metrics backend down")

    service = SyncService(load_settings(), every=0.01, sync_fn=lambda _s: _report(),
                          on_done=hook)
    service.start()
    try:
        assert done.wait(10)  # a second scheduled run happened after the hook raised
    finally:
        service.stop()
