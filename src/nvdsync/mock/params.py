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

from nvdsync.mock.data import nvd_time
from nvdsync.mock.dataset import Query

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
    )
}
# An explicit offset is required (NVD rejects offset-less dates since mid-2025, and
# "-05" without minutes). A "+" the client failed to encode as %2B arrives as a space
# after URL decoding, does not match, and is rejected like NVD does.
_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_CVE_ID_RE = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_FLAG_VALUES = ("", "true")


class InvalidRequest(Exception):
    """A request NVD would answer with 404; ``str(exc)`` is the ``message`` header."""

    @property
    def message(self) -> str:
        """The text for the ``message`` response header."""
        return str(self)


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
    flag = params.get("noRejected")
    if flag is not None and flag.lower() not in _FLAG_VALUES:
        raise InvalidRequest(f"Invalid noRejected value: {flag!r}; noRejected takes no value.")
    cve_id = params.get("cveId")
    if cve_id is not None and not _CVE_ID_RE.fullmatch(cve_id):
        raise InvalidRequest(f"Invalid cveId value: {cve_id!r}.")
    return Query(
        start_index=_int(params, "startIndex", 0, 0, 2**62),
        results_per_page=_int(params, "resultsPerPage", max_page_size, 1, max_page_size),
        cve_id=cve_id,
        last_mod=_window(params, "lastModStartDate", "lastModEndDate"),
        pub=_window(params, "pubStartDate", "pubEndDate"),
        no_rejected=flag is not None,
    )
