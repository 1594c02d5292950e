"""Value types passed between the pipeline stages.

Each stage knows only its neighbours' types: the normaliser turns a raw record into a
``CveRecord`` (or a ``Quarantined``), the batcher groups them, and the store writes a
batch together with the ``SyncPlan`` that says how far the sync has got.

Timestamps inside records keep NVD's own text form (``2024-04-12T08:15:06.230``: UTC,
millisecond precision, no offset) because it sorts lexicographically in every database
and round-trips exactly. Window bounds in the plan are timezone-aware ISO strings.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "CpeMatch",
    "CveRecord",
    "CvssScore",
    "Kev",
    "Quarantined",
    "Reference",
    "RunInfo",
    "StoreStatus",
    "SyncPlan",
    "Window",
]


class CvssScore(msgspec.Struct, frozen=True):
    """The primary score of one CVSS version (NVD's own when present)."""

    version: str  # "2.0", "3.0", "3.1", "4.0"
    score: float
    severity: str | None
    vector: str
    source: str | None


class CpeMatch(msgspec.Struct, frozen=True):
    """One ``cpeMatch`` entry, with the CPE 2.3 criteria split into its parts."""

    criteria: str
    part: str | None
    vendor: str | None
    product: str | None
    version: str | None
    vulnerable: bool
    version_start_including: str | None = None
    version_start_excluding: str | None = None
    version_end_including: str | None = None
    version_end_excluding: str | None = None
    match_criteria_id: str | None = None


class Reference(msgspec.Struct, frozen=True):
    url: str
    source: str | None = None
    tags: tuple[str, ...] = ()


class Kev(msgspec.Struct, frozen=True):
    """CISA Known Exploited Vulnerabilities fields carried by the NVD record."""

    date_added: str | None  # YYYY-MM-DD
    action_due: str | None
    required_action: str | None
    vulnerability_name: str | None


class CveRecord(msgspec.Struct, frozen=True):
    """One normalised CVE plus the exact JSON text NVD sent for it."""

    id: str
    published: str
    last_modified: str
    vuln_status: str | None
    source_identifier: str | None
    description: str | None
    cvss_v2: CvssScore | None
    cvss_v3: CvssScore | None
    cvss_v4: CvssScore | None
    cwes: tuple[str, ...]
    kev: Kev | None
    cpe_matches: tuple[CpeMatch, ...]
    references: tuple[Reference, ...]
    raw: bytes  # the ``cve`` object exactly as received (compact JSON from the API)


class Quarantined(msgspec.Struct, frozen=True):
    """A record that could not be decoded or lacks id/published/lastModified."""

    raw: bytes
    reason: str
    cve_id: str | None = None


WindowKind = Literal["all", "lastmod", "pub"]


class Window(msgspec.Struct):
    """One query the sync must page through completely.

    ``kind == "all"`` is the unfiltered endpoint; ``lastmod``/``pub`` carry inclusive
    bounds of at most 120 days as ISO strings with an explicit UTC offset.
    """

    kind: WindowKind
    start: str | None = None
    end: str | None = None
    next_index: int = 0  # first startIndex not yet committed
    total: int | None = None  # totalResults last seen
    done: bool = False
    repages: int = 0  # times re-read because its result set moved while paging
    unstable: bool = False  # totalResults changed during this reading of the window


class SyncPlan(msgspec.Struct):
    """Resume state: committed in the same transaction as each page's last batch."""

    run_id: int
    mode: Literal["full", "incremental", "repair"]
    started_at: str  # ISO, aware; the fixed end of the planned windows
    windows: list[Window]
    page_size: int = 2000
    catchup_passes: int = 0  # catch-up windows appended so far
    # False when the windows do not start at or before the watermark (``--since``
    # later than it): completing them must not claim the gap before them.
    advance_watermark: bool = True


class RunInfo(msgspec.Struct):
    """One row of the runs table."""

    id: int
    mode: str
    started_at: str
    ended_at: str | None
    outcome: str  # running | success | failed | interrupted
    pages: int = 0
    records_written: int = 0
    records_quarantined: int = 0
    retries: int = 0
    peak_rss_mb: float | None = None
    error: str | None = None
    # Memory figures (schema 0002); None for runs recorded before it.
    start_rss_mb: float | None = None
    growth_mb: float | None = None
    gcs_run: int | None = None
    warning_mb: float | None = None
    critical_mb: float | None = None


class StoreStatus(msgspec.Struct):
    location: str
    records: int
    watermark: str | None
    quarantined: int
    pending_plan: bool
    runs: list[RunInfo]
