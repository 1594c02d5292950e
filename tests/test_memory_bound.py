"""Acceptance: a full sync of 20,000 heavy records keeps its memory growth bounded.

The sync runs in a fresh interpreter (the mock and its 20,000 records stay in this
process, so they never count) and reports nvdsync's own figures: growth is the peak
RSS (a 20 ms background sampler plus a check after every batch and page) minus the RSS
just before the first request. The same child then decodes one page whole, as a
page-at-a-time design would, and reports what that costs, so the test also shows that
the bound is far below it. Memory bounds only; nothing here is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import msgspec

from nvdsync.mock import generate

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from nvdsync.mock import MockServer

RECORDS = 20_000
PAGE = 2000
GROWTH_BOUND_MB = 25.0  # fixed; measured growth is ~11 MB, a page held whole ~95 MB

CHILD = """
import gc, json, sys
import httpx, msgspec, psutil
from nvdsync.config import load_settings
from nvdsync.sync import sync

url, db = sys.argv[1], sys.argv[2]
settings = load_settings(db=db, api_url=url, rate_limit="off", page_size=2000,
                         memory_sample_seconds=0.02)
report = sync(settings, full=True)
process = psutil.Process()
gc.collect()
before = process.memory_info().rss
with httpx.Client(timeout=60) as client:  # what holding one page, decoded whole, costs
    body = client.get(url, params={"startIndex": 0, "resultsPerPage": 2000}).content
page = json.loads(body)
whole = process.memory_info().rss - before
print(json.dumps({"report": msgspec.to_builtins(report), "page_bytes": len(body),
                  "page_whole_mb": whole / 1048576, "records": len(page["vulnerabilities"])}))
"""


def heavy(records: list[bytes]) -> list[bytes]:
    """Make each record ~9 KB by giving it 40 more references (NVD has records with
    hundreds): the page grows, and so would any design that holds a page."""
    out = []
    for raw in records:
        cve = msgspec.json.decode(raw)
        cve["references"] = cve.get("references", []) + [
            {"url": f"https://vendor.example/advisories/{cve['id']}/{n:03d}?lang=en&format=full",
             "source": "cve@mitre.org", "tags": ["Vendor Advisory", "Patch"]}
            for n in range(40)
        ]
        out.append(msgspec.json.encode(cve))
    return out


def test_full_sync_of_20k_heavy_records_stays_under_a_fixed_growth_bound(
    mock_nvd: Callable[..., MockServer], tmp_path: Path
) -> None:
    server = mock_nvd(heavy(generate(RECORDS, seed=11)))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, server.url, str(tmp_path / "mirror.sqlite")],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    report = result["report"]
    assert report["outcome"] == "success"
    assert report["records_written"] == RECORDS
    assert report["pages"] >= RECORDS // PAGE
    assert result["page_bytes"] > 15_000_000  # heavy indeed: ~18 MB of JSON per page
    # The bound itself, and that it is far below what one page decoded whole costs.
    assert report["memory_growth_mb"] < GROWTH_BOUND_MB
    assert result["page_whole_mb"] > 3 * GROWTH_BOUND_MB
