"""``SqlStore``: the :class:`~nvdsync.store.base.Store` port on SQLite and PostgreSQL.

All SQL is SQLAlchemy Core. Every public method runs in one transaction and turns
database errors into :class:`~nvdsync.errors.StoreError` through
:func:`.engine.translate_errors`. The dialect-specific pieces live beside this module:
the write path in :mod:`.writes` and :mod:`.bulk` (upserts, ``executemany``), the
writer lock in :mod:`.locking`.

``write_batch`` is the hot path of a sync (a full sync writes ~300,000 records), so
it compresses records and builds their rows before the write transaction starts.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Self

import msgspec
from sqlalchemy import bindparam, delete, func, select, tuple_, update

from nvdsync.errors import StoreError
from nvdsync.models import RunInfo, StoreStatus, SyncPlan
from nvdsync.store.bulk import upsert
from nvdsync.store.engine import WRITE, translate_errors
from nvdsync.store.locking import writer_lock
from nvdsync.store.rows import (
    compress,
    cve_row,
    decompress,
    record_from_rows,
)
from nvdsync.store.schema import (
    cve_cpe_matches,
    cve_cwes,
    cve_references,
    cves,
    quarantine,
    state,
)
from nvdsync.store.schema import runs as runs_table  # ``status`` has a ``runs`` argument
from nvdsync.store.writes import BatchWriter, newest

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator, Sequence
    from contextlib import AbstractContextManager

    from sqlalchemy.engine import Connection, Engine

    from nvdsync.models import CveRecord, Quarantined

__all__ = ["SqlStore"]

_PAGE = 500  # rows per iter_raw query: ~1 MB of compressed JSON in memory
_WATERMARK = "watermark"
_PLAN = "plan"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


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
        self._batches = BatchWriter(engine.dialect)
        self._upsert_state = upsert(dialect, state)
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
        latest = newest(records)
        # CPU work (compression, row tuples) happens before the write lock is taken.
        rows = {cve_id: cve_row(record) for cve_id, record in latest.items()}
        received = _now()
        held = [(q.cve_id, q.reason, compress(q.raw), received) for q in quarantined]
        plan_text = msgspec.json.encode(plan).decode() if plan is not None else None

        with self._write("writing a batch") as conn:
            written = self._batches.write(conn, latest, rows, held)
            if plan_text is not None:
                conn.execute(self._upsert_state, {"key": _PLAN, "value": plan_text})
        return written

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
            "start_rss_mb": run.start_rss_mb,
            "growth_mb": run.growth_mb,
            "gcs_run": run.gcs_run,
            "warning_mb": run.warning_mb,
            "critical_mb": run.critical_mb,
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

    def writer_lock(
        self, *, wait: float | None = None, on_wait: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> AbstractContextManager[None]:
        """Be the only sync writing this mirror; see :mod:`.locking`."""
        return writer_lock(self._engine, self.location, wait=wait, on_wait=on_wait,
                           stop=stop)

    def close(self) -> None:
        self._engine.dispose()
