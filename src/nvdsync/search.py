"""Search over a mirror: the query model shared by the CLI, the HTTP API and the
NVD-compatible endpoint.

CONTRACT (being implemented; field names are fixed, other helpers build on them):

* :class:`SearchQuery` - every filter; None / False means "no filter".
* ``count(store, query) -> int`` - how many records match (ignores offset/limit).
* ``iter_raw(store, query) -> Iterator[bytes]`` - matching records' raw NVD JSON,
  ordered by published then id, from ``offset``, at most ``limit``, streamed in
  bounded memory (keyset/short read transactions, never a whole result in memory).
* ``search(store, query) -> SearchPage`` - total plus a page of typed hits for display.
"""

from __future__ import annotations

import msgspec

__all__ = ["SearchQuery"]


class SearchQuery(msgspec.Struct, frozen=True, kw_only=True):
    cve_id: str | None = None
    keyword: str | None = None  # every word must occur in the English description
    keyword_exact: bool = False  # keyword is one exact phrase (NVD keywordExactMatch)
    cpe: str | None = None  # a CPE 2.3 name; matched with NVD's version-range semantics
    vulnerable_only: bool = False  # NVD isVulnerable: only criteria with vulnerable=true
    severity: str | None = None  # LOW/MEDIUM/HIGH/CRITICAL on the record's best CVSS
    cvss_v2_severity: str | None = None
    cvss_v3_severity: str | None = None
    cvss_v4_severity: str | None = None
    min_score: float | None = None  # on the record's best CVSS (v4, then v3, then v2)
    cwe: str | None = None  # "CWE-79"
    kev: bool = False  # only records in CISA's KEV catalogue
    published_since: str | None = None  # NVD text form, inclusive
    published_until: str | None = None
    modified_since: str | None = None
    modified_until: str | None = None
    status: str | None = None  # vulnStatus, e.g. "Analyzed"
    no_rejected: bool = False
    offset: int = 0
    limit: int = 100
