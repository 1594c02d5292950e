"""A reproduction of the product's *seed* design, the baseline of ``bench_memory.py``.

The seed mirrored NVD like this, and this module does the same with the standard
library and httpx only (it imports nothing from nvdsync):

* each page is fetched whole with a non-streaming ``httpx.Client.get``;
* the body is decoded whole with ``json.loads`` (2,000 records become Python dicts);
* records are written in mini-batches of 50 with stdlib ``sqlite3`` (WAL), one
  transaction per mini-batch, upserting by id, with ``executemany`` for the cpe-match,
  reference and CWE child tables;
* ``gc.collect()`` runs every 2 mini-batches and every 5 pages;
* a bounded LRU cache (50 entries, an ``OrderedDict`` of recently written id ->
  record) skips a record identical to one just written.

It is written to be a *fair* baseline, not a straw man: the previous page's body and
dicts are released before the next request, ``synchronous=NORMAL`` is used as nvdsync
does (so neither side pays an fsync per commit), and the schema mirrors nvdsync's
(same typed columns, same indexes, ``WITHOUT ROWID`` child tables). What remains
different is the design under test: whole-page ``json.loads`` instead of a lazy
envelope decode, re-encoded ``raw`` text instead of the received bytes (compressed),
and forced collections.

Usage from Python::

    mirror = SeedMirror("seed.sqlite")      # opens (and creates) the database
    report = sync(mirror, "http://127.0.0.1:8080/rest/json/cves/2.0")
    mirror.close()
"""

from __future__ import annotations

import gc
import json
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["SeedMirror", "SeedReport", "sync"]

