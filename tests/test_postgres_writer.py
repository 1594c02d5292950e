"""One writer, many readers: two real ``nvdsync sync`` processes started at once.

Run on SQLite (the lock file) and on PostgreSQL (the advisory lock). The mock NVD is
slowed down so that the first sync is still running when the second asks for the
lock; the second is refused with exit code 3, or with ``--wait`` runs after it.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from nvdsync.errors import NvdSyncError
from nvdsync.mock import generate
from nvdsync.store import open_store
from nvdsync.store.locking import advisory_key
from support import export_values, mock_values
from test_resilience import cli_env

# ~600 records in pages of 100 with 0.3 s per page: the first sync takes over 2 s,
# far longer than the second needs to start and ask for the lock.
RECORDS = 600
SLOW = {"slow_seconds": 0.3}


@pytest.fixture
def db(any_db: Path | str) -> str:
    return str(any_db)


def start_two(db: str, url: str, *extra: str) -> list[subprocess.CompletedProcess[str]]:
    command = [sys.executable, "-m", "nvdsync", "sync", "--db", db, "--api-url", url,
               "--page-size", "100", "--no-progress", "-q", *extra]
    procs = [subprocess.Popen(command, env=cli_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def runs_of(db: str) -> list:  # type: ignore[type-arg]
    store = open_store(db)
    try:
        return list(reversed(store.status(runs=10).runs))  # oldest first
    finally:
        store.close()


def test_two_syncs_at_once_one_runs_the_other_exits_3(mock_nvd, db):
    server = mock_nvd(generate(RECORDS, seed=61), **SLOW)
    results = start_two(db, server.url)
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 3], [r.stderr for r in results]
    refused = next(r for r in results if r.returncode == 3)
    assert "another nvdsync sync (" in refused.stderr
    assert "is writing" in refused.stderr and "--wait" in refused.stderr
    assert "Traceback" not in refused.stderr
    runs = runs_of(db)
    assert [(r.mode, r.outcome) for r in runs] == [("full", "success")]  # refused: no run
    assert export_values(db) == mock_values(server)


def test_with_wait_the_second_sync_runs_after_the_first(mock_nvd, db):
    server = mock_nvd(generate(RECORDS, seed=62), **SLOW)
    results = start_two(db, server.url, "--wait")
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    waited = [r for r in results if "waiting for the sync that is writing" in r.stderr]
    assert len(waited) == 1  # it overlapped the first, and said so
    runs = runs_of(db)
    assert [(r.mode, r.outcome) for r in runs] == [("full", "success"),
                                                   ("incremental", "success")]
    first, second = runs
    assert first.ended_at is not None
    # One after the other, never interleaved.
    assert datetime.fromisoformat(second.started_at) >= datetime.fromisoformat(first.ended_at)
    assert export_values(db) == mock_values(server)


def test_wait_timeout_gives_up_with_exit_3(mock_nvd, db):
    server = mock_nvd(generate(20, seed=63))
    holder = open_store(db)
    try:
        with holder.writer_lock():
            result = subprocess.run(
                [sys.executable, "-m", "nvdsync", "sync", "--db", db, "--api-url", server.url,
                 "--no-progress", "--wait-timeout", "0.6"],
                env=cli_env(), capture_output=True, text=True, timeout=60)
    finally:
        holder.close()
    assert result.returncode == 3
    assert "waiting for the sync that is writing" in result.stderr
    assert "after waiting 0.6 s" in result.stderr
    assert server.stats.requests == 0


@pytest.mark.postgres
def test_mirrors_in_two_schemas_of_one_database_do_not_lock_each_other(pg_url):
    import psycopg
    from sqlalchemy.engine import make_url

    from nvdsync.errors import MirrorBusy

    # A second schema beside the fixture's, in the same database.
    url = make_url(pg_url)
    schema = url.query["options"].removeprefix("-csearch_path=") + "_b"
    plain = url.difference_update_query(["options"]).render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    other = url.update_query_dict({"options": f"-csearch_path={schema}"})
    a, b, a_again = open_store(pg_url), open_store(other.render_as_string(False)), None
    try:
        with a.writer_lock(), b.writer_lock():  # both held at once: separate mirrors
            a_again = open_store(pg_url)
            with pytest.raises(MirrorBusy, match=r"another nvdsync sync \(pid \d+ on "):  # noqa: SIM117
                with a_again.writer_lock():
                    pass
    finally:
        for store in (a, b, a_again):
            if store is not None:
                store.close()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert advisory_key(schema) != advisory_key(schema[:-2])


def test_readers_see_only_whole_batches_while_a_sync_writes(mock_nvd, db):
    server = mock_nvd(generate(RECORDS, seed=64), **SLOW)
    command = [sys.executable, "-m", "nvdsync", "sync", "--db", db, "--api-url", server.url,
               "--page-size", "100", "--batch-size", "25", "--no-progress", "-q"]
    proc = subprocess.Popen(command, env=cli_env())
    seen: set[int] = set()
    reader = None
    try:
        while proc.poll() is None:
            try:
                reader = reader or open_store(db)
            except NvdSyncError:  # the writer is still creating the schema
                continue
            seen.add(reader.count())
            for value in [msgspec.json.decode(raw) for raw in reader.iter_raw()][-3:]:
                # A visible record always has all its children.
                record = reader.get_record(value["id"])
                assert record is not None
                assert len(record.references) == len(value.get("references", []))
    finally:
        assert proc.wait(timeout=120) == 0
        if reader is not None:
            reader.close()
    # Several states were seen mid-sync, each a whole number of 25-record batches.
    assert len(seen - {0, RECORDS}) >= 2
    assert all(n % 25 == 0 for n in seen)
    assert export_values(db) == mock_values(server)


def test_ctrl_c_ends_a_sync_waiting_for_the_lock(mock_nvd, db):
    import signal
    import time

    server = mock_nvd(generate(20, seed=64))
    holder = open_store(db)
    try:
        with holder.writer_lock(), subprocess.Popen(
            [sys.executable, "-m", "nvdsync", "sync", "--db", db, "--api-url", server.url,
             "--no-progress", "--wait"],
            env=cli_env(), stderr=subprocess.PIPE, text=True) as proc:
            assert proc.stderr is not None
            line = ""
            while "waiting for the sync that is writing" not in line:
                line = proc.stderr.readline()
                assert line, "the sync ended before it started waiting"
            time.sleep(0.5)  # well inside the wait
            proc.send_signal(signal.SIGINT)
            # The lock is still held: before the fix the waiting thread kept the
            # process alive until the holder let go, so this timed out.
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                pytest.fail("Ctrl-C did not end a sync waiting for the writer lock")
            rest = proc.stderr.read()
    finally:
        holder.close()
    assert proc.returncode == 130, rest
    assert "Traceback" not in rest
    assert server.stats.requests == 0
