"""Search over the real records, on SQLite and PostgreSQL.

Expected answers come from the records themselves (search_support's reference
filters), or, for CPE matching, from the configurations written in the records.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from nvdsync.errors import InvalidQuery
from nvdsync.mirror import Mirror
from nvdsync.search import (
    SearchQuery,
    count,
    count_and_iter_hits,
    count_and_iter_raw,
    iter_raw,
    search,
)
from nvdsync.store import query as sql
from search_support import (
    LOG4SHELL,
    best,
    database,
    keyword_hit,
    loaded,
    ordered,
    raw_by_id,
    records,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from nvdsync.models import CveRecord
    from nvdsync.store import SqlStore

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
RECORDS = records()
LOG4J = "cpe:2.3:a:apache:log4j:{}:*:*:*:*:*:*:*"


@pytest.fixture(scope="module", params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[SqlStore]:
    """One mirror of the real records per back end, shared by the module (read-only)."""
    def server() -> str:
        url: str = request.getfixturevalue("pg_server")
        return url

    with database(request.param, tmp_path_factory.mktemp("search"), server) as db:
        opened = loaded(db)
        try:
            yield opened
        finally:
            opened.close()


def ids(store: SqlStore, **filters: object) -> list[str]:
    """Ids found by search, checked against count and iter_raw on the way."""
    query = SearchQuery(limit=1000, **filters)  # type: ignore[arg-type]
    found = [hit.id for hit in search(store, query).hits]
    assert count(store, query) == len(found)
    raw = list(iter_raw(store, query))
    assert len(raw) == len(found)
    return found


def expect(keep: Callable[[CveRecord], bool]) -> list[str]:
    return ordered([r for r in RECORDS if keep(r)])


# --- CPE -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("version", "found"),
    [
        ("2.14.1", True),  # inside [2.13.0, 2.15.0)
        ("2.13.0", True),  # start including
        ("2.15.0", False),  # end excluding
        ("2.17.1", False),  # fixed release
        ("2.12.1", True),  # inside [2.4.0, 2.12.2)
        ("2.12.2", False),
        ("2.3.0", True),  # inside [2.0.1, 2.3.1)
        ("2.3.1", False),
        ("1.2.17", False),  # log4j 1.x is not affected by this CVE
        ("2.15.0-rc1", True),  # a release candidate of 2.15.0 precedes it
        ("2.13.0-beta1", False),  # ... and 2.13.0's precedes 2.13.0
    ],
)
def test_log4shell_version_ranges(store: SqlStore, version: str, found: bool) -> None:
    assert (LOG4SHELL in ids(store, cpe=LOG4J.format(version))) is found


@pytest.mark.parametrize(
    ("update", "found"), [("beta9", True), ("rc1", True), ("rc2", True), ("-", True),
                          ("rc3", False), ("*", True)],
)
def test_log4shell_exact_prereleases(store: SqlStore, update: str, found: bool) -> None:
    name = f"cpe:2.3:a:apache:log4j:2.0:{update}:*:*:*:*:*:*"
    assert (LOG4SHELL in ids(store, cpe=name)) is found


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # versionEndIncluding 7.3.3 with start 6.2.0 (CVE-2022-23630); 7.10 is newer
        ("cpe:2.3:a:gradle:gradle:7.3.3:*:*:*:*:*:*:*", ["CVE-2022-23630"]),
        ("cpe:2.3:a:gradle:gradle:6.2.0:*:*:*:*:*:*:*", ["CVE-2022-23630"]),
        ("cpe:2.3:a:gradle:gradle:7.10:*:*:*:*:*:*:*", []),
        ("cpe:2.3:a:gradle:gradle:6.1:*:*:*:*:*:*:*", []),
        # versionEndIncluding only (CVE-1999-0316)
        ("cpe:2.3:a:sam_lantinga:splitvt:1.6.3:*:*:*:*:*:*:*", ["CVE-1999-0316"]),
        ("cpe:2.3:a:sam_lantinga:splitvt:1.6.4:*:*:*:*:*:*:*", []),
        # versionEndExcluding only (CVE-1999-0070: http_server before 1.3.0)
        ("cpe:2.3:a:apache:http_server:1.2.6:*:*:*:*:*:*:*", ["CVE-1999-0070"]),
        ("cpe:2.3:a:apache:http_server:1.3.0:*:*:*:*:*:*:*", []),
        # exact version (CVE-1999-0023: inet 5.01 and 6.01)
        ("cpe:2.3:a:inet:inet:6.01:*:*:*:*:*:*:*", ["CVE-1999-0023"]),
        ("cpe:2.3:a:inet:inet:6.02:*:*:*:*:*:*:*", []),
        # criteria version * (every version) and - (NA), both in CVE-1999-0023
        ("cpe:2.3:o:bsdi:bsd_os:3.1:*:*:*:*:*:*:*", ["CVE-1999-0023"]),
        ("cpe:2.3:o:sun:sunos:-:*:*:*:*:*:*:*", ["CVE-1999-0023"]),
        ("cpe:2.3:o:sun:sunos:5.8:*:*:*:*:*:*:*", []),
        # the part must agree
        ("cpe:2.3:o:apache:log4j:2.14.1:*:*:*:*:*:*:*", []),
    ],
)
def test_cpe_bounds_on_real_records(store: SqlStore, name: str, expected: list[str]) -> None:
    found = ids(store, cpe=name)
    assert [i for i in found if i in {"CVE-2022-23630", "CVE-1999-0316", "CVE-1999-0070",
                                      "CVE-1999-0023", LOG4SHELL}] == expected


def test_is_vulnerable_leaves_out_platform_criteria(store: SqlStore) -> None:
    """Windows is only the platform (vulnerable=false) in GlobalProtect's records."""
    windows = "cpe:2.3:o:microsoft:windows:-:*:*:*:*:*:*:*"
    platform = expect(lambda r: any(
        m.vendor == "microsoft" and m.product == "windows" and m.version in ("-", "*")
        and not m.version_end_excluding and not m.version_end_including
        for m in r.cpe_matches))
    assert ids(store, cpe=windows) == platform
    assert platform  # the fixture has such records (CVE-2022-0016 ...)
    vulnerable = expect(lambda r: any(
        m.vendor == "microsoft" and m.product == "windows" and m.version in ("-", "*")
        and m.vulnerable and not m.version_end_excluding and not m.version_end_including
        for m in r.cpe_matches))
    assert ids(store, cpe=windows, vulnerable_only=True) == vulnerable
    assert "CVE-2022-0016" in platform
    assert "CVE-2022-0016" not in vulnerable


