"""Content filters of the mock CVE API: plain Python over one record at a time.

The mirror answers the same parameters with indexed SQL (``nvdsync.search``); this
module is deliberately the naive version, so that a test comparing the served mirror
with the mock checks the SQL against an independent reading of NVD's rules:

* ``keywordSearch``: every word must start a word of the English description
  (``circle`` matches ``circles``, not ``encircle``), case-insensitively; with
  ``keywordExactMatch`` the words must occur together, in order, as whole words.
* ``cvssV{2,3,4}Severity``: the record's primary score of that version (NVD's own
  when present, as the mirror stores it).
* ``cweId``: any of the record's CWEs. ``hasKev``: the record has ``cisaExploitAdd``.
* ``cpeName`` (+ ``isVulnerable``): any ``cpeMatch`` criteria matching the name with
  NVD's version-range semantics (``nvdsync.cpe``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nvdsync.cpe import criteria_matches, parse_cpe
from nvdsync.models import CveRecord
from nvdsync.normalize import normalize

if TYPE_CHECKING:
    from nvdsync.mock.dataset import Query

__all__ = ["keyword_matches", "matches"]

_WORD = re.compile(r"\w+")
_SEVERITY_FIELD = {"cvssV2Severity": "cvss_v2", "cvssV3Severity": "cvss_v3",
                   "cvssV4Severity": "cvss_v4"}


def matches(raw: bytes, q: Query) -> bool:
    """Whether one record passes every content filter of ``q``."""
    record = normalize(raw)
    if not isinstance(record, CveRecord):
        return False  # an unreadable record matches no content filter
    if q.keyword is not None and not keyword_matches(
        record.description or "", q.keyword, exact=q.keyword_exact
    ):
        return False
    if q.severity is not None:
        score = getattr(record, _SEVERITY_FIELD[q.severity[0]])
        if score is None or (score.severity or "").upper() != q.severity[1]:
            return False
    if q.cwe_id is not None and q.cwe_id not in record.cwes:
        return False
    if q.has_kev and (record.kev is None or record.kev.date_added is None):
        return False
    return q.cpe_name is None or _cpe_matches(record, q.cpe_name, vulnerable=q.is_vulnerable)


def keyword_matches(text: str, keyword: str, *, exact: bool) -> bool:
    """NVD's keywordSearch over one description (see the module docstring)."""
    words = _WORD.findall(text.lower())
    wanted = _WORD.findall(keyword.lower())
    if not wanted:
        return False
    if exact:
        n = len(wanted)
        return any(words[i : i + n] == wanted for i in range(len(words) - n + 1))
    return all(any(word.startswith(w) for word in words) for w in wanted)


def _cpe_matches(record: CveRecord, cpe_name: str, *, vulnerable: bool) -> bool:
    name = parse_cpe(cpe_name)  # already validated by the parameter parser
    return any(
        criteria_matches(m.criteria, name, (m.version_start_including,
                                            m.version_start_excluding,
                                            m.version_end_including,
                                            m.version_end_excluding))
        for m in record.cpe_matches
        if m.vulnerable or not vulnerable
    )
