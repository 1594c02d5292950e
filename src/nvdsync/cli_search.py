"""``nvdsync search``: the search filters on the command line.

A thin layer over :meth:`nvdsync.mirror.Mirror.search` (``iter_raw`` for
``--format raw``, :func:`~nvdsync.search.count_and_iter_hits` for JSON and CSV):
options become a :class:`~nvdsync.search.SearchQuery`, bad filters come back as
:class:`~nvdsync.errors.InvalidQuery` and exit 2 with the library's message, and the
page is printed as a table, JSON, CSV or the records
themselves. JSON and CSV are written hit by hit as the store reads them; a table
is built whole, so ``--limit`` is capped (:data:`MAX_LIMIT`) except for raw output.
"""

from __future__ import annotations

import csv
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer

from nvdsync.cli import DbOpt, app, fail, open_mirror, out, settings
from nvdsync.errors import InvalidQuery, NvdSyncError
from nvdsync.search import SearchQuery, count_and_iter_hits

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nvdsync.search import SearchHit, SearchPage

__all__ = ["search_cmd"]


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    raw = "raw"


#: Most records one run prints as a table, JSON or CSV: a table is built in memory,
#: and a page this long is more than anyone reads; raw output streams any number.
MAX_LIMIT = 10_000
_CSV_FIELDS = ("id", "published", "last_modified", "status", "score", "severity",
               "cvss_version", "kev", "description")


@app.command("search")
def search_cmd(
    keyword: Annotated[list[str] | None, typer.Argument(
        help="Words that must all begin words of the description (NVD keywordSearch).",
        show_default=False)] = None,
    exact: Annotated[bool, typer.Option("--exact", help="The words form one exact phrase "
                                        "(NVD keywordExactMatch).")] = False,
    cpe: Annotated[str | None, typer.Option("--cpe", help="A CPE 2.3 name, e.g. cpe:2.3:a:"
                                            "apache:log4j:2.14.1:*:*:*:*:*:*:*; version "
                                            "ranges are honoured.", show_default=False)] = None,
    vulnerable: Annotated[bool, typer.Option("--vulnerable", help="With --cpe: only where "
                                             "the product itself is vulnerable (NVD "
                                             "isVulnerable).")] = False,
    severity: Annotated[str | None, typer.Option("--severity", help="LOW, MEDIUM, HIGH or "
                                                 "CRITICAL on the preferred CVSS (v4, v3, v2).",
                                                 show_default=False)] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="Preferred CVSS "
                                                    "score at least this (0-10).",
                                                    show_default=False)] = None,
    cwe: Annotated[str | None, typer.Option("--cwe", help="e.g. CWE-79 or 79.",
                                            show_default=False)] = None,
    kev: Annotated[bool, typer.Option("--kev", help="Only CVEs in CISA's Known Exploited "
                                      "Vulnerabilities catalogue.")] = False,
    published_since: Annotated[str | None, typer.Option(
        "--published-since", help="ISO date or date-time (UTC unless an offset is given).",
        show_default=False)] = None,
    published_until: Annotated[str | None, typer.Option(
        "--published-until", help="Inclusive; a date alone includes the whole day.",
        show_default=False)] = None,
    modified_since: Annotated[str | None, typer.Option(
        "--modified-since", help="Last modified at or after this date or date-time.",
        show_default=False)] = None,
    modified_until: Annotated[str | None, typer.Option(
        "--modified-until", help="Last modified at or before (inclusive).",
        show_default=False)] = None,
    status: Annotated[str | None, typer.Option("--status", help="NVD vulnStatus, e.g. "
                                               "Analyzed, Modified, Rejected.",
                                               show_default=False)] = None,
    no_rejected: Annotated[bool, typer.Option("--no-rejected", help="Leave out rejected "
                                              "CVEs.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="Records to show.")] = 20,
    offset: Annotated[int, typer.Option("--offset", help="Matches to skip (by published "
                                        "date, then id).")] = 0,
    fmt: Annotated[Format, typer.Option("--format", help="table, json (the page with its "
                                        "total), csv, or raw (each record's NVD JSON, one "
                                        "a line).")] = Format.table,
    db: DbOpt = None,
) -> None:
    """Find records: keywords, CPE with version ranges, severity, CWE, KEV, dates."""
    query = SearchQuery(
        keyword=" ".join(keyword) if keyword else None, keyword_exact=exact, cpe=cpe,
        vulnerable_only=vulnerable, severity=severity, min_score=min_score, cwe=cwe, kev=kev,
        published_since=published_since, published_until=published_until,
        modified_since=modified_since, modified_until=modified_until, status=status,
        no_rejected=no_rejected, offset=offset, limit=limit,
    )
    if fmt is not Format.raw and limit > MAX_LIMIT:
        fail(f"--limit {limit} is more than {MAX_LIMIT:,}", 2,
             "page with --offset, or use --format raw to export every match")
    with open_mirror(settings(db=db)) as mirror:
        try:
            if fmt is Format.raw:
                _raw(mirror.iter_raw(query))
            elif fmt is Format.table:
                _table(mirror.search(query), mirror.location)
            else:
                # Streamed: hits are written as the store's short reads produce them.
                total, hits = count_and_iter_hits(mirror.store, query)
                (_json if fmt is Format.json else _csv)(total, query, hits)
        except InvalidQuery as exc:
            fail(str(exc), 2, "see `nvdsync search --help`")
        except NvdSyncError as exc:
            fail(str(exc), 1)


def _raw(records: Iterator[bytes]) -> None:
    sink = sys.stdout.buffer
    for raw in records:
        sink.write(raw + b"\n")
    sink.flush()


def _json(total: int, query: SearchQuery, hits: Iterator[SearchHit]) -> None:
    """The same document as ``msgspec.json.encode(SearchPage)``, written hit by hit."""
    write = sys.stdout.write
    write(f'{{"total":{total},"offset":{query.offset},"limit":{query.limit},"hits":[')
    separator = ""
    for hit in hits:
        write(separator + msgspec.json.encode(hit).decode())
        separator = ","
    write("]}\n")
    sys.stdout.flush()


def _csv(_total: int, _query: SearchQuery, hits: Iterator[SearchHit]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    for hit in hits:
        values = msgspec.structs.asdict(hit)
        writer.writerow(["" if values[f] is None else values[f] for f in _CSV_FIELDS])
    sys.stdout.flush()


def _table(page: SearchPage, location: str) -> None:
    from rich.console import Console
    from rich.table import Table

    if page.total == 0:
        out(f"no records in {location} match")
        return
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = 160  # pipes and logs: keep descriptions readable
    table = Table(box=None, pad_edge=False)
    for name, justify in (("id", "left"), ("published", "left"), ("score", "right"),
                          ("severity", "left"), ("kev", "left"), ("status", "left"),
                          ("description", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "description",  # type: ignore[arg-type]
                         overflow="ellipsis")
    for hit in page.hits:
        table.add_row(
            hit.id, hit.published[:10], "" if hit.score is None else f"{hit.score:.1f}",
            hit.severity or "", "KEV" if hit.kev else "", hit.status or "",
            (hit.description or "").replace("\n", " "),
        )
    # Record text is NVD's, not ours: never read it as Rich markup.
    console.print(table, markup=False)
    shown = len(page.hits)
    first = page.offset + 1 if shown else page.offset
    more = page.offset + shown < page.total
    hint = f"; --offset {page.offset + shown} for more" if more else ""
    out(f"{first}-{page.offset + shown} of {page.total}{hint}")
