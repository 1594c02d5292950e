"""The Store contract, run against SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError

from nvdsync.errors import StoreError
from nvdsync.models import CpeMatch, Quarantined, RunInfo, SyncPlan, Window

if TYPE_CHECKING:
    from collections.abc import Callable

    from nvdsync.models import CveRecord
    from nvdsync.store import SqlStore

    MakeRecord = Callable[..., CveRecord]
    RowCount = Callable[..., int]


def _plan(run_id: int = 1, next_index: int = 0) -> SyncPlan:
    return SyncPlan(
        run_id=run_id,
        mode="full",
        started_at="2024-05-01T00:00:00+00:00",
        windows=[Window(kind="all", next_index=next_index, total=1234)],
    )


def test_empty_store(store: SqlStore) -> None:
    assert store.count() == 0
    assert store.get_raw("CVE-2024-0001") is None
    assert store.get_record("CVE-2024-0001") is None
    assert store.get_watermark() is None
    assert store.load_plan() is None
    assert list(store.iter_raw()) == []
    status = store.status()
    assert (status.records, status.quarantined, status.pending_plan) == (0, 0, False)
    assert status.watermark is None
    assert status.runs == []
    assert status.location == store.location


def test_record_round_trip(store: SqlStore, make_record: MakeRecord) -> None:
    record = make_record("CVE-2024-0001", cpes=3, refs=3, cwes=("CWE-79", "CWE-89"), kev=True)
    assert store.write_batch([record]) == 1
    assert store.get_record("CVE-2024-0001") == record
    assert store.get_raw("CVE-2024-0001") == record.raw
    assert store.count() == 1


def test_newer_replaces_and_children_are_replaced(
    store: SqlStore, make_record: MakeRecord, row_count: RowCount
) -> None:
    old = make_record("CVE-2024-0001", last_modified="2024-01-02T00:00:00.000", cpes=5, refs=4)
    new = make_record(
        "CVE-2024-0001",
        last_modified="2024-03-01T10:00:00.000",
        cpes=1,
        refs=2,
        cwes=("CWE-20",),
        description="Updated.",
    )
    store.write_batch([old])
    assert store.write_batch([new]) == 1
    assert store.get_record(new.id) == new
    assert row_count(store, "cve_cpe_matches", cve_id=new.id) == 1
    assert row_count(store, "cve_references", cve_id=new.id) == 2
    assert row_count(store, "cve_cwes", cve_id=new.id) == 1


def test_older_is_ignored(store: SqlStore, make_record: MakeRecord, row_count: RowCount) -> None:
    new = make_record("CVE-2024-0001", last_modified="2024-03-01T10:00:00.000", cpes=2)
    old = make_record(
        "CVE-2024-0001", last_modified="2024-03-01T09:59:59.999", cpes=4, description="Old."
    )
    store.write_batch([new])
    assert store.write_batch([old]) == 0
    assert store.get_record(new.id) == new
    assert row_count(store, "cve_cpe_matches") == 2


def test_equal_last_modified_replaces(
    store: SqlStore, make_record: MakeRecord, row_count: RowCount
) -> None:
    first = make_record("CVE-2024-0001", cpes=3, refs=3)
    second = make_record("CVE-2024-0001", cpes=3, refs=3, description="Same time, new text.")
    store.write_batch([first])
    assert store.write_batch([second]) == 1
    assert store.get_record(first.id) == second
    assert row_count(store, "cve_cpe_matches") == 3
    assert row_count(store, "cve_references") == 3


def test_duplicate_ids_in_one_batch_keep_the_newest(
    store: SqlStore, make_record: MakeRecord, row_count: RowCount
) -> None:
    a1 = make_record("CVE-2024-0001", last_modified="2024-02-01T00:00:00.000", description="1")
    a2 = make_record("CVE-2024-0001", last_modified="2024-04-01T00:00:00.000", description="2")
    a0 = make_record("CVE-2024-0001", last_modified="2024-01-01T00:00:00.000", description="0")
    b1 = make_record("CVE-2024-0002", description="b first")
    b2 = make_record("CVE-2024-0002", description="b second")  # same time: later wins
    assert store.write_batch([a1, b1, a2, a0, b2]) == 2
    assert store.get_record(a1.id) == a2
    assert store.get_record(b1.id) == b2
    assert row_count(store, "cve_cpe_matches") == 4


def test_large_batch_replaced_in_place(
    store: SqlStore, make_record: MakeRecord, row_count: RowCount
) -> None:
    # More ids than one IN (...) list holds.
    ids = [f"CVE-2023-{n:05d}" for n in range(1200)]
    assert store.write_batch([make_record(i, cpes=1, refs=1) for i in ids]) == 1200
    newer = [make_record(i, last_modified="2024-06-01T00:00:00.000", cpes=2) for i in ids]
    assert store.write_batch(newer) == 1200
    assert store.count() == 1200
    assert row_count(store, "cve_cpe_matches") == 2400
    assert row_count(store, "cve_references") == 2400
    assert store.get_record(ids[-1]) == newer[-1]


def test_quarantine_rows_and_counts(store: SqlStore, make_record: MakeRecord) -> None:
    held = [
        Quarantined(raw=b'{"id":"CVE-2024-0009"', reason="truncated JSON", cve_id="CVE-2024-0009"),
        Quarantined(raw=b"{}", reason="no id"),
    ]
    assert store.write_batch([make_record("CVE-2024-0001")], held) == 1
    assert store.write_batch([], held[:1]) == 0  # the same bad record, seen again
    assert store.status().quarantined == 2
    other = Quarantined(raw=b'{"id":"CVE-2024-0009","x"', reason="truncated JSON",
                        cve_id="CVE-2024-0009")  # same id, different text: kept
    store.write_batch([], [other])
    assert store.status().quarantined == 3
    assert store.count() == 1


def test_plan_saved_with_batch(store: SqlStore, make_record: MakeRecord) -> None:
    plan = _plan(next_index=2000)
    store.write_batch([make_record("CVE-2024-0001")], plan=plan)
    assert store.load_plan() == plan
    assert store.status().pending_plan
    store.write_batch([make_record("CVE-2024-0002")])  # no plan: the saved one stays
    assert store.load_plan() == plan
    newer = _plan(next_index=4000)
    store.write_batch([], plan=newer)
    assert store.load_plan() == newer
    store.save_plan(None)
    assert store.load_plan() is None
    assert not store.status().pending_plan
    store.save_plan(plan)
    assert store.load_plan() == plan


def test_failing_batch_rolls_back_records_and_plan(
    store: SqlStore, make_record: MakeRecord, row_count: RowCount
) -> None:
    before = make_record("CVE-2024-0001", cpes=2)
    store.write_batch([before], plan=_plan(next_index=50))
    changed = make_record("CVE-2024-0001", last_modified="2024-05-01T00:00:00.000", cpes=4)
    broken = make_record("CVE-2024-0002")
    bad_match: Any = CpeMatch(None, "a", "x", "y", "1", True)  # type: ignore[arg-type]
    # A NULL criteria violates NOT NULL after the record rows were already written.
    broken = msgspec.structs.replace(broken, cpe_matches=(bad_match,))
    held = [Quarantined(raw=b"x", reason="bad")]

    with pytest.raises(StoreError, match="writing a batch") as info:
        store.write_batch([changed, broken], held, plan=_plan(next_index=100))
    assert isinstance(info.value.__cause__, SQLAlchemyError)

    assert store.count() == 1
    assert store.get_record(before.id) == before
    assert row_count(store, "cve_cpe_matches") == 2
    assert store.status().quarantined == 0
    assert store.load_plan() == _plan(next_index=50)


def test_failure_while_saving_plan_rolls_back_records(
    store: SqlStore, make_record: MakeRecord
) -> None:
    store.write_batch([], plan=_plan(next_index=50))
    dbapi = store.engine.dialect.loaded_dbapi

    def fail_on_state(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO STATE"):
            raise dbapi.OperationalError("forced failure while saving the plan")

    event.listen(store.engine, "before_cursor_execute", fail_on_state)
    try:
        with pytest.raises(StoreError, match="forced failure"):
            store.write_batch(
                [make_record("CVE-2024-0001")],
                [Quarantined(raw=b"x", reason="bad")],
                plan=_plan(next_index=100),
            )
    finally:
        event.remove(store.engine, "before_cursor_execute", fail_on_state)
    assert store.count() == 0
    assert store.status().quarantined == 0
    assert store.load_plan() == _plan(next_index=50)


def test_iter_raw_orders_by_published_then_id_across_pages(
    store: SqlStore, make_record: MakeRecord
) -> None:
    # Few distinct published values so page boundaries (500 rows) fall inside ties.
    days = ["2024-01-03T00:00:00.000", "2023-12-31T23:59:59.999", "2024-01-01T00:00:00.000"]
    records = [make_record(f"CVE-2024-{n:05d}", days[n % 3], cpes=0, refs=0) for n in range(1234)]
    for start in range(0, len(records), 400):
        store.write_batch(records[start : start + 400][::-1])
    statements: list[str] = []

    def record_select(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
        if "FROM cves" in statement:
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", record_select)
    try:
        got = list(store.iter_raw())
    finally:
        event.remove(store.engine, "before_cursor_execute", record_select)
    expected = [r.raw for r in sorted(records, key=lambda r: (r.published, r.id))]
    assert got == expected
    # Pages, not one query for the whole table.
    assert len(statements) == 3
    assert all("LIMIT" in s.upper() for s in statements)


def test_count_published_is_inclusive(store: SqlStore, make_record: MakeRecord) -> None:
    times = [
        "2024-01-31T23:59:59.999",
        "2024-02-01T00:00:00.000",
        "2024-02-15T12:00:00.000",
        "2024-02-29T23:59:59.999",
        "2024-03-01T00:00:00.000",
    ]
    store.write_batch([make_record(f"CVE-2024-000{n}", t) for n, t in enumerate(times)])
    assert store.count_published("2024-02-01T00:00:00.000", "2024-02-29T23:59:59.999") == 3
    assert store.count_published("2024-02-15T12:00:00.000", "2024-02-15T12:00:00.000") == 1
    assert store.count_published("2025-01-01T00:00:00.000", "2025-12-31T23:59:59.999") == 0


def test_runs(store: SqlStore) -> None:
    started = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    first = store.begin_run("full", started)
    second = store.begin_run("incremental", started + timedelta(hours=1))
    assert second > first
    running = store.status().runs[0]
    assert (running.id, running.mode, running.outcome) == (second, "incremental", "running")
    assert running.started_at == (started + timedelta(hours=1)).isoformat()

    done = RunInfo(
        id=first,
        mode="full",
        started_at=started.isoformat(),
        ended_at=(started + timedelta(minutes=30)).isoformat(),
        outcome="success",
        pages=12,
        records_written=23_456,
        records_quarantined=2,
        retries=3,
        peak_rss_mb=87.5,
    )
    store.finish_run(done)
    runs = store.status(runs=5).runs
    assert [r.id for r in runs] == [second, first]  # newest first
    assert runs[1] == done
    assert [r.id for r in store.status(runs=1).runs] == [second]
    with pytest.raises(StoreError, match="no run"):
        store.finish_run(RunInfo(id=9999, mode="full", started_at="x", ended_at=None, outcome="x"))


def test_watermark_and_complete_sync(store: SqlStore) -> None:
    store.save_plan(_plan())
    mark = datetime(2024, 5, 1, 14, 30, 15, 123000, tzinfo=timezone(timedelta(hours=2)))
    store.complete_sync(mark)
    got = store.get_watermark()
    assert got == mark
    assert got is not None
    assert got.utcoffset() == timedelta(hours=2)
    assert store.load_plan() is None
    assert store.status().watermark == mark.isoformat()
    later = datetime(2024, 6, 1, tzinfo=UTC)
    store.complete_sync(later)
    assert store.get_watermark() == later
    with pytest.raises(ValueError, match="timezone-aware"):
        store.complete_sync(datetime(2024, 6, 2))
    assert store.get_watermark() == later


def test_location_and_context_manager(db: str) -> None:
    from nvdsync.store import open_store

    with open_store(db) as opened:
        assert opened.count() == 0
        if "://" not in db:
            assert opened.location == db
        else:
            assert "postgresql" in opened.location
