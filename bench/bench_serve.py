"""``nvdsync serve`` over real HTTP (a script, not a test: no timing is asserted).

    .venv/bin/python bench/bench_serve.py [--records 10000] [--clients 50]
                                          [--lookups 4000] [--pages 5]

1. Builds a mirror of N generated records (a sync from the mock NVD, in this process).
2. Starts ``nvdsync serve`` in its own process (uvicorn, one worker) on that mirror.
3. **Id lookups**: C concurrent clients (asyncio + httpx, keep-alive) request random
   ids from ``/api/cves/{id}``; p50/p99 latency. Baseline in the same run and the
   same load: ``/healthz`` (the framework's own cost, no database).
4. **NVD-compatible pages**: 2,000-record pages of ``/rest/json/cves/2.0`` read one
   after another; records/s and MB/s. Baseline: the same pages read in this process
   from ``nvdsync.search.iter_raw``, i.e. what the HTTP layer costs on top.
5. **Server memory while serving pages**: the server's RSS after startup and warm-up
   (baseline), then its high-water mark (VmHWM, which only grows) after P pages and
   after 4P pages. Streamed pages keep it flat; a server that built each ~9 MB page in
   memory would grow by at least a page.

Fails only on a wrong result (a page with the wrong records or count).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec
import psutil

from nvdsync.config import load_settings
from nvdsync.mock import MockConfig, generate, serve
from nvdsync.search import SearchQuery
from nvdsync.search import iter_raw as search_iter_raw
from nvdsync.store import open_store
from nvdsync.sync import sync

MB = 1024 * 1024
PAGE = 2000


def build_mirror(db: Path, n: int) -> list[str]:
    records = generate(n, seed=5)
    ids = [msgspec.json.decode(r)["id"] for r in records]
    server = serve(MockConfig(rate_limit_anonymous=None, rate_limit_keyed=None, gzip=False),
                   records)
    try:
        report = sync(load_settings(db=str(db), api_url=server.url, rate_limit="off"))
        if not report.ok or report.records_written != n:
            raise SystemExit(f"mirror build failed: {report}")
    finally:
        server.stop()
    return ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vm_hwm(pid: int) -> float:
    """The process's peak RSS (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def start_server(db: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nvdsync", "serve", "-q", "--db", str(db),
             "--port", str(port)],
            stdout=sink, stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("NVDSYNC_")},
        )
    for _ in range(400):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


