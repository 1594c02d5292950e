"""Pure date-window arithmetic for NVD queries.

NVD rejects any date range longer than 120 days and any date without an explicit
offset (since mid-2025), so every window we send is built here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["MAX_WINDOW", "format_nvd", "nvd_text", "parse_when", "split"]

MAX_WINDOW = timedelta(days=120)


def format_nvd(when: datetime) -> str:
    """``2024-04-01T00:00:00.000+00:00``: millisecond precision, explicit UTC offset."""
    if when.tzinfo is None:
        raise ValueError("NVD dates need a timezone; got a naive datetime")
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+00:00"


def nvd_text(when: datetime) -> str:
    """NVD's record form ``2024-04-12T08:15:06.230`` (UTC, no offset) for comparisons."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}"


def parse_when(text: str) -> datetime:
    """Parse an ISO date or datetime; a value without offset is taken as UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def split(
    start: datetime, end: datetime, limit: timedelta = MAX_WINDOW
) -> list[tuple[datetime, datetime]]:
    """Consecutive [start, end] windows of at most ``limit`` each, covering the range.

    Neighbours share their boundary instant, so a record modified exactly there is
    fetched twice rather than never; the store keeps one copy.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds need a timezone")
    if end < start:
        raise ValueError(f"window end {end.isoformat()} is before its start {start.isoformat()}")
    # A millisecond under the limit: NVD's own check compares rounded timestamps.
    step = limit - timedelta(milliseconds=1)
    windows: list[tuple[datetime, datetime]] = []
    cursor = start
    while True:
        upper = min(cursor + step, end)
        windows.append((cursor, upper))
        if upper >= end:
            return windows
        cursor = upper