def test_any_version_finds_every_record_of_a_product(store: SqlStore) -> None:
    expected = expect(lambda r: any(m.vendor == "paloaltonetworks" and m.product ==
                                    "globalprotect" for m in r.cpe_matches))
    found = ids(store, cpe="cpe:2.3:a:paloaltonetworks:globalprotect:*:*:*:*:*:*:*:*")
    assert found == expected
    assert len(found) >= 2


def test_cpe_combines_with_other_filters(store: SqlStore) -> None:
    name = LOG4J.format("2.14.1")
    assert ids(store, cpe=name, kev=True, severity="CRITICAL") == [LOG4SHELL]
    assert ids(store, cpe=name, published_until="2021-12-01") == []
    assert ids(store, cpe=name, keyword="JNDI LDAP") == [LOG4SHELL]


# --- keywords -----------------------------------------------------------------------

@pytest.mark.parametrize(
    "keyword",
    ["buffer overflow", "BUFFER Overflow", "overfl", "verflow", "remote attackers",
     "sql injection", "linux kernel", "log4j", "2.15.0", "cross-site scripting",
     "denial of service", "JNDI ldap", "ReMoTe", "log4j-core", "raw_ops", "raw_op", "ops",
     "(excluding"],
)
def test_keyword_every_word_starts_a_word(store: SqlStore, keyword: str) -> None:
    expected = expect(lambda r: keyword_hit(r.description, keyword))
    assert ids(store, keyword=keyword) == expected


def test_keyword_semantics_are_not_vacuous(store: SqlStore) -> None:
    assert ids(store, keyword="overfl")  # a prefix finds "overflow"
    assert not ids(store, keyword="verflow")  # the middle of a word does not
    assert ids(store, keyword="overflow buffer")  # words in any order ...
    assert not ids(store, keyword="overflow buffer", keyword_exact=True)  # ... unless exact
    assert not ids(store, keyword="buffer overfl", keyword_exact=True)  # exact: whole words
    assert not ids(store, keyword="--")  # no word at all: nothing matches
    raw_ops = ids(store, keyword="raw_op")  # "_" joins a word ...
    assert raw_ops
    assert not set(raw_ops) & set(ids(store, keyword="ops"))  # ... "ops" does not begin it


@pytest.mark.parametrize("phrase", ["buffer overflow", "remote attackers to execute",
                                    "Apache Log4j2 2.0-beta9", "log4j 2.15.0, this"])
