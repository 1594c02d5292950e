"""Search over a mirror: the query model shared by the CLI, the HTTP API and the
NVD-compatible endpoint.

* :class:`SearchQuery` - every filter; None / False means "no filter".
* :func:`count` - how many records match (ignores offset/limit).
* :func:`iter_raw` - matching records' raw NVD JSON, ordered by published then id,
  from ``offset``, at most ``limit``, streamed in bounded memory (short read
  transactions of a few hundred rows; never a whole result in memory).
* :func:`search` - total plus a page of typed :class:`SearchHit` for display.
* :func:`count_and_iter_raw` / :func:`count_and_iter_hits` - the total and the
  page's records (raw JSON / typed hits) streamed, for writers of large answers.
  With a CPE filter the candidates are scanned once for both (``count`` followed by
  ``iter_raw`` scans them twice), and the iterator never yields more than the total
  announced, even if a sync adds matches meanwhile.

Semantics follow NVD's CVE API (``keywordSearch``, ``cpeName``, ``isVulnerable``...):
see the field comments, :mod:`nvdsync.cpe` for CPE matching and
:mod:`nvdsync.store.query` for how each filter is read. Bad input raises
:class:`~nvdsync.errors.InvalidQuery` before the database is touched::

    from nvdsync.search import SearchQuery, search
    page = search(store, SearchQuery(cpe="cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*"))
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any

import msgspec

from nvdsync.search_filters import prepare

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from sqlalchemy import ColumnElement
    from sqlalchemy.engine import Row

    from nvdsync.search_filters import Filters
    from nvdsync.store.sql import SqlStore

__all__ = [
    "SearchHit",
    "SearchPage",
    "SearchQuery",
    "count",
    "count_and_iter_hits",
    "count_and_iter_raw",
    "iter_raw",
    "search",
]

#: Characters of the description shown in a hit.
EXCERPT = 200


class SearchQuery(msgspec.Struct, frozen=True, kw_only=True):
    cve_id: str | None = None
    keyword: str | None = None  # every word must occur in the English description
    keyword_exact: bool = False  # keyword is one exact phrase (NVD keywordExactMatch)
    cpe: str | None = None  # a CPE 2.3 name; matched with NVD's version-range semantics
    vulnerable_only: bool = False  # NVD isVulnerable: only criteria with vulnerable=true
    severity: str | None = None  # LOW/MEDIUM/HIGH/CRITICAL on the record's best CVSS
    cvss_v2_severity: str | None = None
    cvss_v3_severity: str | None = None
    cvss_v4_severity: str | None = None
    min_score: float | None = None  # on the record's best CVSS (v4, then v3, then v2)
    cwe: str | None = None  # "CWE-79"
    kev: bool = False  # only records in CISA's KEV catalogue
    published_since: str | None = None  # ISO date or date-time (UTC if no offset), inclusive
    published_until: str | None = None  # a date alone includes that whole day
    modified_since: str | None = None
    modified_until: str | None = None
    status: str | None = None  # vulnStatus, e.g. "Analyzed"
    no_rejected: bool = False
    offset: int = 0
    limit: int = 100


class SearchHit(msgspec.Struct, frozen=True, kw_only=True):
    """One matching record, summarised for a result list."""

    id: str
    published: str
    last_modified: str
    status: str | None
    score: float | None  # the preferred CVSS score: v4, else v3, else v2
    severity: str | None
    cvss_version: str | None  # "4.0", "3.1", "3.0" or "2.0"
    kev: bool
    description: str | None  # at most EXCERPT characters, "…" when cut


class SearchPage(msgspec.Struct, frozen=True, kw_only=True):
    total: int  # every match, regardless of offset and limit
    offset: int
    limit: int
    hits: list[SearchHit]


def count(store: SqlStore, query: SearchQuery) -> int:
    """How many records match ``query`` (offset and limit are ignored)."""
    from nvdsync.store import query as sql

    return sql.count(store, prepare(query))


def iter_raw(store: SqlStore, query: SearchQuery) -> Iterator[bytes]:
    """The matching records' JSON exactly as NVD sent it, by published then id.

    The query is checked at once (InvalidQuery is raised by this call, not by the
    first ``next``); the records are then read lazily, a few hundred per short
    transaction.
    """
    from nvdsync.store import query as sql
    from nvdsync.store.schema import cves

    filters = prepare(query)

    def records() -> Iterator[bytes]:
        for row in sql.iter_rows(store, filters, (cves.c.raw,)):
            yield sql.raw_json(row)

    return records()


def _hit_columns() -> tuple[ColumnElement[Any], ...]:
    from nvdsync.store.schema import cves

    c = cves.c
    return (
        c.last_modified, c.vuln_status, c.description, c.kev_date_added,
        c.cvss_v2_score, c.cvss_v2_severity, c.cvss_v3_version, c.cvss_v3_score,
        c.cvss_v3_severity, c.cvss_v4_score, c.cvss_v4_severity,
    )


def _total_and_rows(
    store: SqlStore, filters: Filters, columns: Sequence[ColumnElement[Any]]
) -> tuple[int, Iterator[Row[Any]]]:
    """The total and the page's rows (read lazily), with one scan of CPE candidates."""
    from nvdsync.store import query as sql
    from nvdsync.store.schema import cves

    if filters.cpe is not None:  # the matching keys give the total and the page
        keys = sql.matching_keys(store, filters)
        window = keys[filters.offset : filters.offset + filters.limit]
        return len(keys), sql.rows_for_keys(store, window, (cves.c.published, cves.c.id,
                                                             *columns))
    total = sql.count(store, filters)
    # A sync committing after the count may add matches: never yield more than the
    # count allows, so a response's header and body agree.
    size = max(0, min(filters.limit, total - filters.offset))
    return total, islice(sql.iter_rows(store, filters, columns), size)


