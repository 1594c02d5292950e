"""Converting between :class:`CveRecord` values and table rows.

Kept apart from the SQL so the mapping (which column holds which field, how tags
are joined, how ``raw`` is compressed) lives in one place and is easy to test.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from nvdsync.models import CpeMatch, CveRecord, CvssScore, Kev, Reference

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "COMPRESS_LEVEL",
    "CPE_COLUMNS",
    "CVE_COLUMNS",
    "CWE_COLUMNS",
    "QUARANTINE_COLUMNS",
    "REFERENCE_COLUMNS",
    "TAG_SEPARATOR",
    "child_rows",
    "compress",
    "cve_row",
    "decompress",
    "record_from_rows",
]

#: zlib level for ``raw``. Measured on the 134 real records (2.4 KB of JSON on
#: average): level 1 compresses to 42.9 % in ~27 µs a record, level 6 (zlib's
#: default) to 41.6 % in ~32 µs and 9 gains nothing more. Small JSON documents
#: leave little for the slower levels to find, so we take the fast one.
COMPRESS_LEVEL = 1

#: NVD reference tags are fixed phrases ("Third Party Advisory", "Patch") that
#: never contain a comma.
TAG_SEPARATOR = ","


def compress(raw: bytes) -> bytes:
    return zlib.compress(raw, COMPRESS_LEVEL)


def decompress(blob: bytes) -> bytes:
    return zlib.decompress(blob)


# Column orders of the tuples built below; ``BulkStatement`` binds by these names.
CVE_COLUMNS = (
    "id",
    "published",
    "last_modified",
    "vuln_status",
    "source_identifier",
    "description",
    "cvss_v2_score",
    "cvss_v2_severity",
    "cvss_v2_vector",
    "cvss_v2_source",
    "cvss_v3_version",
    "cvss_v3_score",
    "cvss_v3_severity",
    "cvss_v3_vector",
    "cvss_v3_source",
    "cvss_v4_score",
    "cvss_v4_severity",
    "cvss_v4_vector",
    "cvss_v4_source",
    "kev_date_added",
    "kev_action_due",
    "kev_required_action",
    "kev_vulnerability_name",
    "raw",
    "raw_size",
)
CWE_COLUMNS = ("cve_id", "seq", "cwe")
CPE_COLUMNS = (
    "cve_id",
    "seq",
    "criteria",
    "part",
    "vendor",
    "product",
    "version",
    "version_start_including",
    "version_start_excluding",
    "version_end_including",
    "version_end_excluding",
    "vulnerable",
    "match_criteria_id",
)
REFERENCE_COLUMNS = ("cve_id", "seq", "url", "source", "tags")
QUARANTINE_COLUMNS = ("cve_id", "reason", "raw", "received_at")

# Tuples rather than dicts: a batch builds ~14 rows per record and the driver wants
# positional parameters anyway.
Row = tuple[Any, ...]

_NO_SCORE = (None,) * 4
_NO_V3 = (None,) * 5
_NO_KEV = (None,) * 4


def cve_row(record: CveRecord) -> Row:
    """The ``cves`` row for ``record``, in :data:`CVE_COLUMNS` order."""
    v2, v3, v4, kev = record.cvss_v2, record.cvss_v3, record.cvss_v4, record.kev
    return (
        record.id,
        record.published,
        record.last_modified,
        record.vuln_status,
        record.source_identifier,
        record.description,
        *((v2.score, v2.severity, v2.vector, v2.source) if v2 else _NO_SCORE),
        *((v3.version, v3.score, v3.severity, v3.vector, v3.source) if v3 else _NO_V3),
        *((v4.score, v4.severity, v4.vector, v4.source) if v4 else _NO_SCORE),
        *(
            (kev.date_added, kev.action_due, kev.required_action, kev.vulnerability_name)
            if kev
            else _NO_KEV
        ),
        compress(record.raw),
        len(record.raw),
    )


def child_rows(records: Iterable[CveRecord]) -> tuple[list[Row], list[Row], list[Row]]:
    """Rows for ``cve_cwes``, ``cve_cpe_matches`` and ``cve_references``.

    In :data:`CWE_COLUMNS`, :data:`CPE_COLUMNS` and :data:`REFERENCE_COLUMNS` order.
    """
    cwes: list[Row] = []
    cpes: list[Row] = []
    refs: list[Row] = []
    join = TAG_SEPARATOR.join
    for record in records:
        cve_id = record.id
        cwes.extend((cve_id, seq, cwe) for seq, cwe in enumerate(record.cwes))
        cpes.extend(
            (
                cve_id,
                seq,
                m.criteria,
                m.part,
                m.vendor,
                m.product,
                m.version,
                m.version_start_including,
                m.version_start_excluding,
                m.version_end_including,
                m.version_end_excluding,
                m.vulnerable,
                m.match_criteria_id,
            )
            for seq, m in enumerate(record.cpe_matches)
        )
        refs.extend(
            (cve_id, seq, r.url, r.source, join(r.tags) if r.tags else None)
            for seq, r in enumerate(record.references)
        )
    return cwes, cpes, refs


def _score(row: Mapping[Any, Any], prefix: str, version: str | None) -> CvssScore | None:
    score = row[f"{prefix}_score"]
    if score is None or version is None:
        return None
    return CvssScore(
        version=version,
        score=score,
        severity=row[f"{prefix}_severity"],
        vector=row[f"{prefix}_vector"],
        source=row[f"{prefix}_source"],
    )


def record_from_rows(
    row: Mapping[Any, Any],
    cwes: Sequence[str],
    cpes: Sequence[Mapping[Any, Any]],
    refs: Sequence[Mapping[Any, Any]],
) -> CveRecord:
    """Rebuild a record from its ``cves`` row and its child rows (in ``seq`` order)."""
    kev_fields = (
        row["kev_date_added"],
        row["kev_action_due"],
        row["kev_required_action"],
        row["kev_vulnerability_name"],
    )
    return CveRecord(
        id=row["id"],
        published=row["published"],
        last_modified=row["last_modified"],
        vuln_status=row["vuln_status"],
        source_identifier=row["source_identifier"],
        description=row["description"],
        # v2 and v4 each have a single version; v3 may be 3.0 or 3.1.
        cvss_v2=_score(row, "cvss_v2", "2.0"),
        cvss_v3=_score(row, "cvss_v3", row["cvss_v3_version"]),
        cvss_v4=_score(row, "cvss_v4", "4.0"),
        cwes=tuple(cwes),
        kev=Kev(*kev_fields) if any(f is not None for f in kev_fields) else None,
        cpe_matches=tuple(
            CpeMatch(
                criteria=m["criteria"],
                part=m["part"],
                vendor=m["vendor"],
                product=m["product"],
                version=m["version"],
                vulnerable=bool(m["vulnerable"]),
                version_start_including=m["version_start_including"],
                version_start_excluding=m["version_start_excluding"],
                version_end_including=m["version_end_including"],
                version_end_excluding=m["version_end_excluding"],
                match_criteria_id=m["match_criteria_id"],
            )
            for m in cpes
        ),
        references=tuple(
            Reference(
                url=r["url"],
                source=r["source"],
                tags=tuple(r["tags"].split(TAG_SEPARATOR)) if r["tags"] else (),
            )
            for r in refs
        ),
        raw=decompress(row["raw"]),
    )
