"""One batch, inside its transaction: newest wins, and children go with their record.

``SqlStore.write_batch`` prepares the rows (CPU work, before any lock) and opens the
transaction; :class:`BatchWriter` does the SQL, differently per back end:

* **SQLite** serialises writers (``BEGIN IMMEDIATE``), so a pre-read of the stored
  ``last_modified`` values is exact: it decides which records to write and which
  of them replace a stored one (whose children are deleted first).
* **PostgreSQL** lets writers run side by side, so a pre-read can be stale by the
  time the rows are written: another writer may insert a record after we looked
  (its children would then clash with ours) or make it newer. Instead, the upsert
  itself decides, and returns ``(id, inserted)`` for each row it wrote
  (:class:`~.bulk.ReturningUpsert`); children are deleted only for the updated ids
  and inserted, by ``COPY``, only for the written ones. The upsert locks the rows in
  id order, so two writers cannot deadlock, and one fewer round trip is made per
  batch. ``bench/bench_pg_write.py`` measured the alternatives (a staging table
  for the records too was slower: it pays a temporary table round trip per batch).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from nvdsync.store.bulk import BulkStatement, CopyInsert, ReturningUpsert, upsert
from nvdsync.store.rows import (
    CPE_COLUMNS,
    CVE_COLUMNS,
    CWE_COLUMNS,
    QUARANTINE_COLUMNS,
    REFERENCE_COLUMNS,
    child_rows,
)
from nvdsync.store.schema import CHILD_TABLES, cves, quarantine

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from sqlalchemy.engine import Connection, Dialect

    from nvdsync.models import CveRecord

__all__ = ["BatchWriter", "newest"]

_IN_CHUNK = 500  # ids per IN (...) list, well under every driver's parameter limit
Row = tuple[Any, ...]


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def newest(records: Iterable[CveRecord]) -> dict[str, CveRecord]:
    """One record per id: the one with the greatest ``last_modified`` (later wins ties)."""
    found: dict[str, CveRecord] = {}
    for record in records:
        seen = found.get(record.id)
        if seen is None or record.last_modified >= seen.last_modified:
            found[record.id] = record
    return found


class BatchWriter:
    """The statements of the write path, compiled once per store."""

    def __init__(self, dialect: Dialect) -> None:
        self._postgres = dialect.name == "postgresql"
        bulk = partial(BulkStatement, dialect=dialect)
        self._returning = ReturningUpsert(cves, CVE_COLUMNS, dialect) if self._postgres else None
        # SQLite's upsert guards last_modified too, as a second line after the pre-read.
        self._upsert = bulk(upsert(dialect.name, cves, newer_only=True), columns=CVE_COLUMNS)
        self._versions = select(cves.c.id, cves.c.last_modified)
        # Child rows never conflict (a replaced record's children are deleted first),
        # so PostgreSQL takes them by COPY: measured 1.45x the records/s of a full
        # sync's batches and 1.27x when replacing (docs/benchmarks.md).
        self._insert_children: list[BulkStatement | CopyInsert] = [
            CopyInsert(table, columns) if self._postgres
            else bulk(table.insert(), columns=columns)
            for table, columns in zip(
                CHILD_TABLES, (CWE_COLUMNS, CPE_COLUMNS, REFERENCE_COLUMNS), strict=True
            )
        ]
        self._insert_quarantine = bulk(quarantine.insert(), columns=QUARANTINE_COLUMNS)

    def write(
        self,
        conn: Connection,
        records: dict[str, CveRecord],
        rows: dict[str, Row],
        held: list[Row],
    ) -> int:
        """Write ``records`` (one per id) and the quarantine rows ``held``; return
        how many records were inserted or replaced."""
        ids = sorted(records)  # the order rows are locked in (see the module docstring)
        if self._returning is not None:
            written = self._returning.run(conn, [rows[cve_id] for cve_id in ids])
            replaced = [cve_id for cve_id, inserted in written if not inserted]
            self._delete_children(conn, replaced)
            kept = [records[cve_id] for cve_id, _ in written]
        else:
            stored: dict[str, str] = {}
            for chunk in _chunks(ids):
                query = self._versions.where(cves.c.id.in_(chunk))
                stored.update((row.id, row.last_modified) for row in conn.execute(query))
            kept = [records[cve_id] for cve_id in ids
                    if cve_id not in stored or records[cve_id].last_modified >= stored[cve_id]]
            # An upsert is an UPDATE, which does not cascade: delete the children of
            # the records it replaces. New ids have none.
            self._delete_children(conn, [r.id for r in kept if r.id in stored])
            self._upsert.run(conn, [rows[r.id] for r in kept])
        for insert, children in zip(self._insert_children, child_rows(kept), strict=True):
            insert.run(conn, children)
        fresh = [row for row in held if not self._already_held(conn, row[0], row[2])]
        self._insert_quarantine.run(conn, fresh)
        return len(kept)

    @staticmethod
    def _delete_children(conn: Connection, ids: Sequence[str]) -> None:
        for table in CHILD_TABLES:
            for chunk in _chunks(ids):
                conn.execute(delete(table).where(table.c.cve_id.in_(chunk)))

    @staticmethod
    def _already_held(conn: Connection, cve_id: str | None, blob: bytes) -> bool:
        """The same bad record comes back on every retry, re-page and resume: keep one.

        Quarantine is rare, so an unindexed blob comparison costs nothing in practice.
        """
        same_id = quarantine.c.cve_id.is_(None) if cve_id is None else (
            quarantine.c.cve_id == cve_id)
        query = select(quarantine.c.id).where(same_id, quarantine.c.raw == blob).limit(1)
        return conn.execute(query).first() is not None