def count_and_iter_raw(store: SqlStore, query: SearchQuery) -> tuple[int, Iterator[bytes]]:
    """How many records match, and the page's records as NVD sent them (lazily).

    InvalidQuery is raised by the call; at most ``min(limit, total - offset)``
    records are yielded.
    """
    from nvdsync.store import query as sql
    from nvdsync.store.schema import cves

    total, rows = _total_and_rows(store, prepare(query), (cves.c.raw,))
    return total, (sql.raw_json(row) for row in rows)


def count_and_iter_hits(
    store: SqlStore, query: SearchQuery
) -> tuple[int, Iterator[SearchHit]]:
    """Like :func:`search`, but the hits are read lazily (a few hundred per read)."""
    total, rows = _total_and_rows(store, prepare(query), _hit_columns())
    return total, (_hit(row) for row in rows)


def search(store: SqlStore, query: SearchQuery) -> SearchPage:
    """The total and one page of typed hits (for the CLI table and the HTTP API)."""
    from nvdsync.store import query as sql

    filters = prepare(query)
    if filters.cpe is not None:
        total, rows = _total_and_rows(store, filters, _hit_columns())
        hits = [_hit(row) for row in rows]
    else:
        hits = [_hit(row) for row in sql.iter_rows(store, filters, _hit_columns())]
        if filters.offset == 0 and len(hits) < filters.limit:
            total = len(hits)  # the whole result is on this page: no second query
        else:
            total = sql.count(store, filters)
    return SearchPage(total=total, offset=filters.offset, limit=filters.limit, hits=hits)


def _hit(row: Any) -> SearchHit:
    if row.cvss_v4_score is not None:
        score, severity, version = row.cvss_v4_score, row.cvss_v4_severity, "4.0"
    elif row.cvss_v3_score is not None:
        score, severity, version = row.cvss_v3_score, row.cvss_v3_severity, row.cvss_v3_version
    elif row.cvss_v2_score is not None:
        score, severity, version = row.cvss_v2_score, row.cvss_v2_severity, "2.0"
    else:
        score = severity = version = None
    text = row.description
    if text is not None and len(text) > EXCERPT:
        text = text[: EXCERPT - 1].rstrip() + "…"
    return SearchHit(
        id=row.id,
        published=row.published,
        last_modified=row.last_modified,
        status=row.vuln_status,
        score=score,
        severity=severity,
        cvss_version=version,
        kev=row.kev_date_added is not None,
        description=text,
    )
