"""The SQL side of search: filters as SQLAlchemy Core conditions, read in short pages.

Two ways through, both ordered by (published, id) like NVD:

* **No CPE filter**: everything is a WHERE clause. ``count`` is one ``count(*)``;
  records are read with keyset pagination (the first page by OFFSET, then "after
  the last key"), one short read transaction per page of :data:`PAGE` rows, so a
  2,000-record answer never sits in memory whole and no transaction stays open
  while the caller writes a response.
* **CPE filter**: version ranges cannot be compared in SQL (``2.9`` < ``2.10``,
  ``1.0.1g``), so the store finds candidate criteria by vendor and product (an
  index), :mod:`nvdsync.cpe` decides in Python, and only the keys
  ``(published, id)`` of matching records are kept: memory grows with the number of
  matches, at ~100 bytes each, never with their JSON.

Keywords use the full-text index (FTS5 / tsvector); see :func:`_keyword` for how
both back ends give the same answer.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import (
    bindparam,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)

from nvdsync.cpe import criteria_matches, fs_escape, unescape
from nvdsync.store.engine import translate_errors
from nvdsync.store.fulltext import FTS_TABLE, pg_document
from nvdsync.store.rows import decompress
from nvdsync.store.schema import cve_cpe_matches, cve_cwes, cves

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from sqlalchemy import ColumnElement, Select, TextClause
    from sqlalchemy.engine import Connection, Row

    from nvdsync.search_filters import Filters
    from nvdsync.store.sql import SqlStore

    Condition: TypeAlias = ColumnElement[bool] | TextClause

__all__ = [
    "PAGE",
    "best_score",
    "best_severity",
    "conditions",
    "count",
    "iter_rows",
    "matching_keys",
    "raw_json",
    "rows_for_keys",
]

#: Rows per read transaction: ~1 MB of compressed JSON at NVD's record sizes.
PAGE = 500
_WORD = re.compile(r"\w+")  # a keyword word; FTS5 is told to keep "_" in tokens too
_ALNUM = re.compile(r"[^\W_]+")  # a token of the PostgreSQL tsvector document

Key = tuple[str, str]  # (published, id)


def best_score() -> ColumnElement[Any]:
    """The record's preferred CVSS score: v4, else v3, else v2 (as SearchQuery says)."""
    c = cves.c
    return case(
        (c.cvss_v4_score.is_not(None), c.cvss_v4_score),
        (c.cvss_v3_score.is_not(None), c.cvss_v3_score),
        else_=c.cvss_v2_score,
    )


def best_severity() -> ColumnElement[Any]:
    c = cves.c
    return case(
        (c.cvss_v4_score.is_not(None), c.cvss_v4_severity),
        (c.cvss_v3_score.is_not(None), c.cvss_v3_severity),
        else_=c.cvss_v2_severity,
    )


def _keyword(terms: Sequence[str], exact: bool, dialect: str) -> list[Condition]:
    """NVD's keywordSearch over the English description.

    The keyword is read as words (runs of letters, digits and ``_``). Without
    ``exact`` every word must begin a word of the description (NVD: "circle" matches
    "circles" but not "encircle"); with it the words must occur together, in order,
    as whole words. On SQLite the FTS5 index (tokenised the same way) answers
    exactly. PostgreSQL's text parser splits on ``_`` and keeps some compounds, so
    its tsvector index only narrows the candidates and a word-boundary regular
    expression (``\\m`` = start of a word) decides.
    """
    words = [w for term in terms for w in _WORD.findall(term.lower())]
    if not words:
        return [false()]  # nothing to look for matches nothing, as the mock NVD does
    if dialect != "postgresql":
        if exact:
            fts = '"' + " ".join(words) + '"'
        else:
            fts = " AND ".join(f'"{w}"*' for w in dict.fromkeys(words))
        match = text(f"cves.rowid IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} "
                     "MATCH :fts_query)").bindparams(fts_query=fts)
        return [match]
    description = func.coalesce(cves.c.description, "")
    if exact:
        patterns = ["\\m" + "\\M\\W+".join(words) + "\\M"]
    else:
        patterns = ["\\m" + w for w in dict.fromkeys(words)]
    where: list[Condition] = [description.op("~*")(p) for p in patterns]
    runs = dict.fromkeys(r for w in words for r in _ALNUM.findall(w))
    if runs:  # words of "_" alone have no tsvector token: the regex alone decides
        tsquery = " & ".join(f"'{r}':*" for r in runs)
        where.insert(0, pg_document().op("@@")(
            func.to_tsquery(literal_column("'simple'::regconfig"), tsquery)))
    return where


