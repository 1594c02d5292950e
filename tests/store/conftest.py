"""Fixtures for the store tests: one contract suite run on SQLite and PostgreSQL.

PostgreSQL comes from ``NVDSYNC_TEST_PG_URL`` (default: the local trust-auth
server). Each test gets its own schema, selected through ``search_path`` in the
URL, and the schema is dropped afterwards. Without a reachable server the
PostgreSQL tests are skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from nvdsync.models import CpeMatch, CveRecord, CvssScore, Kev, Reference
from nvdsync.store import SqlStore, open_store

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path



def make_record(
    cve_id: str,
    published: str = "2024-01-01T00:00:00.000",
    last_modified: str | None = None,
    *,
    cpes: int = 2,
    refs: int = 2,
    cwes: tuple[str, ...] = ("CWE-79",),
    description: str | None = None,
    raw: bytes | None = None,
    kev: bool = False,
) -> CveRecord:
    """A plausible normalised record; ``raw`` defaults to a small JSON document."""
    last_modified = last_modified or published
    vendor = f"vendor{cve_id[-1]}"
    return CveRecord(
        id=cve_id,
        published=published,
        last_modified=last_modified,
        vuln_status="Analyzed",
        source_identifier="cve@mitre.org",
        description=description if description is not None else f"Bug in {cve_id}.",
        cvss_v2=CvssScore("2.0", 7.5, "HIGH", "AV:N/AC:L/Au:N/C:P/I:P/A:P", "nvd@nist.gov"),
        cvss_v3=CvssScore(
            "3.1", 9.8, "CRITICAL", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", None
        ),
        cvss_v4=None,
        cwes=cwes,
        kev=Kev("2024-02-01", "2024-02-22", "Apply updates.", "Some Bug") if kev else None,
        cpe_matches=tuple(
            CpeMatch(
                criteria=f"cpe:2.3:a:{vendor}:product{i}:1.{i}:*:*:*:*:*:*:*",
                part="a",
                vendor=vendor,
                product=f"product{i}",
                version=f"1.{i}",
                vulnerable=i % 2 == 0,
                version_end_excluding="2.0" if i == 0 else None,
                match_criteria_id=f"MC-{cve_id}-{i}",
            )
            for i in range(cpes)
        ),
        references=tuple(
            Reference(
                url=f"https://example.com/{cve_id}/{i}",
                source="cve@mitre.org",
                tags=("Patch", "Third Party Advisory") if i % 2 == 0 else (),
            )
            for i in range(refs)
        ),
        raw=raw
        if raw is not None
        else (
            f'{{"id":"{cve_id}","published":"{published}","lastModified":"{last_modified}"}}'
        ).encode(),
    )


@pytest.fixture(name="make_record")
def make_record_fixture() -> Callable[..., CveRecord]:
    return make_record


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``--db`` value of a new, empty database of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "mirror.db")
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(db: str) -> Iterator[SqlStore]:
    opened = open_store(db)
    try:
        yield opened
    finally:
        opened.close()


def row_count(store: SqlStore, table: str, **where: Any) -> int:
    """Rows in ``table`` (optionally filtered by equality), read with plain SQL."""
    from sqlalchemy import text

    clause = " AND ".join(f"{key} = :{key}" for key in where)
    sql = f"SELECT count(*) FROM {table}" + (f" WHERE {clause}" if clause else "")
    with store.engine.connect() as conn:
        return int(conn.execute(text(sql), where).scalar_one())


@pytest.fixture(name="row_count")
def row_count_fixture() -> Callable[..., int]:
    return row_count
