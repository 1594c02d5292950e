"""Real NVD records survive the store byte for byte and come back in export order.

Records are built with a minimal inline helper (id and timestamps from the JSON,
``raw`` = the fixture line) so that this test does not depend on the normaliser.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nvdsync.models import CveRecord

if TYPE_CHECKING:
    from nvdsync.store import SqlStore

# The project's own copy of the public-domain records (tests/fixtures/nvd).
_DEFAULT = Path(__file__).resolve().parents[1] / "fixtures" / "nvd" / "real-cves.jsonl"
FIXTURE = Path(os.environ.get("NVDSYNC_REAL_CVES", str(_DEFAULT)))


def _minimal(line: bytes) -> CveRecord:
    cve = json.loads(line)
    english = [d["value"] for d in cve.get("descriptions", []) if d.get("lang") == "en"]
    return CveRecord(
        id=cve["id"],
        published=cve["published"],
        last_modified=cve["lastModified"],
        vuln_status=cve.get("vulnStatus"),
        source_identifier=cve.get("sourceIdentifier"),
        description=english[0] if english else None,
        cvss_v2=None,
        cvss_v3=None,
        cvss_v4=None,
        cwes=(),
        kev=None,
        cpe_matches=(),
        references=(),
        raw=line,
    )


@pytest.fixture(scope="module")
def real_lines() -> list[bytes]:
    if not FIXTURE.exists():
        reason = f"real NVD fixture {FIXTURE} not found (set NVDSYNC_REAL_CVES)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    lines = [line.rstrip(b"\r\n") for line in FIXTURE.read_bytes().splitlines()]
    return [line for line in lines if line.strip()]


def test_real_records_round_trip_in_export_order(store: SqlStore, real_lines: list[bytes]) -> None:
    records = [_minimal(line) for line in real_lines]
    assert len(records) == 134
    for start in range(0, len(records), 50):
        assert store.write_batch(records[start : start + 50]) == len(records[start : start + 50])

    assert store.count() == len(records)
    expected = [r.raw for r in sorted(records, key=lambda r: (r.published, r.id))]
    assert list(store.iter_raw()) == expected
    for record in records:
        assert store.get_raw(record.id) == record.raw
        assert store.get_record(record.id) == record

    # Writing the same records again replaces them (equal last_modified) without
    # changing anything a reader can see.
    assert store.write_batch(records) == len(records)
    assert list(store.iter_raw()) == expected
