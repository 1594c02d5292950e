"""Date windows and the choice of plan (pure functions)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from nvdsync.errors import ConfigError
from nvdsync.models import SyncPlan, Window
from nvdsync.plan import catchup_window, choose_plan
from nvdsync.source.windows import MAX_WINDOW, format_nvd, nvd_text, parse_when, split

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_format_has_explicit_offset_and_milliseconds():
    when = datetime(2024, 4, 1, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert format_nvd(when) == "2024-04-01T05:08:09.123+00:00"
    assert nvd_text(when) == "2024-04-01T05:08:09.123"
    with pytest.raises(ValueError, match="timezone"):
        format_nvd(datetime(2024, 1, 1))


def test_parse_when_assumes_utc_without_offset():
    assert parse_when("2024-01-31") == datetime(2024, 1, 31, tzinfo=UTC)
    assert parse_when("2024-01-31T10:00:00Z").tzinfo is not None


@pytest.mark.parametrize("days", [0, 1, 119, 120, 121, 200, 240, 1000])
def test_split_covers_the_range_in_windows_of_at_most_120_days(days):
    start = NOW - timedelta(days=days)
    windows = split(start, NOW)
    assert windows[0][0] == start and windows[-1][1] == NOW
    assert all(b - a <= MAX_WINDOW for a, b in windows)
    assert all(windows[i][1] == windows[i + 1][0] for i in range(len(windows) - 1))
    step = MAX_WINDOW - timedelta(milliseconds=1)  # a hair under NVD's limit
    assert len(windows) == max(1, math.ceil(timedelta(days=days) / step))


def test_split_200_days_is_two_windows():
    assert len(split(NOW - timedelta(days=200), NOW)) == 2


def test_split_rejects_reversed_range():
    with pytest.raises(ValueError, match="before its start"):
        split(NOW, NOW - timedelta(days=1))


def plan_for(**kw):  # type: ignore[no-untyped-def]
    values = {"pending": None, "watermark": None, "now": NOW, "full": False, "since": None,
              "restart": False, "overlap": timedelta(hours=1), "page_size": 2000}
    values.update(kw)
    return choose_plan(**values)


def test_no_watermark_means_full():
    plan, resumed = plan_for()
    assert plan.mode == "full" and not resumed and plan.windows[0].kind == "all"


def test_watermark_means_incremental_from_watermark_minus_overlap():
    plan, _ = plan_for(watermark=NOW - timedelta(days=3))
    assert plan.mode == "incremental"
    assert parse_when(plan.windows[0].start) == NOW - timedelta(days=3, hours=1)
    assert parse_when(plan.windows[-1].end) == NOW


def test_pending_plan_is_resumed_unless_told_otherwise():
    pending = SyncPlan(7, "full", format_nvd(NOW), [Window("all", next_index=4000)])
    assert plan_for(pending=pending) == (pending, True)
    assert plan_for(pending=pending, full=True) == (pending, True)
    assert plan_for(pending=pending, restart=True)[1] is False
    with pytest.raises(ConfigError, match="interrupted full sync"):
        plan_for(pending=pending, since=NOW - timedelta(days=1))
    forced = plan_for(pending=pending, since=NOW - timedelta(days=1), restart=True)[0]
    assert forced.mode == "incremental" and not forced.advance_watermark  # no watermark
    inc = SyncPlan(7, "incremental", format_nvd(NOW), [Window("lastmod", "a", "b")])
    assert plan_for(pending=inc, full=True)[0].mode == "full"


def test_since_in_the_future_is_a_config_error():
    with pytest.raises(ConfigError, match="future"):
        plan_for(since=NOW + timedelta(days=1))


def test_catchup_starts_where_the_plan_coverage_ends():
    plan = SyncPlan(1, "full", format_nvd(NOW - timedelta(hours=2)), [Window("all", done=True)])
    windows = catchup_window(plan, NOW)
    assert parse_when(windows[0].start) == NOW - timedelta(hours=2)
    assert parse_when(windows[-1].end) == NOW


def test_since_after_the_watermark_does_not_move_it():
    watermark = NOW - timedelta(days=5)
    late = plan_for(watermark=watermark, since=NOW - timedelta(days=1))[0]
    early = plan_for(watermark=watermark, since=NOW - timedelta(days=9))[0]
    assert not late.advance_watermark and early.advance_watermark


def test_an_interrupted_repair_is_not_resumed_by_sync():
    repair = SyncPlan(3, "repair", format_nvd(NOW), [Window("pub", "a", "b")])
    plan, resumed = plan_for(pending=repair, watermark=NOW - timedelta(days=1))
    assert plan.mode == "incremental" and not resumed
