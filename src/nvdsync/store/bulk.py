"""Statements for the write path: dialect upserts and pre-compiled ``executemany``.

``write_batch`` sends ~14 rows per record (the record, its CPE matches, references
and CWEs). Through ``Connection.execute`` SQLAlchemy builds and type-processes a
parameter set for every one of them, which measured as about a third of the time a
batch takes on SQLite. :class:`BulkStatement` compiles a Core statement once for
the engine's dialect and hands the rows straight to the driver's ``executemany``
through ``exec_driver_sql`` (still inside the same SQLAlchemy transaction, so error
handling and events are unchanged). That is safe here because every bound column
is text, integer, float, boolean or bytes, which both sqlite3 and psycopg accept
without SQLAlchemy's bind processors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Dialect
    from sqlalchemy.sql.dml import Insert

__all__ = ["BulkStatement", "upsert"]


def upsert(dialect: str, table: Table, *, newer_only: bool = False) -> Insert:
    """``INSERT ... ON CONFLICT (pk) DO UPDATE`` setting every non-key column.

    With ``newer_only`` the update happens only when the incoming ``last_modified``
    is not older than the stored one.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)
    keys = list(table.primary_key.columns)
    changes = {c.name: stmt.excluded[c.name] for c in table.columns if c not in keys}
    where = stmt.excluded.last_modified >= table.c.last_modified if newer_only else None
    result: Insert = stmt.on_conflict_do_update(index_elements=keys, set_=changes, where=where)
    return result


class BulkStatement:
    """A Core INSERT compiled once, executed with many rows through the driver.

    Rows are tuples in the order of ``columns``.
    """

    def __init__(self, stmt: Insert, dialect: Dialect, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        compiled = stmt.compile(dialect=dialect, column_keys=list(self.columns))
        self.sql = str(compiled)
        missing = set(compiled.binds) ^ set(self.columns)
        if missing:  # a mismatch is a programming error: fail at open, not mid-sync
            raise ValueError(f"parameters {sorted(missing)} do not match: {self.sql}")
        # Positional drivers (sqlite3: "?") take tuples in the compiled order; named
        # ones (psycopg: "%(name)s") take dicts.
        order = compiled.positiontup
        self._named = order is None
        self._index: list[int] | None = None
        if order is not None and tuple(order) != self.columns:
            self._index = [self.columns.index(name) for name in order]

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        params: Any = rows
        if self._named:
            columns = self.columns
            params = [dict(zip(columns, row, strict=True)) for row in rows]
        elif self._index is not None:
            index = self._index
            params = [tuple(row[i] for i in index) for row in rows]
        conn.exec_driver_sql(self.sql, params)
