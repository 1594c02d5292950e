"""``SqlStore``: the :class:`~nvdsync.store.base.Store` port on SQLite and PostgreSQL.

All SQL is SQLAlchemy Core. The dialect-specific pieces are the upsert
(``INSERT ... ON CONFLICT DO UPDATE``, see :mod:`.bulk`) and, on PostgreSQL, the
``FOR UPDATE`` row locks that SQLite does not need (its writers are serialised by
``BEGIN IMMEDIATE``). Every public method runs in one transaction and turns
database errors into :class:`~nvdsync.errors.StoreError` through
:func:`.engine.translate_errors`.

``write_batch`` is the hot path of a sync (a full sync writes ~300,000 records), so
it sends each kind of row with a single ``executemany`` and compresses records
before taking the write lock.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Self

import msgspec
from sqlalchemy import bindparam, delete, func, select, text, tuple_, update

from nvdsync.errors import StoreError
from nvdsync.lock import mirror_lock
from nvdsync.models import RunInfo, StoreStatus, SyncPlan
from nvdsync.store.bulk import BulkStatement, upsert
from nvdsync.store.engine import WRITE, translate_errors
from nvdsync.store.rows import (
    CPE_COLUMNS,
    CVE_COLUMNS,
    CWE_COLUMNS,
    QUARANTINE_COLUMNS,
    REFERENCE_COLUMNS,
    child_rows,
    compress,
    cve_row,
    decompress,
    record_from_rows,
)
from nvdsync.store.schema import (
    CHILD_TABLES,
    cve_cpe_matches,
    cve_cwes,
    cve_references,
    cves,
    quarantine,
    state,
)
from nvdsync.store.schema import runs as runs_table  # ``status`` has a ``runs`` argument

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from sqlalchemy.engine import Connection, Engine

    from nvdsync.models import CveRecord, Quarantined

__all__ = ["SqlStore"]

_PAGE = 500  # rows per iter_raw query: ~1 MB of compressed JSON in memory
_IN_CHUNK = 500  # ids per IN (...) list, well under every driver's parameter limit
_WATERMARK = "watermark"
_PLAN = "plan"


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def _newest(records: Iterable[CveRecord]) -> dict[str, CveRecord]:
    """One record per id: the one with the greatest ``last_modified`` (later wins ties)."""
    newest: dict[str, CveRecord] = {}
    for record in records:
        seen = newest.get(record.id)
        if seen is None or record.last_modified >= seen.last_modified:
            newest[record.id] = record
    return newest


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


# Advisory lock key held by the one sync writing a PostgreSQL mirror ("nvdsyncW").
_WRITER_LOCK = 0x6E766473_796E6357


class SqlStore:
    """A mirror in a SQL database. Build it with :func:`nvdsync.store.open_store`."""

    def __init__(self, engine: Engine, location: str) -> None:
        self.location = location
        self._engine = engine
        # Same pool; the option makes SQLite take the write lock at BEGIN.
        self._writer = engine.execution_options(**{WRITE: True})
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"{location}: unsupported database dialect {dialect!r}")
        bulk = partial(BulkStatement, dialect=engine.dialect)
        # The upsert guards last_modified itself too, so a record that another
        # writer made newer after our pre-read is still never replaced by an older one.
        self._upsert_cves = bulk(upsert(dialect, cves, newer_only=True), columns=CVE_COLUMNS)
        self._insert_children = [
            bulk(table.insert(), columns=columns)
            for table, columns in zip(
                CHILD_TABLES, (CWE_COLUMNS, CPE_COLUMNS, REFERENCE_COLUMNS), strict=True
            )
        ]
        self._insert_quarantine = bulk(quarantine.insert(), columns=QUARANTINE_COLUMNS)
        self._upsert_state = upsert(dialect, state)
        lock = dialect == "postgresql"  # SQLite's BEGIN IMMEDIATE already serialises
        versions = select(cves.c.id, cves.c.last_modified).order_by(cves.c.id)
        self._versions = versions.with_for_update() if lock else versions
        page = select(cves.c.published, cves.c.id, cves.c.raw)
        page = page.order_by(cves.c.published, cves.c.id).limit(_PAGE)
        self._first_page = page
        self._next_page = page.where(
            tuple_(cves.c.published, cves.c.id)
            > tuple_(
                bindparam("published", type_=cves.c.published.type),
                bindparam("id", type_=cves.c.id.type),
            )
        )

    @property
    def engine(self) -> Engine:
        return self._engine

    def __repr__(self) -> str:
        return f"SqlStore({self.location!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- transactions -----------------------------------------------------------------
    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        with translate_errors(self.location, action), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        with translate_errors(self.location, action), self._engine.begin() as conn:
            yield conn

    def _unreadable(self, what: str, exc: Exception) -> StoreError:
        return StoreError(f"{self.location}: stored {what} is unreadable: {exc}")

    # --- write side -------------------------------------------------------------------
    def write_batch(
        self,
        records: Sequence[CveRecord],
        quarantined: Sequence[Quarantined] = (),
        plan: SyncPlan | None = None,
    ) -> int:
        newest = _newest(records)
        # Sorted so that concurrent PostgreSQL writers lock rows in the same order
        # and cannot deadlock each other.
        ids = sorted(newest)
        # CPU work (compression, row tuples) happens before the write lock is taken.
        rows = {cve_id: cve_row(record) for cve_id, record in newest.items()}
        received = _now()
        held = [(q.cve_id, q.reason, compress(q.raw), received) for q in quarantined]
        plan_text = msgspec.json.encode(plan).decode() if plan is not None else None

        with self._write("writing a batch") as conn:
            stored: dict[str, str] = {}
            for chunk in _chunks(ids):
                query = self._versions.where(cves.c.id.in_(chunk))
                stored.update((row.id, row.last_modified) for row in conn.execute(query))
            keep = [
                newest[cve_id]
                for cve_id in ids
                if cve_id not in stored or newest[cve_id].last_modified >= stored[cve_id]
            ]
            if keep:
                self._replace(conn, keep, [rows[r.id] for r in keep], stored)
            fresh = [row for row in held if not self._already_held(conn, row[0], row[2])]
            if fresh:
                self._insert_quarantine.run(conn, fresh)
            if plan_text is not None:
                conn.execute(self._upsert_state, {"key": _PLAN, "value": plan_text})
        return len(keep)

    @staticmethod
    def _already_held(conn: Connection, cve_id: str | None, blob: bytes) -> bool:
        """The same bad record comes back on every retry, re-page and resume: keep one.

        Quarantine is rare, so an unindexed blob comparison costs nothing in practice.
        """
        same_id = quarantine.c.cve_id.is_(None) if cve_id is None else (
            quarantine.c.cve_id == cve_id)
        query = select(quarantine.c.id).where(same_id, quarantine.c.raw == blob).limit(1)
        return conn.execute(query).first() is not None

    def _replace(
        self,
        conn: Connection,
        records: list[CveRecord],
        rows: list[tuple[Any, ...]],
        stored: dict[str, str],
    ) -> None:
        # Children are deleted explicitly: an upsert is an UPDATE, which does not
        # cascade. New ids have no children, so only replaced ids need the deletes.
        replaced = [r.id for r in records if r.id in stored]
        for table in CHILD_TABLES:
            for chunk in _chunks(replaced):
                conn.execute(delete(table).where(table.c.cve_id.in_(chunk)))
        self._upsert_cves.run(conn, rows)
        for insert, children in zip(self._insert_children, child_rows(records), strict=True):
            insert.run(conn, children)

    def begin_run(self, mode: str, started_at: datetime) -> int:
        values = {
            "mode": mode,
            "started_at": started_at.isoformat(),
            "outcome": "running",
            "pages": 0,
            "records_written": 0,
            "records_quarantined": 0,
            "retries": 0,
        }
        with self._write("starting a run") as conn:
            # Runs still marked running were killed (kill -9, power loss): the caller
            # holds the mirror's lock, so none of them is alive.
            conn.execute(
                runs_table.update()
                .where(runs_table.c.outcome == "running")
                .values(outcome="interrupted", error="the process ended without finishing")
            )
            key = conn.execute(runs_table.insert().values(values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def finish_run(self, run: RunInfo) -> None:
        values = {
            "ended_at": run.ended_at,
            "outcome": run.outcome,
            "pages": run.pages,
            "records_written": run.records_written,
            "records_quarantined": run.records_quarantined,
            "retries": run.retries,
            "peak_rss_mb": run.peak_rss_mb,
            "error": run.error,
        }
        with self._write("finishing a run") as conn:
            result = conn.execute(
                update(runs_table).where(runs_table.c.id == run.id).values(values)
            )
            if result.rowcount == 0:
                raise StoreError(f"{self.location}: there is no run {run.id} to finish")

    def load_plan(self) -> SyncPlan | None:
        with self._read("loading the sync plan") as conn:
            text = self._get_state(conn, _PLAN)
        if text is None:
            return None
        try:
            return msgspec.json.decode(text, type=SyncPlan)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            raise self._unreadable("sync plan", exc) from exc

    def save_plan(self, plan: SyncPlan | None) -> None:
        with self._write("saving the sync plan") as conn:
            if plan is None:
                conn.execute(delete(state).where(state.c.key == _PLAN))
            else:
                value = msgspec.json.encode(plan).decode()
                conn.execute(self._upsert_state, {"key": _PLAN, "value": value})

    def complete_sync(self, watermark: datetime) -> None:
        _require_aware(watermark, "watermark")
        with self._write("completing the sync") as conn:
            conn.execute(self._upsert_state, {"key": _WATERMARK, "value": watermark.isoformat()})
            conn.execute(delete(state).where(state.c.key == _PLAN))

    # --- read side --------------------------------------------------------------------
    @staticmethod
    def _get_state(conn: Connection, key: str) -> str | None:
        value: str | None = conn.scalar(select(state.c.value).where(state.c.key == key))
        return value

    def get_watermark(self) -> datetime | None:
        with self._read("reading the watermark") as conn:
            text = self._get_state(conn, _WATERMARK)
        if text is None:
            return None
        try:
            value = datetime.fromisoformat(text)
            _require_aware(value, "watermark")
        except ValueError as exc:
            raise self._unreadable("watermark", exc) from exc
        return value

    def get_raw(self, cve_id: str) -> bytes | None:
        with self._read("reading a record") as conn:
            blob = conn.scalar(select(cves.c.raw).where(cves.c.id == cve_id))
        return None if blob is None else self._decompress(blob, cve_id)

    def _decompress(self, blob: bytes, cve_id: str) -> bytes:
        try:
            return decompress(blob)
        except zlib.error as exc:
            raise self._unreadable(f"record {cve_id}", exc) from exc

    def get_record(self, cve_id: str) -> CveRecord | None:
        with self._read("reading a record") as conn:
            row = conn.execute(select(cves).where(cves.c.id == cve_id)).mappings().first()
            if row is None:
                return None
            cwes = conn.scalars(
                select(cve_cwes.c.cwe).where(cve_cwes.c.cve_id == cve_id).order_by(cve_cwes.c.seq)
            ).all()
            cpes, refs = (
                conn.execute(select(t).where(t.c.cve_id == cve_id).order_by(t.c.seq))
                .mappings()
                .all()
                for t in (cve_cpe_matches, cve_references)
            )
        try:
            return record_from_rows(row, cwes, cpes, refs)
        except zlib.error as exc:
            raise self._unreadable(f"record {cve_id}", exc) from exc

    def iter_raw(self) -> Iterator[bytes]:
        # Keyset pagination with a short read transaction per page: memory stays at
        # one page and no transaction is held open while the caller consumes rows.
        query = self._first_page
        params: dict[str, str] = {}
        while True:
            with self._read("reading records") as conn:
                page = conn.execute(query, params).all()
            for row in page:
                yield self._decompress(row.raw, row.id)
            if len(page) < _PAGE:
                return
            query = self._next_page
            params = {"published": page[-1].published, "id": page[-1].id}

    def count(self) -> int:
        with self._read("counting records") as conn:
            return int(conn.scalar(select(func.count()).select_from(cves)) or 0)

    def count_published(self, start: str, end: str) -> int:
        # Not BETWEEN: on PostgreSQL the binds render as ``$1::VARCHAR COLLATE "C"``,
        # which the grammar accepts after >= and <= but not inside BETWEEN.
        published = cves.c.published
        query = select(func.count()).where(published >= start, published <= end)
        with self._read("counting records") as conn:
            return int(conn.scalar(query) or 0)

    def status(self, runs: int = 5) -> StoreStatus:
        with self._read("reading the status") as conn:
            records = int(conn.scalar(select(func.count()).select_from(cves)) or 0)
            held = int(conn.scalar(select(func.count()).select_from(quarantine)) or 0)
            watermark = self._get_state(conn, _WATERMARK)
            pending = self._get_state(conn, _PLAN) is not None
            recent = (
                conn.execute(select(runs_table).order_by(runs_table.c.id.desc()).limit(runs))
                .mappings()
                .all()
            )
        return StoreStatus(
            location=self.location,
            records=records,
            watermark=watermark,
            quarantined=held,
            pending_plan=pending,
            runs=[RunInfo(**dict(row)) for row in recent],
        )

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Be the only sync writing this mirror until the block ends.

        SQLite: an exclusive ``flock`` on ``<file>.lock``. PostgreSQL: a session-level
        advisory lock on a connection held for the whole sync. Both die with the
        process, so a ``kill -9`` never leaves a stale lock behind.
        """
        if self._engine.dialect.name != "postgresql":
            with mirror_lock(self.location):
                yield
            return
        with translate_errors(self.location, "taking the writer lock"):
            conn = self._engine.connect()
        try:
            with translate_errors(self.location, "taking the writer lock"):
                got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                   {"key": _WRITER_LOCK}).scalar()
                conn.commit()
            if not got:
                raise StoreError(f"another nvdsync sync is writing {self.location}; wait "
                                 "for it to finish: the next sync resumes where it stopped")
            try:
                yield
            finally:
                with translate_errors(self.location, "releasing the writer lock"):
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"),
                                 {"key": _WRITER_LOCK})
                    conn.commit()
        finally:
            conn.close()

    def close(self) -> None:
        self._engine.dispose()
