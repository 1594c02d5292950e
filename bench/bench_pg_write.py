"""PostgreSQL write path and ``raw`` format: which is fastest/smallest, measured.

    .venv/bin/python bench/bench_pg_write.py [--records N] [--batch B] [--rounds R]
                                             [--pg postgresql://postgres@127.0.0.1/test]

Part 1 writes N generated NVD records (the mock's generator, normalised as a sync
would) through ``SqlStore.write_batch`` in batches of B, once into an empty mirror
("insert") and once more with every record newer ("replace": children deleted and
re-inserted), with three ways of sending the rows:

* ``pre-read``     — the SQLite path: ``SELECT ... FOR UPDATE`` of the stored
  versions, then ``executemany`` upserts and inserts (nvdsync's PostgreSQL path
  before; a concurrent writer could break it, see ``store/writes.py``);
* ``returning``    — the upsert decides and returns what it wrote
  (``executemany(returning=True)``, which psycopg 3 pipelines), children by
  ``executemany``;
* ``returning+copy`` — the same, with child rows sent by ``COPY`` (nvdsync's
  PostgreSQL path now);
* ``staged copy``  — records by ``COPY`` into a temporary staging table and one
  ``INSERT ... SELECT ... ON CONFLICT ... RETURNING``, child rows by ``COPY``.

Part 2 stores the same records' ``raw`` JSON as zlib-compressed ``bytea`` (what
nvdsync does) and as ``jsonb``, and reports size on disk (table + TOAST + index),
write records/s and read records/s (every row, in id order, back to JSON bytes).

Each contender runs in its own new schema, ``rounds`` times in alternating order;
the median is printed with the ratio to the first contender. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
import zlib
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg
from sqlalchemy.engine import make_url

from nvdsync.mock import generate
from nvdsync.models import CveRecord
from nvdsync.normalize import normalize
from nvdsync.store import open_store
from nvdsync.store.bulk import BulkStatement, CopyInsert, driver_cursor, returning_upsert
from nvdsync.store.rows import CPE_COLUMNS, CVE_COLUMNS, CWE_COLUMNS, REFERENCE_COLUMNS
from nvdsync.store.schema import CHILD_TABLES, cves

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Dialect

    from nvdsync.store import SqlStore

PG = "postgresql://postgres@127.0.0.1:5432/test"
CHILD_COLUMNS = (CWE_COLUMNS, CPE_COLUMNS, REFERENCE_COLUMNS)


@contextmanager
def schema(pg: str) -> Iterator[str]:
    """A new schema, and a URL whose connections use it; dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    url = make_url(pg).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


class StagedUpsert:
    """PostgreSQL: COPY the rows into a temporary table, then one upsert from it.

    The staging table lives for the session (``CREATE ... IF NOT EXISTS`` each batch:
    a rolled-back batch also rolls back the table's creation) and is emptied before
    each use, so no catalogue changes happen per batch. ``run`` returns what
    :class:`ReturningUpsert` returns.
    """

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect) -> None:
        from sqlalchemy import Column, MetaData, select
        from sqlalchemy import Table as SaTable

        self.columns = tuple(columns)
        stage = f"nvdsync_stage_{table.name}"
        cols = ", ".join(self.columns)
        # Two statements in one round trip (no parameters: the simple query protocol).
        self.prepare = (f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} "
                        f"AS SELECT {cols} FROM {table.name} WITH NO DATA; DELETE FROM {stage}")
        self.copy = f"COPY {stage} ({cols}) FROM STDIN"
        source = SaTable(stage, MetaData(), *(Column(c, table.c[c].type) for c in self.columns))
        self.sql = str(returning_upsert(table, columns, select(source)).compile(dialect=dialect))

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, bool]]:
        if not rows:
            return []
        with driver_cursor(conn, self.sql) as cur:
            cur.execute(self.prepare)
            with cur.copy(self.copy) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(self.sql)
            return [(row[0], bool(row[1])) for row in cur.fetchall()]


def use(store: SqlStore, method: str) -> None:
    """Swap the store's write statements for ``method``'s."""
    w: Any = store._batches  # a benchmark may reach in
    dialect = store.engine.dialect
    if method == "pre-read":
        w._returning = None
        w._versions = w._versions.with_for_update()
    elif method == "staged copy":
        w._returning = StagedUpsert(cves, CVE_COLUMNS, dialect)
    copy = method in ("returning+copy", "staged copy")
    w._insert_children = [
        CopyInsert(t, c) if copy else BulkStatement(t.insert(), dialect, c)
        for t, c in zip(CHILD_TABLES, CHILD_COLUMNS, strict=True)]