def conditions(f: Filters, dialect: str) -> list[Condition]:
    """Every filter but the CPE one, as conditions on ``cves``."""
    c = cves.c
    where: list[Condition] = []
    if f.cve_id is not None:
        where.append(c.id == f.cve_id)
    if f.terms:
        where += _keyword(f.terms, f.keyword_exact, dialect)
    if f.severity is not None:
        where.append(best_severity() == f.severity)
    for column, value in (
        (c.cvss_v2_severity, f.cvss_v2_severity),
        (c.cvss_v3_severity, f.cvss_v3_severity),
        (c.cvss_v4_severity, f.cvss_v4_severity),
    ):
        if value is not None:
            where.append(column == value)
    if f.min_score is not None:
        where.append(best_score() >= f.min_score)
    if f.cwe is not None:
        where.append(
            exists().where(cve_cwes.c.cve_id == c.id, cve_cwes.c.cwe == f.cwe)
        )
    if f.kev:
        where.append(c.kev_date_added.is_not(None))
    for column, low, high in (
        (c.published, f.published_since, f.published_until),
        (c.last_modified, f.modified_since, f.modified_until),
    ):
        if low is not None:
            where.append(column >= low)
        if high is not None:
            where.append(column <= high)
    if f.status is not None:
        where.append(c.vuln_status == f.status)
    if f.no_rejected:
        where.append(or_(c.vuln_status.is_(None), c.vuln_status != "Rejected"))
    return where


@contextmanager
def _read(store: SqlStore, action: str) -> Iterator[Connection]:
    """A short read transaction on ``store`` with its errors translated."""
    with translate_errors(store.location, action), store.engine.begin() as conn:
        yield conn


def _variants(value: str) -> list[str]:
    """The ways NVD may have written a vendor or product: as given and FS-escaped."""
    return sorted({value, fs_escape(unescape(value))})


def matching_keys(store: SqlStore, f: Filters) -> list[Key]:
    """(published, id) of every record with a criteria matching ``f.cpe``, sorted.

    The other filters are applied in the same SQL, so only survivors are checked in
    Python. Rows are streamed from the cursor, not fetched whole.
    """
    assert f.cpe is not None
    name = f.cpe
    m = cve_cpe_matches.c
    where = [
        m.vendor.in_(_variants(name.vendor)),
        m.product.in_(_variants(name.product)),
        m.part.in_([name.part, "*"]),
        *conditions(f, store.engine.dialect.name),
    ]
    if f.vulnerable_only:
        where.append(m.vulnerable.is_(True))
    query = (
        select(cves.c.published, cves.c.id, m.criteria, m.version_start_including,
               m.version_start_excluding, m.version_end_including, m.version_end_excluding)
        .select_from(cve_cpe_matches.join(cves, cves.c.id == m.cve_id))
        .where(*where)
    )
    found: set[Key] = set()
    with _read(store, "searching by CPE") as conn:
        result = conn.execution_options(yield_per=2000).execute(query)
        for row in result:
            key = (row.published, row.id)
            if key not in found and criteria_matches(row.criteria, name, row[3:7]):
                found.add(key)
    return sorted(found)


def count(store: SqlStore, f: Filters) -> int:
    """How many records match ``f`` (offset and limit ignored)."""
    if f.cpe is not None:
        return len(matching_keys(store, f))
    query = select(func.count()).select_from(cves).where(*conditions(f, store.engine.dialect.name))
    with _read(store, "counting search results") as conn:
        return int(conn.scalar(query) or 0)


def iter_rows(
    store: SqlStore, f: Filters, columns: Sequence[ColumnElement[Any]]
) -> Iterator[Row[Any]]:
    """Rows of ``columns`` (plus published and id) for ``f``'s page, in order.

    Each database read is one short transaction of at most :data:`PAGE` rows.
    """
    if f.limit == 0:
        return
    selected = (cves.c.published, cves.c.id, *columns)
    if f.cpe is not None:
        keys = matching_keys(store, f)[f.offset : f.offset + f.limit]
        yield from rows_for_keys(store, keys, selected)
        return
    where = conditions(f, store.engine.dialect.name)
    base = select(*selected).where(*where).order_by(cves.c.published, cves.c.id)
    remaining = f.limit
    page: Select[Any] = base.offset(f.offset) if f.offset else base
    while remaining > 0:
        size = min(PAGE, remaining)
        with _read(store, "reading search results") as conn:
            rows = conn.execute(page.limit(size)).all()
        yield from rows
        remaining -= len(rows)
        if len(rows) < size:
            return
        last = rows[-1]
        after = tuple_(cves.c.published, cves.c.id) > tuple_(
            _key_value(last.published), _key_value(last.id)
        )
        page = base.where(after)


def _key_value(value: str) -> ColumnElement[Any]:
    """A bound key value typed like the key columns (byte order on PostgreSQL)."""
    return bindparam(None, value, type_=cves.c.id.type)


def rows_for_keys(
    store: SqlStore, keys: Sequence[Key], selected: Sequence[ColumnElement[Any]]
) -> Iterator[Row[Any]]:
    """Rows of ``selected`` (which must include ``cves.c.id``) in the order of ``keys``."""
    for start in range(0, len(keys), PAGE):
        chunk = keys[start : start + PAGE]
        ids = [cve_id for _published, cve_id in chunk]
        query = select(*selected).where(cves.c.id.in_(ids))
        with _read(store, "reading search results") as conn:
            by_id = {row.id: row for row in conn.execute(query)}
        for cve_id in ids:
            row = by_id.get(cve_id)
            if row is not None:  # deleted since the keys were read: skip it
                yield row


def raw_json(row: Row[Any]) -> bytes:
    """The record's JSON from a row that selected ``cves.raw``."""
    return decompress(row.raw)

