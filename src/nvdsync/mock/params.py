"""Validation of CVE API query strings, with NVD's rules and NVD's error style.

Every violation raises :class:`InvalidRequest`; the server answers it with 404, an
empty body and the message in a ``message`` header, which is how NVD reports any
invalid request (contract §7). Where NVD's exact wording is known it is copied
(the date format message); the other messages are the mock's own, but each names the
offending parameter so that clients matching on e.g. ``resultsPerPage`` still work.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from nvdsync.cpe import parse_cpe
from nvdsync.errors import InvalidQuery
from nvdsync.mock.data import nvd_time
from nvdsync.mock.dataset import Query
from nvdsync.search_filters import MAX_KEYWORD

__all__ = ["BAD_DATE", "MAX_RANGE", "InvalidRequest", "parse_query"]

BAD_DATE = "Invalid ISO 8601 date/time format, see documentation."
#: "The maximum allowable range when using any date range parameters is 120 consecutive
#: days" (contract §4).
MAX_RANGE = timedelta(days=120)

# Parameter names are case-insensitive (contract §2): map lower case to canonical.
_NAMES = {
    name.lower(): name
    for name in (
        "startIndex",
        "resultsPerPage",
        "cveId",
        "noRejected",
        "lastModStartDate",
        "lastModEndDate",
        "pubStartDate",
        "pubEndDate",
        "cpeName",
        "isVulnerable",
        "keywordSearch",
        "keywordExactMatch",
        "cvssV2Severity",
        "cvssV3Severity",
        "cvssV4Severity",
        "cweId",
        "hasKev",
    )
}
_FLAGS = ("noRejected", "isVulnerable", "keywordExactMatch", "hasKev")
_SEVERITIES = {
    "cvssV2Severity": ("LOW", "MEDIUM", "HIGH"),
    "cvssV3Severity": ("LOW", "MEDIUM", "HIGH", "CRITICAL"),
    "cvssV4Severity": ("LOW", "MEDIUM", "HIGH", "CRITICAL"),
}
# NVD's own weakness ids beside the CWE-nnn form (contract §3).
# Bounds shared with the mirror's search (nvdsync.search_filters) so that the mock and
# a served mirror refuse the same requests: CWE ids of at most 9 digits, keywords of
# at most 1,000 characters.
_CWE_RE = re.compile(r"CWE-\d{1,9}|NVD-CWE-Other|NVD-CWE-noinfo", re.IGNORECASE)
_CWE_CANONICAL = {"nvd-cwe-other": "NVD-CWE-Other", "nvd-cwe-noinfo": "NVD-CWE-noinfo"}
# An explicit offset is required (NVD rejects offset-less dates since mid-2025, and
# "-05" without minutes). A "+" the client failed to encode as %2B arrives as a space
# after URL decoding, does not match, and is rejected like NVD does.
_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_CVE_ID_RE = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_FLAG_VALUES = ("", "true")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidRequest(Exception):
    """A request NVD would answer with 404; ``str(exc)`` is the ``message`` header."""

    @property
    def message(self) -> str:
        """The text for the ``message`` response header.

        Header values must be printable ASCII/latin-1: a parameter value echoed in the
        message (non-ASCII, control characters) is escaped rather than breaking the
        response.
        """
        text = str(self).encode("ascii", "backslashreplace").decode("ascii")
        return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def parse_date(value: str) -> datetime:
    """Parse one request date into an aware UTC datetime, or raise InvalidRequest."""
    m = _DATE_RE.fullmatch(value)
    if m is None:
        raise InvalidRequest(BAD_DATE)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction = (m.group(7) or "").ljust(6, "0")[:6]
    try:
        moment = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=UTC)
        if m.group(9):
            hours, minutes = int(m.group(10)), int(m.group(11))
            if hours > 23 or minutes > 59:
                raise InvalidRequest(BAD_DATE)
            offset = timedelta(hours=hours, minutes=minutes)
            moment = moment - offset if m.group(9) == "+" else moment + offset
    except (ValueError, OverflowError):
        raise InvalidRequest(BAD_DATE) from None
    return moment


def _window(params: dict[str, str], start_name: str, end_name: str) -> tuple[str, str] | None:
    """Validate one date pair; return inclusive NVD-form bounds, or None if absent."""
    start_raw, end_raw = params.get(start_name), params.get(end_name)
    if start_raw is None and end_raw is None:
        return None
    if start_raw is None or end_raw is None:
        raise InvalidRequest(
            f"Both {start_name} and {end_name} are required when either is present."
        )
    start, end = parse_date(start_raw), parse_date(end_raw)
    if end < start:
        raise InvalidRequest(f"{start_name} must not be after {end_name}.")
    if end - start > MAX_RANGE:
        raise InvalidRequest(f"The {start_name}/{end_name} range must not exceed 120 days.")
    # Stored dates have millisecond precision: round the start up and the end down so
    # that the inclusive string comparison never widens the requested window.
    if start.microsecond % 1000:
        start += timedelta(microseconds=1000 - start.microsecond % 1000)
    return nvd_time(start), nvd_time(end)


def _int(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise InvalidRequest(f"Invalid {name} value: {raw!r}.") from None
    if not low <= value <= high:
        raise InvalidRequest(
            f"Invalid {name} value: {value}; {name} must be between {low} and {high}."
        )
    return value


def parse_query(query_string: str, max_page_size: int) -> Query:
    """Turn a raw query string into a :class:`Query`, enforcing NVD's rules.

    ``max_page_size`` is the ``resultsPerPage`` cap (2000, or 1000 to simulate NVD's
    stricter limit); it is also the default page size, as on NVD.
    """
    params: dict[str, str] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        canonical = _NAMES.get(name.lower())
        if canonical is None:
            raise InvalidRequest(f"Invalid parameter: {name}")
        params[canonical] = value  # a repeated parameter: the last one wins
    flags = {name: _flag(params, name) for name in _FLAGS}
    cve_id = params.get("cveId")
    if cve_id is not None and not _CVE_ID_RE.fullmatch(cve_id):
        raise InvalidRequest(f"Invalid cveId value: {cve_id!r}.")
    keyword = params.get("keywordSearch")
    if keyword is not None and not keyword.strip():
        raise InvalidRequest("Invalid keywordSearch value: it must not be empty.")
    if keyword is not None and len(keyword) > MAX_KEYWORD:
        raise InvalidRequest(f"Invalid keywordSearch value: longer than {MAX_KEYWORD} "
                             "characters.")
    if flags["keywordExactMatch"] and keyword is None:
        raise InvalidRequest("keywordExactMatch requires keywordSearch.")
    cpe_name = params.get("cpeName")
    if cpe_name is not None:
        _check_cpe_name(cpe_name)
    if flags["isVulnerable"] and cpe_name is None:
        raise InvalidRequest("isVulnerable requires cpeName.")
    return Query(
        start_index=_int(params, "startIndex", 0, 0, 2**62),
        results_per_page=_int(params, "resultsPerPage", max_page_size, 1, max_page_size),
        cve_id=cve_id,
        last_mod=_window(params, "lastModStartDate", "lastModEndDate"),
        pub=_window(params, "pubStartDate", "pubEndDate"),
        no_rejected=flags["noRejected"],
        cpe_name=cpe_name,
        is_vulnerable=flags["isVulnerable"],
        keyword=keyword.strip() if keyword is not None else None,
        keyword_exact=flags["keywordExactMatch"],
        severity=_severity(params),
        cwe_id=_cwe(params.get("cweId")),
        has_kev=flags["hasKev"],
    )


def _flag(params: dict[str, str], name: str) -> bool:
    """Flags take no value; ``name``, ``name=`` and ``name=true`` are all accepted."""
    value = params.get(name)
    if value is not None and value.lower() not in _FLAG_VALUES:
        raise InvalidRequest(f"Invalid {name} value: {value!r}; {name} takes no value.")
    return value is not None


def _severity(params: dict[str, str]) -> tuple[str, str] | None:
    """The one severity filter as (parameter, upper-case value), or None."""
    given = [(name, params[name]) for name in _SEVERITIES if name in params]
    if len(given) > 1:
        raise InvalidRequest("Only one of cvssV2Severity, cvssV3Severity and cvssV4Severity "
                             "may be given.")
    if not given:
        return None
    name, value = given[0]
    if value.upper() not in _SEVERITIES[name]:
        raise InvalidRequest(
            f"Invalid {name} value: {value!r}; use one of {', '.join(_SEVERITIES[name])}."
        )
    return name, value.upper()


def _cwe(value: str | None) -> str | None:
    if value is None:
        return None
    if not _CWE_RE.fullmatch(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise InvalidRequest(f"Invalid cweId value: {shown!r}; e.g. CWE-79 or NVD-CWE-Other.")
    return _CWE_CANONICAL.get(value.lower(), value.upper())


def _check_cpe_name(value: str) -> None:
    """A full CPE 2.3 name whose part, vendor, product and version are not ``*``."""
    try:
        parse_cpe(value, allow_any_version=False)
    except InvalidQuery as exc:
        raise InvalidRequest(f"Invalid cpeName value: {exc}") from None