def test_keyword_exact_phrase(store: SqlStore, phrase: str) -> None:
    expected = expect(lambda r: keyword_hit(r.description, phrase, exact=True))
    assert expected
    assert ids(store, keyword=phrase, keyword_exact=True) == expected


def test_keyword_follows_description_updates(db_factory: Callable[[], str]) -> None:
    """The full-text index is kept in step when a newer record replaces the text."""
    import msgspec

    store = loaded(db_factory())
    try:
        old = next(r for r in RECORDS if r.id == LOG4SHELL)
        newer = msgspec.structs.replace(
            old, last_modified="2099-01-01T00:00:00.000",
            description="Rewritten text about zyxwvut gadgets.",
        )
        assert ids(store, keyword="JNDI") == [LOG4SHELL]
        store.write_batch([newer])
        assert ids(store, keyword="JNDI") == []
        assert ids(store, keyword="zyxwvut") == [LOG4SHELL]
    finally:
        store.close()


def test_keyword_keeps_diacritics(db_factory: Callable[[], str]) -> None:
    """``cafe`` does not match ``café`` on either back end, as on the mock NVD (FTS5's
    default tokenizer would fold the accent away on SQLite only)."""
    import msgspec

    from nvdsync.mock.filters import keyword_matches

    store = loaded(db_factory())
    try:
        old = next(r for r in RECORDS if r.id == LOG4SHELL)
        text = "A flaw in the café ordering kiosk of Señor Naïve."
        store.write_batch([msgspec.structs.replace(
            old, last_modified="2099-01-01T00:00:00.000", description=text)])
        for keyword in ("cafe", "senor", "naive", "café", "señor", "naïve", "caf"):
            expected = [LOG4SHELL] if keyword_matches(text, keyword, exact=False) else []
            assert ids(store, keyword=keyword) == expected, keyword
        assert ids(store, keyword="café") == [LOG4SHELL]  # the rule is not vacuous
        assert ids(store, keyword="cafe") == []
    finally:
        store.close()


# --- other filters -------------------------------------------------------------------

@pytest.mark.parametrize("severity", ["LOW", "MEDIUM", "HIGH", "CRITICAL"])
def test_severity_on_preferred_score(store: SqlStore, severity: str) -> None:
    expected = expect(lambda r: best(r) is not None and best(r).severity == severity)
    assert ids(store, severity=severity.lower()) == expected


@pytest.mark.parametrize(("field", "attr"), [("cvss_v2_severity", "cvss_v2"),
                                             ("cvss_v3_severity", "cvss_v3"),
                                             ("cvss_v4_severity", "cvss_v4")])
def test_per_version_severity(store: SqlStore, field: str, attr: str) -> None:
    for severity in ("LOW", "MEDIUM", "HIGH"):
        expected = expect(lambda r, s=severity: getattr(r, attr) is not None
                          and getattr(r, attr).severity == s)
        assert ids(store, **{field: severity}) == expected


@pytest.mark.parametrize("score", [0.0, 5.0, 7.5, 9.8, 10.0])
def test_min_score(store: SqlStore, score: float) -> None:
    expected = expect(lambda r: best(r) is not None and best(r).score >= score)
    assert ids(store, min_score=score) == expected


@pytest.mark.parametrize("cwe", ["CWE-79", "79", "cwe-787", "NVD-CWE-Other", "nvd-cwe-noinfo"])
def test_cwe(store: SqlStore, cwe: str) -> None:
    canonical = {"79": "CWE-79", "cwe-787": "CWE-787", "nvd-cwe-noinfo": "NVD-CWE-noinfo"}
    wanted = canonical.get(cwe, cwe)
    expected = expect(lambda r: wanted in r.cwes)
    assert expected
    assert ids(store, cwe=cwe) == expected


def test_kev_status_and_rejected(store: SqlStore) -> None:
    assert ids(store, kev=True) == expect(lambda r: r.kev is not None and
                                          r.kev.date_added is not None)
    assert LOG4SHELL in ids(store, kev=True)
    rejected = expect(lambda r: r.vuln_status == "Rejected")
    assert rejected
    assert ids(store, status="rejected") == rejected
    assert ids(store, status="Analyzed") == expect(lambda r: r.vuln_status == "Analyzed")
    assert ids(store, no_rejected=True) == expect(lambda r: r.vuln_status != "Rejected")


