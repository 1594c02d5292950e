"""Child process of the benchmarks: run ONE measured sync, print one JSON line.

Run as ``python bench/_child.py SPEC_JSON`` by ``_harness.run_child``; never by hand.
Every contender is measured the same way, from inside this process:

* **peak** = max(RSS sampled by a background thread every ``interval`` s with psutil,
  ``getrusage(RUSAGE_SELF).ru_maxrss`` read when the sync returns). ``ru_maxrss`` is
  the kernel's high-water mark over the process's whole life, so it also catches a
  spike between two samples (the sampler needs the GIL, so under a CPU-bound main
  thread it wakes less often than asked; ``samples`` tells how often it did).
* **baseline** = RSS just before the first HTTP request, taken by wrapping
  ``httpx.Client.send`` and ``httpx.AsyncClient.send`` (both contenders send every
  request through one of them). At that moment the process holds the interpreter,
  psutil and the sampler thread, every module of the contender, its open database
  (schema created) and its HTTP client; for nvdsync also its event loop, its database
  thread and the run's bookkeeping rows. No page has been requested yet.
* **growth** = peak - baseline.
* **duration** = wall time of the contender's sync call (from the call to its return,
  database opening excluded for both), so records/s = stored records / duration.
* **cpu** = user + system CPU seconds of this process (all its threads) over the same
  call: less sensitive than wall time to other load on the machine, and it excludes
  the mock's work, which runs in its own process.

After the measurement ends the child counts the stored records and hashes their
sorted ids, so the parent can check that every contender stored the same records.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import resource
import sqlite3
import sys
import threading
import time
from typing import Any

import httpx
import psutil

MB = 1024 * 1024
FORCED_GCS = [0]  # collections run by the forced-GC variant


class Probe:
    """RSS sampler thread plus the 'first request' baseline."""

    def __init__(self, interval: float) -> None:
        self.process = psutil.Process()
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self.baseline: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def _run(self) -> None:
        read, sleep, stopped = self.process.memory_info, time.sleep, self._stop.is_set
        interval = self.interval
        while not stopped():
            rss = read().rss
            if rss > self.peak:
                self.peak = rss
            self.samples += 1
            sleep(interval)

    def start(self) -> None:
        self.peak = max(self.peak, self.rss())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    def mark_first_request(self) -> None:
        if self.baseline is None:
            self.baseline = self.rss()
            self.peak = max(self.peak, self.baseline)


def hook_httpx(probe: Probe) -> None:
    """Take the baseline as the first request of either client type is sent."""
    sync_send = httpx.Client.send
    async_send = httpx.AsyncClient.send

    @functools.wraps(sync_send)
    def send(self: httpx.Client, *args: Any, **kwargs: Any) -> httpx.Response:
        probe.mark_first_request()
        return sync_send(self, *args, **kwargs)

    @functools.wraps(async_send)
    async def asend(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> httpx.Response:
        probe.mark_first_request()
        return await async_send(self, *args, **kwargs)

    httpx.Client.send = send  # type: ignore[method-assign]
    httpx.AsyncClient.send = asend  # type: ignore[method-assign]


def force_gc_every(batches: int) -> None:
    """Variant: make nvdsync run gc.collect() after every ``batches`` written batches."""
    from nvdsync.store.sql import SqlStore

    original = SqlStore.write_batch
    calls = 0

    @functools.wraps(original)
    def write_batch(self: SqlStore, *args: Any, **kwargs: Any) -> int:
        nonlocal calls
        written = original(self, *args, **kwargs)
        calls += 1
        if calls % batches == 0:
            gc.collect()
            FORCED_GCS[0] += 1
        return written

    SqlStore.write_batch = write_batch  # type: ignore[method-assign]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_nvdsync(spec: dict[str, Any], probe: Probe) -> dict[str, Any]:
    import msgspec

    # Everything sync() imports lazily is imported here, before any measurement.
    import nvdsync.memory
    import nvdsync.pipeline
    import nvdsync.ratelimit
    import nvdsync.retry
    import nvdsync.source.nvd
    import nvdsync.store
    import nvdsync.store.migrate
    from nvdsync.config import load_settings
    from nvdsync.errors import SyncIncomplete
    from nvdsync.sync import sync

    if spec.get("gc_every_batches"):
        force_gc_every(int(spec["gc_every_batches"]))
    settings = load_settings(
        db=spec["db"], api_url=spec["api_url"], rate_limit=spec["rate_limit"],
        page_size=spec["page_size"], workers=spec["workers"], batch_size=spec["batch_size"],
        **spec.get("settings", {}),  # e.g. gc_every_pages (bench_memory_policy.py)
    )
    # Create the schema before the clock starts (new databases: create_all, no Alembic)
    # (~12 MB that stay resident), as a first `nvdsync sync` does; with "premigrated"
    # the parent created the schema in another process, as for a later sync.
    store = nvdsync.store.open_store(spec["db"])
    store.close()
    probe.start()
    rss_before = probe.rss()
    cpu, started = cpu_seconds(), time.perf_counter()
    try:
        report = sync(settings, full=True)
    except SyncIncomplete as exc:
        print(f"nvdsync sync failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    duration, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return {"rss_before_sync": rss_before, "duration_s": duration, "cpu_s": cpu,
            "report": msgspec.to_builtins(report)}


def run_seed(spec: dict[str, Any], probe: Probe) -> dict[str, Any]:
    import dataclasses

    import seed_design

    mirror = seed_design.SeedMirror(spec["db"])
    probe.start()
    rss_before = probe.rss()
    cpu, started = cpu_seconds(), time.perf_counter()
    gc_on = spec.get("seed_gc", True)
    report = seed_design.sync(
        mirror, spec["api_url"], page_size=spec["page_size"],
        gc_every_batches=seed_design.GC_EVERY_BATCHES if gc_on else 0,
        gc_every_pages=seed_design.GC_EVERY_PAGES if gc_on else 0,
    )
    duration, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    mirror.close()
    return {"rss_before_sync": rss_before, "duration_s": duration, "cpu_s": cpu,
            "report": dataclasses.asdict(report)}


def stored(db: str) -> tuple[int, str]:
    """(count, sha256 of the sorted ids) of the ``cves`` table."""
    conn = sqlite3.connect(db)
    try:
        ids = [row[0] for row in conn.execute("SELECT id FROM cves ORDER BY id")]
    finally:
        conn.close()
    return len(ids), hashlib.sha256("\n".join(ids).encode()).hexdigest()


def vm_hwm() -> int:
    """This address space's RSS high-water mark (bytes); exec resets it, unlike ru_maxrss."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    spec = json.loads(sys.argv[1])
    probe = Probe(spec.get("interval", 0.002))
    hook_httpx(probe)
    runner = {"nvdsync": run_nvdsync, "seed": run_seed}[spec["contender"]]
    result = runner(spec, probe)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    hwm = vm_hwm()
    probe.stop()
    if probe.baseline is None:
        print("no HTTP request was sent", file=sys.stderr)
        raise SystemExit(1)
    peak = max(probe.peak, maxrss)
    count, digest = stored(spec["db"])
    result.update(
        pid=os.getpid(),
        baseline_mb=probe.baseline / MB,
        rss_before_sync_mb=result.pop("rss_before_sync") / MB,
        sampled_peak_mb=probe.peak / MB,
        ru_maxrss_mb=maxrss / MB,
        vm_hwm_mb=hwm / MB,
        peak_mb=peak / MB,
        growth_mb=(peak - probe.baseline) / MB,
        samples=probe.samples,
        forced_gcs=FORCED_GCS[0],
        records=count,
        ids_sha256=digest,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
