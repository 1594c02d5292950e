"""The writer lock on both back ends: refuse, wait, time out, die with its holder."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

from nvdsync.errors import MirrorBusy, StoreError
from nvdsync.store import open_store

if TYPE_CHECKING:
    from nvdsync.store import SqlStore


def test_a_second_writer_is_refused_and_told_who_holds_the_mirror(store: SqlStore, db: str):
    other = open_store(db)
    try:
        with store.writer_lock():
            with pytest.raises(MirrorBusy) as info, other.writer_lock():
                pass
            assert isinstance(info.value, StoreError)  # callers catching StoreError still do
            assert info.value.waited is None
            assert "pid " in info.value.holder and store.location in str(info.value)
        with other.writer_lock():  # released with the block
            pass
    finally:
        other.close()


def test_readers_are_never_blocked_by_the_writer_lock(store: SqlStore, db: str, make_record):
    store.write_batch([make_record("CVE-2024-0001")])
    reader = open_store(db)
    try:
        with store.writer_lock():
            store.write_batch([make_record("CVE-2024-0002")])
            assert reader.count() == 2
            assert reader.get_raw("CVE-2024-0001") is not None
    finally:
        reader.close()


def test_wait_takes_the_lock_once_the_holder_lets_go(store: SqlStore, db: str):
    other = open_store(db)
    released = threading.Event()
    heard: list[str] = []

    def hold_briefly() -> None:
        with store.writer_lock():
            started.set()
            time.sleep(0.6)
            released.set()

    started = threading.Event()
    holder = threading.Thread(target=hold_briefly)
    holder.start()
    try:
        assert started.wait(10)
        with other.writer_lock(wait=30, on_wait=heard.append):
            assert released.is_set()  # we got it only after the holder let go
        assert len(heard) == 1 and "pid " in heard[0]  # told once, naming the holder
    finally:
        holder.join()
        other.close()


def test_wait_timeout_raises_with_how_long_it_waited(store: SqlStore, db: str):
    other = open_store(db)
    try:
        with (store.writer_lock(),
              pytest.raises(MirrorBusy, match=r"after waiting 0\.4 s") as info,
              other.writer_lock(wait=0.4)):
            pass
        assert info.value.waited == 0.4
    finally:
        other.close()


HOLD = """
import sys, time
from nvdsync.store import open_store
store = open_store(sys.argv[1])
with store.writer_lock():
    print("locked", flush=True)
    time.sleep(60)
"""


def test_the_lock_dies_with_a_killed_holder(db: str):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, db], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        store = open_store(db)
        try:
            with pytest.raises(MirrorBusy, match=f"pid {proc.pid}"), store.writer_lock():
                pass
            proc.kill()  # kill -9: no cleanup code runs
            proc.wait()
            # PostgreSQL ends the session when it sees the socket close: allow a moment.
            with store.writer_lock(wait=10):
                pass
        finally:
            store.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_two_writers_racing_on_the_same_ids_keep_the_newest(db: str, make_record):
    """Without the writer lock (e.g. `verify --repair` beside a sync): no deadlock, no
    lost update. Each writer's batches hold the same ids in the same order."""
    from concurrent.futures import ThreadPoolExecutor

    ids = [f"CVE-2024-{n:04d}" for n in range(60)]
    stores = [open_store(db), open_store(db)]

    def write(which: int) -> None:
        stamp = f"2024-0{which + 2}-01T00:00:00.000"  # writer 1 is newer everywhere
        records = [make_record(i, last_modified=stamp, cpes=which + 1) for i in ids]
        for _ in range(5):
            for start in range(0, len(records), 20):
                stores[which].write_batch(records[start:start + 20])

    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(write, [0, 1]))
        for cve_id in ids:
            record = stores[0].get_record(cve_id)
            assert record is not None
            assert record.last_modified == "2024-03-01T00:00:00.000"
            assert len(record.cpe_matches) == 2  # the newer record's children, not mixed
    finally:
        for store in stores:
            store.close()


def test_a_symlink_to_the_database_shares_its_lock(tmp_path) -> None:
    real = tmp_path / "real.sqlite"
    link = tmp_path / "link.sqlite"
    first = open_store(str(real))
    link.symlink_to(real)
    second = open_store(str(link))
    try:
        with first.writer_lock(), pytest.raises(MirrorBusy), second.writer_lock():
            pass
    finally:
        first.close()
        second.close()
