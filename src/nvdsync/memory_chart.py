"""Pictures of a run's memory: a terminal chart and a matplotlib file (SVG or PNG).

The terminal chart is a dozen hand-written lines on purpose: rich draws no charts,
and a plotting library for the terminal (plotext) would be a dependency for one
picture. It buckets the samples into columns by time and draws each column's highest
RSS (a memory bound is about peaks) with block characters.

The file chart uses matplotlib, imported only when asked (it costs ~30 MB and most
commands never need it), with the non-interactive Agg backend so it works on servers.
It has two panels sharing the time axis: the top one to scale with the warning and
critical thresholds, so a bounded run shows as the flat line it is; the bottom one
zoomed on RSS, with a mark at each committed page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from nvdsync.memory_sampler import RssSample
    from nvdsync.models import RunInfo

__all__ = ["PLOT_SUFFIXES", "plot_run", "text_chart"]

PLOT_SUFFIXES = (".svg", ".png")
_BLOCKS = " ▁▂▃▄▅▆▇█"


def text_chart(samples: Sequence[RssSample], *, width: int = 60, height: int = 8) -> list[str]:
    """Lines of a bar chart of RSS over time: ``height`` rows, ``width`` columns."""
    if not samples:
        return ["(no memory samples recorded for this run)"]
    end = max(s.t_seconds for s in samples) or 1.0
    columns: list[float | None] = [None] * width
    for s in samples:
        i = min(width - 1, int(s.t_seconds / end * width))
        current = columns[i]
        columns[i] = s.rss_mb if current is None else max(current, s.rss_mb)
    filled = _fill(columns)
    low, high = min(filled), max(filled)
    low = max(0.0, low - (high - low) * 0.1 - 1.0)  # a floor below the lowest value
    span = (high - low) or 1.0
    levels = [(v - low) / span * height * 8 for v in filled]  # in eighths of a row
    lines = []
    for row in range(height - 1, -1, -1):
        # The top row is labelled with its top value, the bottom row with its bottom.
        edge = {height - 1: high, 0: low}.get(row)
        label = f"{'':12}│" if edge is None else f"{edge:8.1f} MB │"
        cells = "".join(_BLOCKS[max(0, min(8, round(level - row * 8)))] for level in levels)
        lines.append(label + cells)
    lines.append(f"{'':12}└{'─' * width}")
    lines.append(f"{'':13}0 s{f'{end:.1f} s':>{width - 3}}")
    return lines


def _fill(columns: list[float | None]) -> list[float]:
    """Give empty columns (no sample in that time slice) their left neighbour's value."""
    out: list[float] = []
    last = next(v for v in columns if v is not None)
    for value in columns:
        last = value if value is not None else last
        out.append(last)
    return out


def plot_run(run: RunInfo, samples: Sequence[RssSample], path: Path) -> None:
    """Write the run's memory chart to ``path`` (.svg or .png; ValueError otherwise)."""
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise ValueError(f"{path}: the chart is written as .svg or .png, not "
                         f"{path.suffix or 'a file without a suffix'!r}")
    if not samples:
        raise ValueError(f"run {run.id} has no memory samples to plot")
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt

    times = [s.t_seconds for s in samples]
    rss = [s.rss_mb for s in samples]
    pages = [s for s in samples if s.page is not None]
    fig, (full, zoom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6),
                                     gridspec_kw={"height_ratios": [1, 2]})
    for axis in (full, zoom):
        axis.plot(times, rss, color="tab:blue", linewidth=1.2, label="RSS")
        axis.grid(alpha=0.3)
    for value, colour, name in ((run.warning_mb, "tab:orange", "warning"),
                                (run.critical_mb, "tab:red", "critical")):
        if value is not None:
            full.axhline(value, color=colour, linestyle="--", linewidth=1,
                         label=f"{name} {value:.0f} MB")
    full.set_ylim(0, max([*rss, run.critical_mb or 0.0]) * 1.08)
    full.set_ylabel("RSS (MB)")
    full.legend(loc="center right", fontsize=8)
    zoom.scatter([p.t_seconds for p in pages], [p.rss_mb for p in pages], s=12,
                 color="tab:green", zorder=3, label="page committed")
    top = max(rss)
    if run.peak_rss_mb is not None and run.peak_rss_mb > top:
        # The monitor also reads RSS after every batch and as each page body lands;
        # its peak can fall between the chart's samples.
        zoom.axhline(run.peak_rss_mb, color="tab:purple", linestyle=":", linewidth=1,
                     label=f"peak of all checks {run.peak_rss_mb:.1f} MB")
        top = run.peak_rss_mb
    spread = top - min(rss)
    zoom.set_ylim(min(rss) - spread * 0.1 - 1, top + spread * 0.1 + 1)
    zoom.set_ylabel("RSS (MB), zoomed")
    zoom.set_xlabel("seconds since the sync started")
    zoom.legend(loc="lower right", fontsize=8)
    records = f"{run.records_written:,} records, " if run.records_written else ""
    growth = f", growth {run.growth_mb:+.1f} MB" if run.growth_mb is not None else ""
    full.set_title(f"nvdsync run {run.id} ({run.mode}, {run.outcome}): {records}"
                   f"{run.pages} pages, peak {run.peak_rss_mb or max(rss):.1f} MB{growth}",
                   fontsize=10)
    fig.tight_layout()
    # A fixed hash salt and no date keep the SVG identical for identical data.
    matplotlib.rcParams["svg.hashsalt"] = "nvdsync"
    fig.savefig(path, metadata={"Date": None} if path.suffix.lower() == ".svg" else None)
    plt.close(fig)
