"""Helpers for the search tests: a mirror of the real records on each back end, and
reference answers computed straight from the records' JSON.

The reference side re-implements each filter in the plainest possible Python over
the decoded records, so the SQL (FTS5, tsvector, CASE expressions, keyset paging)
is checked against something independent of it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvdsync.mock.filters import keyword_matches
from nvdsync.models import CveRecord
from nvdsync.normalize import normalize
from nvdsync.store import SqlStore, open_store
from support import pg_schema

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FIXTURES = Path(__file__).parent / "fixtures" / "nvd"
LOG4SHELL = "CVE-2021-44228"


def real_lines() -> list[bytes]:
    """The 134 real records plus Log4Shell (an abridged copy of NVD's record, keeping
    its log4j configuration: three ranges and four exact 2.0 pre-releases)."""
    lines = (FIXTURES / "real-cves.jsonl").read_bytes().splitlines()
    return [*lines, (FIXTURES / "log4shell.json").read_bytes().strip()]


def records() -> list[CveRecord]:
    out = []
    for line in real_lines():
        record = normalize(line)
        assert isinstance(record, CveRecord)
        out.append(record)
    return out


@contextlib.contextmanager
def database(kind: str, tmp: Path, pg_server: Callable[[], str]) -> Iterator[str]:
    """The ``--db`` value of a new, empty database of ``kind``."""
    if kind == "sqlite":
        yield str(tmp / "mirror.db")
        return
    with pg_schema(pg_server()) as url:
        yield url


def loaded(db: str) -> SqlStore:
    store = open_store(db)
    store.write_batch(records())
    return store


def ordered(found: list[CveRecord]) -> list[str]:
    return [r.id for r in sorted(found, key=lambda r: (r.published, r.id))]


def best(record: CveRecord) -> Any:
    return record.cvss_v4 or record.cvss_v3 or record.cvss_v2


def keyword_hit(description: str | None, keyword: str, *, exact: bool = False) -> bool:
    """NVD keywordSearch on one description: the mock NVD's plain-Python reading, an
    oracle independent of the SQL (FTS5 / tsvector) under test."""
    return keyword_matches(description or "", keyword, exact=exact)


def raw_by_id() -> dict[str, bytes]:
    return {json.loads(line)["id"]: line for line in real_lines()}
