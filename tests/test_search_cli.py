"""``nvdsync search``: options reach the library, output formats, errors as exit codes."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from nvdsync.cli import app
from search_support import LOG4SHELL, best, keyword_hit, loaded, ordered, raw_by_id, records

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LOG4J = "cpe:2.3:a:apache:log4j:{}:*:*:*:*:*:*:*"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "mirror.db")
    loaded(path).close()
    return path


def run(db: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["search", "--db", db, *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_page_for_cpe(db: str) -> None:
    code, stdout, _ = run(db, "--cpe", LOG4J.format("2.14.1"), "--format", "json")
    assert code == 0
    page = json.loads(stdout)
    assert page["total"] == 1
    assert [h["id"] for h in page["hits"]] == [LOG4SHELL]
    code, stdout, _ = run(db, "--cpe", LOG4J.format("2.17.1"), "--format", "json")
    assert json.loads(stdout)["total"] == 0


def test_keyword_words_and_paging(db: str) -> None:
    expected = ordered([r for r in records() if keyword_hit(r.description, "buffer overflow")])
    assert len(expected) > 3
    code, stdout, _ = run(db, "buffer", "overflow", "--limit", "2", "--offset", "1",
                          "--format", "json")
    assert code == 0
    page = json.loads(stdout)
    assert page["total"] == len(expected)
    assert [h["id"] for h in page["hits"]] == expected[1:3]


def test_csv_has_a_header_and_one_row_per_hit(db: str) -> None:
    code, stdout, _ = run(db, "--kev", "--format", "csv", "--limit", "100")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(stdout)))
    kev = ordered([r for r in records() if r.kev is not None and r.kev.date_added])
    assert [row["id"] for row in rows] == kev
    log4shell = next(row for row in rows if row["id"] == LOG4SHELL)
    assert (log4shell["score"], log4shell["severity"], log4shell["kev"]) == ("10.0", "CRITICAL",
                                                                           "True")


def test_raw_prints_the_records_as_nvd_sent_them(db: str) -> None:
    code, stdout, _ = run(db, "--cwe", "917", "--format", "raw")
    assert code == 0
    assert stdout.encode().splitlines() == [raw_by_id()[LOG4SHELL]]


def test_table_shows_hits_and_how_to_page(db: str) -> None:
    code, stdout, _ = run(db, "--severity", "critical", "--limit", "2")
    assert code == 0
    critical = ordered([r for r in records() if best(r) and best(r).severity == "CRITICAL"])
    for cve_id in critical[:2]:
        assert cve_id in stdout
    assert critical[2] not in stdout
    assert f"1-2 of {len(critical)}; --offset 2 for more" in stdout


def test_no_match_is_said(db: str) -> None:
    code, stdout, _ = run(db, "zzzqqq")
    assert code == 0
    assert "no records" in stdout and "match" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cpe", "cpe:2.3:a:apache:log4j"], "not 13"),
        (["--severity", "severe"], "not a severity"),
        (["--published-since", "last week"], "not an ISO date"),
        (["--offset", "-3"], "negative"),
        (["--vulnerable"], "needs a cpe"),
        (["--exact"], "needs a keyword"),
        # int() refuses more than 4,300 digits; dates must stay in years 1-9999 in UTC
        (["--cpe", "cpe:2.3:a:python:python:" + "1" * 5000 + ":*:*:*:*:*:*:*"],
         "characters long"),
        (["--cwe", "CWE-" + "9" * 5000], "not a CWE id"),
        (["--published-since", "0001-01-01T00:00:00+01:00"], "years 1-9999"),
        (["--modified-until", "9999-12-31T23:59:00-05:00"], "years 1-9999"),
        (["--limit", "10001"], "more than 10,000"),
        (["--limit", "10001", "--format", "json"], "more than 10,000"),
        (["--offset", str(2**62 + 1)], "more than 4,611,686,018,427,387,904"),
        (["--offset", "1" * 5000], "Invalid value for '--offset'"),
    ],
)
def test_bad_filters_exit_2_with_the_reason(db: str, args: list[str], message: str) -> None:
    code, stdout, stderr = run(db, *args)
    assert code == 2
    assert message in stderr
    assert "Traceback" not in stderr + stdout


def test_limit_cap_leaves_raw_export_alone(db: str) -> None:
    code, stdout, _ = run(db, "--limit", "10001", "--format", "raw")
    assert code == 0
    assert len(stdout.splitlines()) == len(records())


def test_json_is_the_search_page(db: str) -> None:
    """The streamed JSON is byte for byte the encoded SearchPage, with and without a CPE."""
    import msgspec

    from nvdsync.search import SearchQuery, search
    from nvdsync.store import open_store

    with open_store(db) as store:
        for args, query in (
            (["buffer", "--offset", "1", "--limit", "3"],
             SearchQuery(keyword="buffer", offset=1, limit=3)),
            (["--cpe", LOG4J.format("2.14.1")], SearchQuery(cpe=LOG4J.format("2.14.1"),
                                                           limit=20)),
            (["--kev", "--limit", "0"], SearchQuery(kev=True, limit=0)),
        ):
            code, stdout, _ = run(db, *args, "--format", "json")
            assert code == 0
            assert stdout == msgspec.json.encode(search(store, query)).decode() + "\n"


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_hits_are_written_as_they_are_read(db: str, fmt: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A store failing after two hits: the two are already out (nothing is collected
    first), and the failure is reported with exit 1."""
    from itertools import islice

    import nvdsync.cli_search as cli_search
    from nvdsync.errors import StoreError

    real = cli_search.count_and_iter_hits

    def failing(store: object, query: object) -> tuple[int, Iterator[object]]:
        total, hits = real(store, query)  # type: ignore[arg-type]

        def broken() -> Iterator[object]:
            yield from islice(hits, 2)
            raise StoreError("the disk went away")

        return total, broken()

    monkeypatch.setattr(cli_search, "count_and_iter_hits", failing)
    expected = ordered([r for r in records() if r.kev is not None and r.kev.date_added])
    code, stdout, stderr = run(db, "--kev", "--format", fmt)
    assert code == 1
    assert "the disk went away" in stderr
    assert all(cve_id in stdout for cve_id in expected[:2])
    assert expected[2] not in stdout


def test_unusable_database_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_bytes(b"not a database\n" * 100)
    code, _, stderr = run(str(bad), "log4j")
    assert code == 1
    assert str(bad) in stderr