@pytest.mark.parametrize(
    ("since", "until", "low", "high"),
    [
        ("2022-01-01", "2022-03-31", "2022-01-01T00:00:00.000", "2022-03-31T23:59:59.999"),
        ("2021-12-10T10:15:09.143", None, "2021-12-10T10:15:09.143", None),
        # an offset is converted to UTC, NVD's own time zone
        ("2021-12-10T12:15:09.143+02:00", "2021-12-10T10:15:09.143Z",
         "2021-12-10T10:15:09.143", "2021-12-10T10:15:09.143"),
    ],
)
def test_date_windows(store: SqlStore, since: str, until: str | None, low: str,
                      high: str | None) -> None:
    def inside(value: str) -> bool:
        return value >= low and (high is None or value <= high)

    assert ids(store, published_since=since, published_until=until) == expect(
        lambda r: inside(r.published))
    assert ids(store, modified_since=since, modified_until=until) == expect(
        lambda r: inside(r.last_modified))


def test_cve_id(store: SqlStore) -> None:
    assert ids(store, cve_id="cve-2021-44228") == [LOG4SHELL]
    assert ids(store, cve_id="CVE-2000-99999") == []


# --- order, paging, raw JSON, hits ---------------------------------------------------

@pytest.mark.parametrize("page", [3, 500])
@pytest.mark.parametrize("cpe", [None, "cpe:2.3:o:microsoft:windows:-:*:*:*:*:*:*:*"])
def test_iter_raw_pages_in_published_order(store: SqlStore, monkeypatch: pytest.MonkeyPatch,
                                           page: int, cpe: str | None) -> None:
    """Exact raw JSON, ordered by (published, id), sliced by offset and limit, also when
    the read crosses several of the store's pages (PAGE=3)."""
    monkeypatch.setattr(sql, "PAGE", page)
    raw = raw_by_id()
    everything = ids(store, cpe=cpe)
    assert everything == ordered([r for r in RECORDS if r.id in set(everything)])
    for offset, limit in [(0, 5), (2, 7), (len(everything) - 2, 10), (len(everything), 3),
                          (0, 0)]:
        query = SearchQuery(cpe=cpe, offset=offset, limit=limit)
        got = list(iter_raw(store, query))
        assert got == [raw[i] for i in everything[offset : offset + limit]]