BATCH_SIZE = 50
GC_EVERY_BATCHES = 2
GC_EVERY_PAGES = 5
CACHE_SIZE = 50

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cves (
    id TEXT PRIMARY KEY,
    published TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    vuln_status TEXT,
    source_identifier TEXT,
    description TEXT,
    cvss_v2_score REAL, cvss_v2_severity TEXT, cvss_v2_vector TEXT,
    cvss_v3_score REAL, cvss_v3_severity TEXT, cvss_v3_vector TEXT,
    cvss_v4_score REAL, cvss_v4_severity TEXT, cvss_v4_vector TEXT,
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_cves_published_id ON cves (published, id);
CREATE INDEX IF NOT EXISTS ix_cves_last_modified ON cves (last_modified);
CREATE TABLE IF NOT EXISTS cve_cpe_matches (
    cve_id TEXT NOT NULL REFERENCES cves (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    criteria TEXT NOT NULL,
    part TEXT, vendor TEXT, product TEXT, version TEXT,
    version_start_including TEXT, version_start_excluding TEXT,
    version_end_including TEXT, version_end_excluding TEXT,
    vulnerable INTEGER NOT NULL,
    match_criteria_id TEXT,
    PRIMARY KEY (cve_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_cve_cpe_matches_vendor_product
    ON cve_cpe_matches (vendor, product);
CREATE TABLE IF NOT EXISTS cve_references (
    cve_id TEXT NOT NULL REFERENCES cves (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    url TEXT NOT NULL,
    source TEXT,
    tags TEXT,
    PRIMARY KEY (cve_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cve_cwes (
    cve_id TEXT NOT NULL REFERENCES cves (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    cwe TEXT NOT NULL,
    PRIMARY KEY (cve_id, seq)
) WITHOUT ROWID;
"""

_CVE_COLUMNS = (
    "id", "published", "last_modified", "vuln_status", "source_identifier", "description",
    "cvss_v2_score", "cvss_v2_severity", "cvss_v2_vector",
    "cvss_v3_score", "cvss_v3_severity", "cvss_v3_vector",
    "cvss_v4_score", "cvss_v4_severity", "cvss_v4_vector",
    "raw",
)
_UPSERT_CVE = (
    f"INSERT INTO cves ({', '.join(_CVE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _CVE_COLUMNS)}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _CVE_COLUMNS[1:])
)
_INSERT_CPE = "INSERT INTO cve_cpe_matches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_REF = "INSERT INTO cve_references VALUES (?, ?, ?, ?, ?)"
_INSERT_CWE = "INSERT INTO cve_cwes VALUES (?, ?, ?)"
_CHILD_TABLES = ("cve_cwes", "cve_cpe_matches", "cve_references")


@dataclass
class SeedReport:
    pages: int = 0
    requests: int = 0
    records_written: int = 0
    cache_hits: int = 0
    gcs_run: int = 0
    duration_s: float = 0.0


class SeedMirror:
    """The SQLite database of the seed design (WAL, one transaction per mini-batch)."""

    def __init__(self, path: str) -> None:
        self.path = path
        # Autocommit mode: transactions are explicit BEGIN/COMMIT around each batch.
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(_SCHEMA)
        self.cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.cache_hits = 0

    def close(self) -> None:
        self.conn.close()

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM cves").fetchone()[0])

    def _cached(self, cve: dict[str, Any]) -> bool:
        """True when this exact version of the record was written moments ago."""
        seen = self.cache.get(cve["id"])
        if seen is not None and seen.get("lastModified") == cve.get("lastModified"):
            self.cache.move_to_end(cve["id"])
            self.cache_hits += 1
            return True
        return False

    def _remember(self, cve: dict[str, Any]) -> None:
        self.cache[cve["id"]] = cve
        self.cache.move_to_end(cve["id"])
        while len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)

    def write_batch(self, batch: list[dict[str, Any]]) -> int:
        """Upsert one mini-batch of NVD ``cve`` dicts in one transaction."""
        fresh = [cve for cve in batch if not self._cached(cve)]
        if not fresh:
            return 0
        cve_rows: list[tuple[Any, ...]] = []
        cpes: list[tuple[Any, ...]] = []
        refs: list[tuple[Any, ...]] = []
        cwes: list[tuple[Any, ...]] = []
        for cve in fresh:
            cve_rows.append(_cve_row(cve))
            cve_id = cve["id"]
            cpes.extend(_cpe_rows(cve_id, cve))
            refs.extend(
                (cve_id, seq, ref.get("url"), ref.get("source"),
                 ",".join(ref.get("tags") or ()) or None)
                for seq, ref in enumerate(cve.get("references") or ())
            )
            cwes.extend((cve_id, seq, cwe) for seq, cwe in enumerate(_cwes(cve)))
        ids = [(row[0],) for row in cve_rows]
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in _CHILD_TABLES:
                conn.executemany(f"DELETE FROM {table} WHERE cve_id = ?", ids)
            conn.executemany(_UPSERT_CVE, cve_rows)
            conn.executemany(_INSERT_CPE, cpes)
            conn.executemany(_INSERT_REF, refs)
            conn.executemany(_INSERT_CWE, cwes)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for cve in fresh:
            self._remember(cve)
        return len(fresh)


def _primary(metrics: dict[str, Any], *keys: str) -> tuple[Any, Any, Any]:
    """(score, severity, vector) of the first Primary metric of the first key present."""
    for key in keys:
        entries = metrics.get(key) or []
        if not entries:
            continue
        chosen = next((m for m in entries if m.get("type") == "Primary"), entries[0])
        data = chosen.get("cvssData") or {}
        severity = data.get("baseSeverity") or chosen.get("baseSeverity")
        return data.get("baseScore"), severity, data.get("vectorString")
    return None, None, None


def _cve_row(cve: dict[str, Any]) -> tuple[Any, ...]:
    metrics = cve.get("metrics") or {}
    description = next(
        (d.get("value") for d in cve.get("descriptions") or () if d.get("lang") == "en"), None
    )
    return (
        cve["id"], cve["published"], cve["lastModified"], cve.get("vulnStatus"),
        cve.get("sourceIdentifier"), description,
        *_primary(metrics, "cvssMetricV2"),
        *_primary(metrics, "cvssMetricV31", "cvssMetricV30"),
        *_primary(metrics, "cvssMetricV40"),
        json.dumps(cve, separators=(",", ":"), ensure_ascii=False),
    )


def _cpe_rows(cve_id: str, cve: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for config in cve.get("configurations") or ():
        for node in config.get("nodes") or ():
            for match in node.get("cpeMatch") or ():
                criteria = match.get("criteria", "")
                parts = criteria.split(":")
                part, vendor, product, version = (
                    parts[2:6] if len(parts) == 13 else (None, None, None, None)
                )
                rows.append((
                    cve_id, len(rows), criteria, part, vendor, product, version,
                    match.get("versionStartIncluding"), match.get("versionStartExcluding"),
                    match.get("versionEndIncluding"), match.get("versionEndExcluding"),
                    bool(match.get("vulnerable")), match.get("matchCriteriaId"),
                ))
    return rows


def _cwes(cve: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for weakness in cve.get("weaknesses") or ():
        for item in weakness.get("description") or ():
            if item.get("lang") == "en":
                seen[item["value"]] = None
    return list(seen)


def sync(mirror: SeedMirror, api_url: str, *, page_size: int = 2000, timeout: float = 180.0,
         gc_every_batches: int = GC_EVERY_BATCHES, gc_every_pages: int = GC_EVERY_PAGES,
         ) -> SeedReport:
    """Full sync of every CVE the API serves into ``mirror``, the seed's way.

    ``gc_every_batches``/``gc_every_pages`` of 0 turn the forced collections off (a
    calibration variant, not the seed design).
    """
    report = SeedReport()
    started = time.monotonic()
    batches = 0
    start = 0
    with httpx.Client(timeout=timeout) as client:
        while True:
            report.requests += 1
            response = client.get(api_url, params={"startIndex": start,
                                                   "resultsPerPage": page_size})
            response.raise_for_status()
            data = json.loads(response.content)  # the whole page as dicts
            del response
            items = data["vulnerabilities"]
            total, count = data["totalResults"], len(items)
            for offset in range(0, len(items), BATCH_SIZE):
                batch = [item["cve"] for item in items[offset:offset + BATCH_SIZE]]
                report.records_written += mirror.write_batch(batch)
                batches += 1
                if gc_every_batches and batches % gc_every_batches == 0:
                    gc.collect()
                    report.gcs_run += 1
            report.pages += 1
            start += count
            del data, items
            if gc_every_pages and report.pages % gc_every_pages == 0:
                gc.collect()
                report.gcs_run += 1
            if count == 0 or start >= total:
                break
    report.cache_hits = mirror.cache_hits
    report.duration_s = round(time.monotonic() - started, 3)
    return report
