"""Checking a :class:`~nvdsync.search.SearchQuery` and putting it in canonical form.

Everything a caller can get wrong is caught here, before the database is touched,
and raised as :class:`~nvdsync.errors.InvalidQuery` with the field and the fix:
the CLI, the HTTP API and the NVD-compatible endpoint share these messages.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING

import msgspec

from nvdsync.cpe import Cpe, parse_cpe
from nvdsync.errors import InvalidQuery

if TYPE_CHECKING:
    from nvdsync.search import SearchQuery

__all__ = ["MAX_COUNT", "MAX_KEYWORD", "SEVERITIES", "STATUSES", "Filters", "nvd_time", "prepare"]

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
_V2_SEVERITIES = SEVERITIES[:3]  # CVSS v2 has no CRITICAL
#: NVD's vulnStatus values; others are passed through as written (NVD adds some).
STATUSES = (
    "Received", "Awaiting Analysis", "Undergoing Analysis", "Analyzed", "Modified",
    "Deferred", "Rejected",
)
_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}")
# CWE ids have four digits at most today; nine leave room and keep int() cheap.
_CWE = re.compile(r"(?:CWE-)?(\d{1,9})|NVD-CWE-(?:OTHER|NOINFO)")
#: Longest keyword accepted (NVD descriptions are at most a few thousand characters).
MAX_KEYWORD = 1000
#: Largest offset or limit: the largest startIndex NVD's parser (and so the
#: NVD-compatible endpoint) accepts, within the 64-bit integers that both databases'
#: OFFSET/LIMIT take.
MAX_COUNT = 2**62
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?",
    re.IGNORECASE,
)


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    """A checked query: canonical values, or None where there is no filter."""

    cve_id: str | None = None
    terms: tuple[str, ...] = ()  # each must occur in the description
    keyword_exact: bool = False  # terms is one phrase whose words occur in order
    cpe: Cpe | None = None
    vulnerable_only: bool = False
    severity: str | None = None
    cvss_v2_severity: str | None = None
    cvss_v3_severity: str | None = None
    cvss_v4_severity: str | None = None
    min_score: float | None = None
    cwe: str | None = None
    kev: bool = False
    published_since: str | None = None  # NVD text form, UTC, inclusive bounds
    published_until: str | None = None
    modified_since: str | None = None
    modified_until: str | None = None
    status: str | None = None
    no_rejected: bool = False
    offset: int = 0
    limit: int = 100


def nvd_time(value: str, *, end: bool = False, field: str = "date") -> str:
    """``value`` (ISO date or date-time) as NVD's UTC text form ``YYYY-MM-DDTHH:MM:SS.mmm``.

    A date alone means the start of that day (UTC), or with ``end`` its last
    millisecond, so that ``since``/``until`` dates are inclusive. A date-time without
    an offset is taken as UTC, which is what NVD's timestamps are.
    """
    text = value.strip()
    try:
        if _DATE.fullmatch(text):
            day = datetime.fromisoformat(text).date()
            moment = datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
        elif _DATETIME.fullmatch(text):
            moment = datetime.fromisoformat(text.replace("z", "Z"))
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        else:
            raise ValueError(text)
        # 0001-01-01T00:00+01:00 is in year 0 in UTC: OverflowError, not a datetime.
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise InvalidQuery(
            f"{field} {value!r} is outside the years 1-9999 once converted to UTC; "
            "give a date between 0001-01-02 and 9999-12-30",
            field=field,
        ) from None
    except ValueError:
        raise InvalidQuery(
            f"{field} {value!r} is not an ISO date or date-time; give e.g. 2024-01-31, "
            "2024-01-31T12:00:00 (UTC) or 2024-01-31T12:00:00+02:00",
            field=field,
        ) from None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _severity(value: str | None, field: str, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    canonical = value.strip().upper()
    if canonical not in allowed:
        raise InvalidQuery(
            f"{field} {value!r} is not a severity; give one of {', '.join(allowed)}",
            field=field,
        )
    return canonical


def _short(value: str) -> str:
    """``value`` quoted for a message, cut to a readable length."""
    return repr(value) if len(value) <= 60 else repr(value[:40]) + f"... ({len(value):,} chars)"


def _cwe(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().upper()
    match = _CWE.fullmatch(text) if len(text) <= 40 else None
    if match is None:
        raise InvalidQuery(
            f"cwe {_short(value)} is not a CWE id (at most 9 digits); give e.g. CWE-79, "
            "NVD-CWE-Other or NVD-CWE-noinfo",
            field="cwe",
        )
    if match.group(1) is not None:
        return f"CWE-{int(match.group(1))}"
    return "NVD-CWE-Other" if text.endswith("OTHER") else "NVD-CWE-noinfo"


def _status(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    if not text:
        raise InvalidQuery("status is empty; give e.g. Analyzed", field="status")
    known = {s.lower(): s for s in STATUSES}
    return known.get(text.lower(), text)


def _terms(keyword: str | None, exact: bool) -> tuple[str, ...]:
    if keyword is None:
        if exact:
            raise InvalidQuery(
                "keyword_exact needs a keyword (NVD: keywordExactMatch requires "
                "keywordSearch)",
                field="keyword_exact",
            )
        return ()
    if len(keyword) > MAX_KEYWORD:
        raise InvalidQuery(
            f"keyword is {len(keyword):,} characters long, more than the {MAX_KEYWORD:,} "
            "allowed; give a few words",
            field="keyword",
        )
    text = " ".join(keyword.split())
    if not text:
        raise InvalidQuery("keyword is empty; give one or more words", field="keyword")
    return (text,) if exact else tuple(dict.fromkeys(text.split()))


def _window(since: str | None, until: str | None, name: str) -> tuple[str | None, str | None]:
    start = nvd_time(since, field=f"{name}_since") if since is not None else None
    end = nvd_time(until, end=True, field=f"{name}_until") if until is not None else None
    if start is not None and end is not None and start > end:
        raise InvalidQuery(
            f"{name}_since ({since}) is after {name}_until ({until})", field=f"{name}_since"
        )
    return start, end


def prepare(query: SearchQuery) -> Filters:
    """Check ``query`` and return its canonical form; raise :class:`InvalidQuery`."""
    cve_id = None
    if query.cve_id is not None:
        cve_id = query.cve_id.strip().upper()
        if not _CVE_ID.fullmatch(cve_id):
            raise InvalidQuery(
                f"cve_id {query.cve_id!r} is not a CVE id; give e.g. CVE-2021-44228",
                field="cve_id",
            )
    cpe = parse_cpe(query.cpe) if query.cpe is not None else None
    if query.vulnerable_only and cpe is None:
        raise InvalidQuery(
            "vulnerable_only needs a cpe (NVD: isVulnerable requires cpeName)",
            field="vulnerable_only",
        )
    min_score = query.min_score
    if min_score is not None and not 0.0 <= min_score <= 10.0:
        raise InvalidQuery(
            f"min_score {min_score:g} is outside 0..10 (CVSS scores)", field="min_score"
        )
    for field, number in (("offset", query.offset), ("limit", query.limit)):
        if number < 0:
            raise InvalidQuery(f"{field} {number} is negative; give 0 or more", field=field)
        if number > MAX_COUNT:
            # Not the number itself: str() refuses ints of more than 4,300 digits.
            raise InvalidQuery(
                f"{field} is more than {MAX_COUNT:,}; give a smaller number", field=field
            )
    published = _window(query.published_since, query.published_until, "published")
    modified = _window(query.modified_since, query.modified_until, "modified")
    return Filters(
        cve_id=cve_id,
        terms=_terms(query.keyword, query.keyword_exact),
        keyword_exact=query.keyword_exact,
        cpe=cpe,
        vulnerable_only=query.vulnerable_only,
        severity=_severity(query.severity, "severity", SEVERITIES),
        cvss_v2_severity=_severity(query.cvss_v2_severity, "cvss_v2_severity", _V2_SEVERITIES),
        cvss_v3_severity=_severity(query.cvss_v3_severity, "cvss_v3_severity", SEVERITIES),
        cvss_v4_severity=_severity(query.cvss_v4_severity, "cvss_v4_severity", SEVERITIES),
        min_score=min_score,
        cwe=_cwe(query.cwe),
        kev=query.kev,
        published_since=published[0],
        published_until=published[1],
        modified_since=modified[0],
        modified_until=modified[1],
        status=_status(query.status),
        no_rejected=query.no_rejected,
        offset=query.offset,
        limit=query.limit,
    )
