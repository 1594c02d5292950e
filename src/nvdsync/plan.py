"""Deciding what a sync run must fetch: resume, full, or incremental windows.

Pure functions over the stored state, so the decision is testable without HTTP.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from nvdsync.errors import ConfigError
from nvdsync.models import SyncPlan, Window
from nvdsync.source.windows import format_nvd, parse_when, split

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["catchup_window", "choose_plan", "incremental_windows", "windows_end"]


def incremental_windows(start: datetime, end: datetime) -> list[Window]:
    return [Window("lastmod", format_nvd(a), format_nvd(b)) for a, b in split(start, end)]


def choose_plan(
    *,
    pending: SyncPlan | None,
    watermark: datetime | None,
    now: datetime,
    full: bool,
    since: datetime | None,
    restart: bool,
    overlap: timedelta,
    page_size: int,
) -> tuple[SyncPlan, bool]:
    """Return (plan, resumed).

    A pending plan (an interrupted run) is resumed unless the caller asks for something
    else: ``--since``, ``--restart``, or ``--full`` over a pending incremental plan.
    Without a watermark there is nothing to be incremental from, so the run is full.
    """
    if pending is not None and pending.mode == "repair":
        pending = None  # an interrupted `verify --repair`: rerun it, a sync should sync
    if pending is not None and not restart:
        if since is None and (not full or pending.mode == "full"):
            return pending, True
        if pending.mode == "full":
            raise ConfigError("an interrupted full sync is pending: run `nvdsync sync` to "
                              "finish it, or add --restart to discard it")
    started = format_nvd(now)
    if since is not None:
        if since > now:
            raise ConfigError(f"--since {since.isoformat()} is in the future; give a past time")
        windows = incremental_windows(since, now)
        # Windows that start after the watermark leave a gap: keep the watermark.
        advance = watermark is not None and since <= watermark
        return SyncPlan(0, "incremental", started, windows, page_size,
                        advance_watermark=advance), False
    if full or watermark is None:
        return SyncPlan(0, "full", started, [Window("all")], page_size), False
    windows = incremental_windows(min(watermark - overlap, now), now)
    return SyncPlan(0, "incremental", started, windows, page_size), False


def windows_end(windows: Sequence[Window], started_at: str) -> datetime:
    """The instant up to which completed windows cover every modification.

    For the unfiltered listing that is the moment the run started; for lastMod
    windows it is the latest window end.
    """
    ends = [parse_when(w.end) for w in windows if w.kind == "lastmod" and w.end]
    return max([parse_when(started_at), *ends])


def catchup_window(plan: SyncPlan, now: datetime) -> list[Window]:
    """lastMod windows from where the plan's coverage ends up to ``now``."""
    start = windows_end(plan.windows, plan.started_at)
    if now <= start:
        now = start + timedelta(milliseconds=1)
    return incremental_windows(start, now)