async def hammer(base: str, paths: list[str], clients: int) -> list[float]:
    """Each of ``clients`` tasks takes the next path until none is left; latencies in s."""
    queue = list(reversed(paths))
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while queue:
                path = queue.pop()
                started = time.perf_counter()
                answer = await client.get(path)
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {answer.status_code}")

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def read_pages(base: str, count: int, total: int, ids_in_order: list[str]) -> tuple[float, int]:
    """Read ``count`` pages in turn (cycling); check each; return (seconds, bytes)."""
    pages = max(1, total // PAGE)
    size = 0
    started = time.perf_counter()
    with httpx.Client(base_url=base, timeout=120) as client:
        for i in range(count):
            start = (i % pages) * PAGE
            answer = client.get("/rest/json/cves/2.0",
                                params={"startIndex": start, "resultsPerPage": PAGE})
            size += len(answer.content)
            body = msgspec.json.decode(answer.content)
            got = [v["cve"]["id"] for v in body["vulnerabilities"]]
            if got != ids_in_order[start:start + PAGE] or body["totalResults"] != total:
                raise SystemExit(f"page at {start}: wrong records")
    return time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--lookups", type=int, default=4000)
    parser.add_argument("--pages", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nvdsync-bench-serve-"))
    try:
        run(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, args: argparse.Namespace) -> None:
    db = tmp / "mirror.sqlite"
    started = time.perf_counter()
    ids = build_mirror(db, args.records)
    store = open_store(str(db))
    ordered = [msgspec.json.decode(raw)["id"] for raw in store.iter_raw()]
    print(f"mirror: {len(ids)} records, built in {time.perf_counter() - started:.1f}s")

    port = free_port()
    proc = start_server(db, port, tmp / "serve.log")
    server = psutil.Process(proc.pid)
    base = f"http://127.0.0.1:{port}"
    try:
        rng = random.Random(3)
        # Warm-up: imports, connections, first page; then the memory baseline.
        asyncio.run(hammer(base, ["/healthz"] * 200, args.clients))
        read_pages(base, 1, len(ordered), ordered)
        rss_base = server.memory_info().rss / MB

        health = asyncio.run(hammer(base, ["/healthz"] * args.lookups, args.clients))
        paths = [f"/api/cves/{rng.choice(ids)}" for _ in range(args.lookups)]
        lookups = asyncio.run(hammer(base, paths, args.clients))
        nvd_paths = [f"/rest/json/cves/2.0?cveId={rng.choice(ids)}"
                     for _ in range(args.lookups)]
        nvd_lookups = asyncio.run(hammer(base, nvd_paths, args.clients))
        print(f"\nlatency with {args.clients} concurrent clients, {args.lookups} requests "
              f"each (ms):")
        print(f"{'':<28}{'p50':>8}{'p99':>8}{'p50/base':>10}{'p99/base':>10}")
        for label, values in (("/healthz (baseline)", health),
                              ("/api/cves/{id}", lookups),
                              ("NVD ?cveId=", nvd_lookups)):
            print(f"{label:<28}{pct(values, 50):8.2f}{pct(values, 99):8.2f}"
                  f"{pct(values, 50) / pct(health, 50):10.2f}"
                  f"{pct(values, 99) / pct(health, 99):10.2f}")

        # Baseline: the same pages read in this process straight from the search
        # library (no HTTP, no envelope), measured now, under the same machine load.
        t0 = time.perf_counter()
        for i in range(args.pages):
            start = (i % max(1, len(ordered) // PAGE)) * PAGE
            for _raw in search_iter_raw(store, SearchQuery(offset=start, limit=PAGE)):
                pass
        store_rate = args.pages * PAGE / (time.perf_counter() - t0)
        hwm_before = vm_hwm(proc.pid)
        seconds, size = read_pages(base, args.pages, len(ordered), ordered)
        hwm_n = vm_hwm(proc.pid)
        seconds4, size4 = read_pages(base, 4 * args.pages, len(ordered), ordered)
        hwm_4n = vm_hwm(proc.pid)
        rate = args.pages * PAGE / seconds
        rate4 = 4 * args.pages * PAGE / seconds4
        print(f"\nNVD-compatible 2,000-record pages ({size / args.pages / MB:.1f} MB each):")
        print(f"  {args.pages} pages: {rate:,.0f} records/s, {size / seconds / MB:.1f} MB/s, "
              f"{seconds / args.pages * 1000:.0f} ms/page")
        print(f"  {4 * args.pages} pages: {rate4:,.0f} records/s, "
              f"{size4 / seconds4 / MB:.1f} MB/s")
        print(f"  baseline, the same pages from nvdsync.search.iter_raw in-process: "
              f"{store_rate:,.0f} records/s "
              f"(HTTP serving = {rate4 / store_rate:.2f}x of it)")
        print("\nserver memory (MB):")
        print(f"  RSS after startup and warm-up (baseline): {rss_base:.1f}")
        print(f"  peak (VmHWM) before the page runs:        {hwm_before:.1f}")
        print(f"  peak after {args.pages:>2} pages:                      {hwm_n:.1f} "
              f"(+{hwm_n - rss_base:.1f}, {hwm_n / rss_base:.2f}x baseline)")
        print(f"  peak after {4 * args.pages:>2} more pages:                 {hwm_4n:.1f} "
              f"(+{hwm_4n - rss_base:.1f}, {hwm_4n / rss_base:.2f}x baseline)")
        print(f"  growth 4N vs N: {hwm_4n - hwm_n:+.1f} MB (target: flat; a page is "
              f"{size / args.pages / MB:.1f} MB)")
    except Exception:
        alive = proc.poll() is None
        print(f"\nserver {'alive' if alive else f'exited {proc.returncode}'}; its log:\n"
              + (tmp / "serve.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        proc.terminate()
        proc.wait(15)
        store.close()


if __name__ == "__main__":
    main()
