"""Decoding one NVD page: json.loads, msgspec whole envelope, nvdsync's streaming split.

Prints records/s and the peak of Python allocations (tracemalloc) while decoding a
generated 2,000-record page, each as a ratio against json.loads measured in the same
run. Only the decode step is measured here; bench_memory.py measures whole syncs.

    .venv/bin/python bench/bench_decode.py [--records 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import IO

from nvdsync.decode import decode_page, iter_records, open_page
from nvdsync.mock import generate


def envelope(records: list[bytes]) -> bytes:
    head = (f'{{"resultsPerPage":{len(records)},"startIndex":0,"totalResults":{len(records)},'
            '"format":"NVD_CVE","version":"2.0","timestamp":"2026-01-01T00:00:00.000",'
            '"vulnerabilities":[').encode()
    return head + b",".join(b'{"cve":' + r + b"}" for r in records) + b"]}"


# Every contender starts from the page spooled in a file (as nvdsync's source leaves
# it), so reading the body into memory counts against the decoders that need it whole.


def with_json(spool: IO[bytes]) -> int:
    page = json.loads(spool.read())
    return sum(1 for item in page["vulnerabilities"] if item["cve"]["id"])


def with_msgspec_whole(spool: IO[bytes]) -> int:
    return sum(1 for raw in iter_records(decode_page(spool.read(), start_index=0)) if raw)


def with_stream(spool: IO[bytes]) -> int:
    _, items = open_page(spool, start_index=0)
    return sum(1 for raw in items if raw)


def measure(fn: Callable[[IO[bytes]], int], body: bytes,
            repeat: int) -> tuple[float, float]:
    """(median seconds, peak MB of Python allocations while decoding)."""
    times = []
    with tempfile.TemporaryFile() as spool:
        spool.write(body)
        for _ in range(repeat):
            spool.seek(0)
            start = time.perf_counter()
            fn(spool)
            times.append(time.perf_counter() - start)
        spool.seek(0)
        tracemalloc.start()
        fn(spool)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return statistics.median(times), peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    records = generate(args.records, seed=1)
    body = envelope(records)
    print(f"page: {args.records} records, {len(body) / 2**20:.2f} MB of JSON")
    contenders = [("json.loads (baseline)", with_json),
                  ("msgspec, envelope whole", with_msgspec_whole),
                  ("nvdsync streaming split", with_stream)]
    base_rate = base_mem = 0.0
    for name, fn in contenders:
        if fn(io.BytesIO(body)) != args.records:
            print(f"{name}: wrong record count", file=sys.stderr)
            return 1
        seconds, peak = measure(fn, body, args.repeat)
        rate = args.records / seconds
        if not base_rate:
            base_rate, base_mem = rate, peak
        print(f"{name:26s} {rate:>10,.0f} records/s ({rate / base_rate:5.2f}x)   "
              f"peak allocations {peak:7.2f} MB ({peak / base_mem:5.3f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
