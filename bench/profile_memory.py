"""Where nvdsync's memory goes during a full sync: a diagnostic, not a benchmark.

Runs one nvdsync full sync (in a fresh child, the mock NVD in its own process) and
prints:

1. the RSS cost of what the baseline holds: the interpreter, each heavy import, the
   settings and opening a new database (its schema is created with create_all);
2. an RSS timeline of the first pages, marked at stage boundaries (download spooled,
   page header read, batches written, page committed; a whole-page decode if the
   pipeline falls back to one), each with the highest RSS seen since the previous
   mark (a 1 ms sampler thread), relative to the first request;
3. with ``--tracemalloc``: the Python allocations alive in the middle of writing page
   3, by source line, against a snapshot taken at the first request.

``--mmap-threshold BYTES`` runs the child with glibc's ``MALLOC_MMAP_THRESHOLD_``
pinned, which shows how much of the growth is the allocator keeping freed page
buffers (see docs/benchmarks.md).

    .venv/bin/python bench/profile_memory.py [--records 10000] [--tracemalloc]
        [--mmap-threshold 1048576]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
import time
from typing import Any

MB = 1024 * 1024


def parent(argv: list[str] | None) -> int:
    from _harness import Launcher, child_env, mock_nvd, workdir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pages", type=int, default=4, help="pages of timeline to print")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also list live Python allocations mid-write (slower)")
    parser.add_argument("--mmap-threshold", type=int,
                        help="set MALLOC_MMAP_THRESHOLD_ for the child (bytes)")
    args = parser.parse_args(argv)
    launcher = Launcher()
    mock_args = ["--records", str(args.records), "--seed", str(args.seed),
                 "--rate-limit", "off", "--keyed-rate-limit", "off"]
    with launcher, workdir() as work, mock_nvd(mock_args) as url:
        env = child_env(str(work / "config"))
        if args.mmap_threshold:
            env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
        spec = {"url": url, "db": str(work / "profile.sqlite"), "pages": args.pages,
                "tracemalloc": args.tracemalloc}
        rc, out, err = launcher.run(
            [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)], env)
    sys.stdout.write(out)
    if rc != 0:
        sys.stderr.write(err)
    return rc


def child(spec: dict[str, Any]) -> None:
    import psutil

    process = psutil.Process()

    def rss() -> float:
        return float(process.memory_info().rss) / MB

    print("1. what the baseline holds (RSS after each step, MB)")
    last = rss()
    print(f"   {'interpreter + psutil':<44} {last:6.1f}")

    def step(label: str, action: Any) -> None:
        nonlocal last
        action()
        now = rss()
        print(f"   {label:<44} {now:6.1f}  {now - last:+5.1f}")
        last = now

    for name in ("httpx", "msgspec", "sqlalchemy", "pydantic", "pydantic_settings",
                 "nvdsync.sync", "nvdsync.pipeline", "nvdsync.store"):
        step(f"import {name}", lambda name=name: importlib.import_module(name))
    import nvdsync.pipeline as pipeline
    import nvdsync.source.nvd as source
    import nvdsync.store.sql as sql
    from nvdsync.config import load_settings
    from nvdsync.store import open_store
    from nvdsync.sync import sync

    settings = load_settings(db=spec["db"], api_url=spec["url"], rate_limit="off",
                             page_size=2000)
    step("open_store() on a new database", lambda: open_store(spec["db"]).close())

    marks: list[tuple[str, float, float]] = []
    high = [0.0]

    def sampler() -> None:
        while True:
            value = rss()
            if value > high[0]:
                high[0] = value
            time.sleep(0.001)

    def mark(label: str) -> None:
        now = rss()
        marks.append((label, now, max(high[0], now)))
        high[0] = 0.0

    tracing = spec["tracemalloc"]
    snapshots: dict[str, Any] = {}
    pages = [0]
    batches = [0]
    fetch, open_page, decode = source.NvdSource.fetch, pipeline.open_page, pipeline.decode_page
    write_page = pipeline.Runner._write_page
    write_batch = sql.SqlStore.write_batch

    async def fetch_marked(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not marks and tracing:
            import tracemalloc

            tracemalloc.start(8)  # frames per allocation, to find the nvdsync caller
            snapshots["start"] = tracemalloc.take_snapshot()
        mark(f"page {pages[0] + 1}: request sent")
        body = await fetch(self, *args, **kwargs)
        mark("  body downloaded (spooled)")
        return body

    def open_page_marked(*args: Any, **kwargs: Any) -> Any:
        opened = open_page(*args, **kwargs)
        mark("  header read; records now stream from the spool")
        return opened

    def decode_marked(data: bytes, **kwargs: Any) -> Any:
        mark(f"  FALLBACK: body read whole ({len(data) / MB:.1f} MB)")
        page = decode(data, **kwargs)
        mark("  envelope decoded whole (records stay raw)")
        return page

    def write_page_marked(self: Any, *args: Any) -> Any:
        pages[0] += 1
        batches[0] = 0
        result = write_page(self, *args)
        mark("  page committed")
        return result

    def write_batch_marked(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = write_batch(self, *args, **kwargs)
        batches[0] += 1
        if batches[0] in (1, 20):
            mark(f"  batch {batches[0]} written")
        if tracing and pages[0] == 3 and batches[0] == 20:
            import tracemalloc

            snapshots["mid"] = tracemalloc.take_snapshot()
            snapshots["traced"] = tracemalloc.get_traced_memory()
            snapshots["rss"] = rss()
        return result

    source.NvdSource.fetch = fetch_marked  # type: ignore[method-assign]
    pipeline.open_page = open_page_marked
    pipeline.decode_page = decode_marked
    pipeline.Runner._write_page = write_page_marked  # type: ignore[method-assign]
    sql.SqlStore.write_batch = write_batch_marked  # type: ignore[method-assign]
    threading.Thread(target=sampler, daemon=True).start()
    report = sync(settings, full=True)

    base = marks[0][1]
    growth = max(m[2] for m in marks) - base
    print(f"\n2. timeline (MB relative to the first request, {base:.1f} MB; 'max' = highest "
          "RSS since the previous mark)")
    shown = 0
    for label, now, top in marks:
        if label.startswith("page "):
            shown += 1
        if shown > spec["pages"]:
            break
        print(f"   {label:<52} now {now - base:+6.1f}   max {top - base:+6.1f}")
    print(f"   ... {report.pages} pages; highest RSS of the run: {growth:+.1f} MB "
          f"(nvdsync's report: peak {report.peak_rss_mb} MB, growth "
          f"{report.memory_growth_mb} MB from its own baseline at sync start)")
    if tracing and "mid" in snapshots:
        current, peak = snapshots["traced"]
        print(f"\n3. live Python allocations mid-write of page 3: {current / MB:.1f} MB "
              f"(traced peak so far {peak / MB:.1f} MB) while RSS is "
              f"{snapshots['rss'] - base:+.1f} MB over the first request; top lines:")
        for stat in snapshots["mid"].compare_to(snapshots["start"], "traceback")[:8]:
            print(f"   {stat.size_diff / MB:7.2f} MB {stat.count_diff:7,} objects  "
                  f"{_where(stat.traceback)}")


def _where(traceback: Any) -> str:
    """The allocating line, and the innermost nvdsync line that led to it."""
    frames = list(traceback)  # oldest first
    inner = frames[-1]
    text = f"{os.path.basename(inner.filename)}:{inner.lineno}"
    ours = [f for f in frames if f"{os.sep}nvdsync{os.sep}" in f.filename]
    if ours and ours[-1] is not inner:
        text += f" <- nvdsync/{ours[-1].filename.split(os.sep + 'nvdsync' + os.sep)[-1]}" \
                f":{ours[-1].lineno}"
    return text


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        raise SystemExit(parent(sys.argv[1:]))