def write_path(pg: str, method: str, records: list[CveRecord], newer: list[CveRecord],
               batch: int) -> tuple[float, float]:
    with schema(pg) as url, open_store(url) as store:
        use(store, method)
        rates = []
        for data in (records, newer):
            start = time.perf_counter()
            for i in range(0, len(data), batch):
                store.write_batch(data[i:i + batch])
            rates.append(len(data) / (time.perf_counter() - start))
        assert store.count() == len(records)
        return rates[0], rates[1]


def raw_format(pg: str, kind: str, raws: list[tuple[str, bytes]],
               batch: int) -> tuple[float, float, float]:
    """(write rec/s, read rec/s, MB on disk) for ``raw`` stored as ``kind``."""
    column = "bytea" if kind == "zlib bytea" else "jsonb"
    encode: Callable[[bytes], Any] = ((lambda b: zlib.compress(b, 1)) if column == "bytea"
                                      else (lambda b: b.decode()))
    with schema(pg) as url, psycopg.connect(url) as conn:
        conn.execute(f'CREATE TABLE t (id text COLLATE "C" PRIMARY KEY, raw {column} NOT NULL)')
        conn.commit()
        start = time.perf_counter()
        for i in range(0, len(raws), batch):
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO t VALUES (%s, %s)",
                                [(k, encode(v)) for k, v in raws[i:i + batch]])
            conn.commit()
        write = len(raws) / (time.perf_counter() - start)
        size = conn.execute("SELECT pg_total_relation_size('t')").fetchone()[0]  # type: ignore[index]
        start = time.perf_counter()
        count = 0
        select = "SELECT raw FROM t ORDER BY id" if column == "bytea" else \
            "SELECT raw::text FROM t ORDER BY id"
        with conn.cursor(name="read") as cur:
            cur.itersize = 500
            for (value,) in cur.execute(select):
                out = zlib.decompress(value) if column == "bytea" else value.encode()
                count += bool(out)
        read = count / (time.perf_counter() - start)
        conn.commit()
        return write, read, size / 1024 / 1024


def median_table(title: str, names: Sequence[str], results: dict[str, list[tuple[float, ...]]],
                 headers: Sequence[str], higher_better: Sequence[bool]) -> None:
    print(f"\n{title}")
    print(f"  {'':14s}" + "".join(f"{h:>22s}" for h in headers))
    base = [statistics.median(r[i] for r in results[names[0]]) for i in range(len(headers))]
    for name in names:
        cells = []
        for i, _ in enumerate(headers):
            value = statistics.median(r[i] for r in results[name])
            cells.append(f"{value:>12,.1f} ({value / base[i]:.2f}x)")
        print(f"  {name:14s}" + "".join(f"{c:>22s}" for c in cells))
    print("  (ratios against " + names[0] + "; "
          + ", ".join(f"{h}: {'higher' if b else 'lower'} is better"
                      for h, b in zip(headers, higher_better, strict=True)) + ")")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=PG)
    parser.add_argument("--part", choices=["write", "raw", "all"], default="all")
    args = parser.parse_args()
    raws = generate(args.records, seed=42)
    records = [r for r in map(normalize, raws) if isinstance(r, CveRecord)]
    newer = [msgspec.structs.replace(r, last_modified="2099-01-01T00:00:00.000")
             for r in records]
    size = sum(len(r.raw) for r in records) / len(records)
    print(f"{len(records):,} generated records of ~{size:,.0f} bytes, batches of "
          f"{args.batch}, {args.rounds} rounds, PostgreSQL at {args.pg}")
    if args.part in ("write", "all"):
        methods = ["pre-read", "returning", "returning+copy", "staged copy"]
        out: dict[str, list[tuple[float, ...]]] = {m: [] for m in methods}
        for n in range(args.rounds):
            for m in methods if n % 2 == 0 else reversed(methods):
                out[m].append(write_path(args.pg, m, records, newer, args.batch))
        median_table("write_batch records/s (median)", methods, out,
                     ["insert rec/s", "replace rec/s"], [True, True])
    if args.part in ("raw", "all"):
        kinds = ["zlib bytea", "jsonb"]
        pairs = [(r.id, r.raw) for r in records]
        got: dict[str, list[tuple[float, ...]]] = {k: [] for k in kinds}
        for n in range(args.rounds):
            for k in kinds if n % 2 == 0 else reversed(kinds):
                got[k].append(raw_format(args.pg, k, pairs, args.batch))
        median_table("raw column (median)", kinds, got,
                     ["write rec/s", "read rec/s", "MB on disk"], [True, True, False])


if __name__ == "__main__":
    main()