def test_iter_raw_reads_in_short_pages(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each database read returns at most PAGE rows, so memory does not grow with limit."""
    from sqlalchemy import event

    monkeypatch.setattr(sql, "PAGE", 10)
    fetched: list[int] = []

    def after(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM cves" in statement and "count(" not in statement:
            fetched.append(getattr(cursor, "rowcount", -1))

    event.listen(store.engine, "after_cursor_execute", after)
    try:
        stream = iter_raw(store, SearchQuery(limit=45))
        first = next(stream)
        assert len(fetched) == 1  # lazily: one page read for the first record
        assert [first, *stream]
        assert len(fetched) == 5  # 10 + 10 + 10 + 10 + 5
    finally:
        event.remove(store.engine, "after_cursor_execute", after)


def test_search_page_hits(store: SqlStore) -> None:
    page = search(store, SearchQuery(cve_id=LOG4SHELL))
    assert page.total == 1
    (hit,) = page.hits
    assert (hit.score, hit.severity, hit.cvss_version, hit.kev) == (10.0, "CRITICAL", "3.1", True)
    assert hit.status == "Analyzed"
    assert hit.description is not None
    assert hit.description.endswith("…")
    assert len(hit.description) == 200
    paged = search(store, SearchQuery(offset=10, limit=5))
    assert paged.total == len(RECORDS)
    assert [h.id for h in paged.hits] == ordered(RECORDS)[10:15]


def test_search_pages_cpe_matches(store: SqlStore) -> None:
    windows = "cpe:2.3:o:microsoft:windows:-:*:*:*:*:*:*:*"
    everything = ids(store, cpe=windows)
    assert len(everything) >= 3
    page = search(store, SearchQuery(cpe=windows, offset=1, limit=1))
    assert page.total == len(everything)
    assert [h.id for h in page.hits] == everything[1:2]


@pytest.mark.parametrize("filters", [
    {"cpe": LOG4J.format("2.14.1")},
    {"cpe": "cpe:2.3:o:linux:linux_kernel:*:*:*:*:*:*:*:*", "offset": 1, "limit": 3},
    {"keyword": "buffer", "offset": 2, "limit": 4},
    {"kev": True, "limit": 0},
])
def test_count_and_iter_agree_with_search(store: SqlStore, filters: dict[str, object],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    query = SearchQuery(**filters)  # type: ignore[arg-type]
    page = search(store, query)
    scans = []
    real = sql.matching_keys
    monkeypatch.setattr(sql, "matching_keys", lambda *a: scans.append(1) or real(*a))
    total, raw = count_and_iter_raw(store, query)
    assert total == page.total == count(store, query)
    assert [json.loads(r)["id"] for r in raw] == [h.id for h in page.hits]
    total, hits = count_and_iter_hits(store, query)
    assert (total, list(hits)) == (page.total, page.hits)
    # With a CPE: one scan of the candidates per call (count's own is the third).
    assert len(scans) == (3 if "cpe" in filters else 0)


def test_count_and_iter_raw_never_yields_more_than_announced(
        db_factory: Callable[[], str]) -> None:
    """A sync committing between the count and the reads cannot overfill the page."""
    import msgspec

    store = loaded(db_factory())
    try:
        query = SearchQuery(keyword="JNDI", limit=10)
        total, raw = count_and_iter_raw(store, query)
        assert total == 1
        extra = next(r for r in RECORDS if r.id != LOG4SHELL)
        store.write_batch([msgspec.structs.replace(
            extra, last_modified="2099-01-01T00:00:00.000", description="JNDI again")])
        assert count(store, query) == 2
        assert len(list(raw)) == 1
    finally:
        store.close()


def test_mirror_delegates(store: SqlStore) -> None:
    mirror = Mirror(store)
    query = SearchQuery(cpe=LOG4J.format("2.14.1"))
    assert mirror.count(query) == 1
    assert [h.id for h in mirror.search(query).hits] == [LOG4SHELL]
    assert list(mirror.iter_raw(query)) == [raw_by_id()[LOG4SHELL]]


# --- validation ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("filters", "field", "words"),
    [
        ({"cpe": "cpe:2.3:a:apache:log4j"}, "cpe", "not 13"),
        ({"severity": "SEVERE"}, "severity", "LOW, MEDIUM, HIGH, CRITICAL"),
        ({"cvss_v2_severity": "CRITICAL"}, "cvss_v2_severity", "LOW, MEDIUM, HIGH"),
        ({"published_since": "yesterday"}, "published_since", "ISO date"),
        ({"modified_until": "2024-13-01"}, "modified_until", "ISO date"),
        ({"published_since": "2024-02-01", "published_until": "2024-01-01"},
         "published_since", "is after"),
        ({"offset": -1}, "offset", "negative"),
        ({"limit": -5}, "limit", "negative"),
        ({"vulnerable_only": True}, "vulnerable_only", "needs a cpe"),
        ({"keyword_exact": True}, "keyword_exact", "needs a keyword"),
        ({"keyword": "   "}, "keyword", "empty"),
        ({"cve_id": "2021-44228"}, "cve_id", "CVE-2021-44228"),
        ({"cwe": "XSS"}, "cwe", "CWE-79"),
        ({"min_score": 11.0}, "min_score", "0..10"),
        # int() refuses more than 4,300 digits: these must not reach it
        ({"cwe": "CWE-" + "9" * 5000}, "cwe", "at most 9 digits"),
        ({"cpe": "cpe:2.3:a:python:python:" + "1" * 5000 + ":*:*:*:*:*:*:*"}, "cpe",
         "more than the 1,000 allowed"),
        ({"keyword": "log4j " * 400}, "keyword", "more than the 1,000 allowed"),
        ({"offset": 10**5000}, "offset", "more than 4,611,686,018,427,387,904"),
        ({"limit": 2**62 + 1}, "limit", "more than 4,611,686,018,427,387,904"),
        # year 0 and year 10000 once in UTC
        ({"published_since": "0001-01-01T00:00:00+01:00"}, "published_since", "years 1-9999"),
        ({"modified_until": "9999-12-31T23:30:00-01:00"}, "modified_until", "years 1-9999"),
    ],
)
def test_bad_input_is_explained(store: SqlStore, filters: dict[str, object], field: str,
                                words: str) -> None:
    query = SearchQuery(**filters)  # type: ignore[arg-type]
    for call in (search, count, iter_raw):
        with pytest.raises(InvalidQuery) as info:
            call(store, query)  # iter_raw too raises at the call, not at first next()
        assert info.value.field == field
        assert words in str(info.value)


@pytest.fixture(params=BACKENDS)
def db_factory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Callable[[], str]]:
    """For tests that write: a new database of each kind per test."""
    def server() -> str:
        url: str = request.getfixturevalue("pg_server")
        return url

    with database(request.param, tmp_path_factory.mktemp("write"), server) as db:
        yield lambda: db
