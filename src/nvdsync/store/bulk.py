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

PostgreSQL has two more tools, used through the psycopg cursor of the same
transaction: :class:`ReturningUpsert` (``executemany`` with ``RETURNING``, which
psycopg 3 sends in pipeline mode: one network round trip for the whole batch) and
:class:`CopyInsert` (``COPY ... FROM STDIN``). ``bench/bench_pg_write.py`` also
measured ``COPY`` into a temporary table and one ``INSERT ... SELECT`` for the
records: slower than :class:`ReturningUpsert` for batches of 50.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Dialect
    from sqlalchemy.sql.dml import Insert

__all__ = ["BulkStatement", "CopyInsert", "ReturningUpsert", "driver_cursor", "returning_upsert",
           "upsert"]


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


@contextmanager
def driver_cursor(conn: Connection, sql: str) -> Iterator[Any]:
    """A psycopg cursor in the connection's open transaction.

    Its errors are wrapped as SQLAlchemy's (as ``exec_driver_sql`` would), so that
    :func:`.engine.translate_errors` turns them into ``StoreError`` like any other.
    """
    from sqlalchemy.exc import DBAPIError

    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
            yield cur
    except dbapi_error as exc:
        raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc


class CopyInsert:
    """PostgreSQL only: ``COPY table (columns) FROM STDIN`` in the open transaction.

    Child rows have no conflicts to resolve (a replaced record's children are deleted
    first), so they can be streamed with COPY instead of one INSERT per row.
    """

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.sql = f"COPY {table.name} ({', '.join(self.columns)}) FROM STDIN"

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with driver_cursor(conn, self.sql) as cur, cur.copy(self.sql) as copy:
            for row in rows:
                copy.write_row(row)


def returning_upsert(table: Table, columns: Sequence[str], source: Any = None) -> Any:
    """The newest-wins upsert, returning ``(id, inserted)`` for every row it wrote.

    A row whose stored copy is newer is not returned. ``xmax = 0`` tells a fresh
    insert from an update: only an updated record can have children to delete.
    """
    from sqlalchemy import literal_column
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    stmt: Any = pg_insert(table)
    if source is not None:
        stmt = stmt.from_select(list(columns), source)
    keys = list(table.primary_key.columns)
    changes = {c: stmt.excluded[c] for c in columns if table.c[c] not in keys}
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_=changes,
        where=stmt.excluded.last_modified >= table.c.last_modified)
    return stmt.returning(*keys, literal_column(f"{table.name}.xmax = 0"))


class ReturningUpsert:
    """PostgreSQL: the upsert through ``executemany(returning=True)`` (pipelined).

    ``run`` returns ``(key, inserted)`` for the rows written, in row order.
    """

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect) -> None:
        self.columns = tuple(columns)
        compiled = returning_upsert(table, columns).compile(
            dialect=dialect, column_keys=list(self.columns))
        self.sql = str(compiled)

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, bool]]:
        if not rows:
            return []
        columns = self.columns
        params = [dict(zip(columns, row, strict=True)) for row in rows]
        written: list[tuple[Any, bool]] = []
        with driver_cursor(conn, self.sql) as cur:
            cur.executemany(self.sql, params, returning=True)
            while True:
                written.extend((row[0], bool(row[1])) for row in cur.fetchall())
                if not cur.nextset():
                    break
        return written
