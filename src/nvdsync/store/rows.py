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

Row = dict[str, Any]


def compress(raw: bytes) -> bytes:
    return zlib.compress(raw, COMPRESS_LEVEL)


def decompress(blob: bytes) -> bytes:
    return zlib.decompress(blob)


def cve_row(record: CveRecord) -> Row:
    """The ``cves`` row for ``record``."""
    v2, v3, v4, kev = record.cvss_v2, record.cvss_v3, record.cvss_v4, record.kev
    return {
        "id": record.id,
        "published": record.published,
        "last_modified": record.last_modified,
        "vuln_status": record.vuln_status,
        "source_identifier": record.source_identifier,
        "description": record.description,
        "cvss_v2_score": v2.score if v2 else None,
        "cvss_v2_severity": v2.severity if v2 else None,
        "cvss_v2_vector": v2.vector if v2 else None,
        "cvss_v2_source": v2.source if v2 else None,
        "cvss_v3_version": v3.version if v3 else None,
        "cvss_v3_score": v3.score if v3 else None,
        "cvss_v3_severity": v3.severity if v3 else None,
        "cvss_v3_vector": v3.vector if v3 else None,
        "cvss_v3_source": v3.source if v3 else None,
        "cvss_v4_score": v4.score if v4 else None,
        "cvss_v4_severity": v4.severity if v4 else None,
        "cvss_v4_vector": v4.vector if v4 else None,
        "cvss_v4_source": v4.source if v4 else None,
        "kev_date_added": kev.date_added if kev else None,
        "kev_action_due": kev.action_due if kev else None,
        "kev_required_action": kev.required_action if kev else None,
        "kev_vulnerability_name": kev.vulnerability_name if kev else None,
        "raw": compress(record.raw),
        "raw_size": len(record.raw),
    }


def child_rows(records: Iterable[CveRecord]) -> tuple[list[Row], list[Row], list[Row]]:
    """Rows for ``cve_cwes``, ``cve_cpe_matches`` and ``cve_references``."""
    cwes: list[Row] = []
    cpes: list[Row] = []
    refs: list[Row] = []
    for record in records:
        cve_id = record.id
        for seq, cwe in enumerate(record.cwes):
            cwes.append({"cve_id": cve_id, "seq": seq, "cwe": cwe})
        for seq, m in enumerate(record.cpe_matches):
            cpes.append(
                {
                    "cve_id": cve_id,
                    "seq": seq,
                    "criteria": m.criteria,
                    "part": m.part,
                    "vendor": m.vendor,
                    "product": m.product,
                    "version": m.version,
                    "version_start_including": m.version_start_including,
                    "version_start_excluding": m.version_start_excluding,
                    "version_end_including": m.version_end_including,
                    "version_end_excluding": m.version_end_excluding,
                    "vulnerable": m.vulnerable,
                    "match_criteria_id": m.match_criteria_id,
                }
            )
        for seq, ref in enumerate(record.references):
            refs.append(
                {
                    "cve_id": cve_id,
                    "seq": seq,
                    "url": ref.url,
                    "source": ref.source,
                    "tags": TAG_SEPARATOR.join(ref.tags) if ref.tags else None,
                }
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
