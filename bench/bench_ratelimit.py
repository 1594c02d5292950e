"""Benchmark (issue "incremental"): pacing under NVD's rolling-window limit, and workers.

Part 1, pacing. A full sync through a mock NVD that enforces a scaled-down limit (the
same N/W on the mock, keyless and keyed, and on the client) and adds a page latency.
No client can finish faster than the limit allows: issuing R requests under N per
rolling W seconds takes at least (ceil(R/N) - 1) * W, plus one page latency for the
last answer. Printed: wall time, that floor, their ratio (target <= 1.15x), and the
retries (must be 0: a retry here means the mock refused a request with 403).

Part 2, workers. Peak RSS of the same full sync with 1 and 4 workers (pages downloaded
ahead), pages of 2,000, latency on, no limit (so the 4 workers really overlap).
Target: 4 workers <= 1 worker + 10 MB.

Each sync runs in a fresh interpreter and is measured as in ``bench_memory.py`` (see
``_child.py``). Figures are printed, not asserted; the exit status is non-zero only
for a wrong result (records missing, or any retry in part 1).

    .venv/bin/python bench/bench_ratelimit.py [--records 20000] [--seed 0]
        [--page-size 500] [--limit 5/3] [--latency 0.2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

from _harness import (
    Launcher,
    check,
    dataset_stats,
    load,
    median_run,
    mock_nvd,
    probe_page,
    run_child,
    workdir,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000, help="records the mock serves")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--page-size", type=int, default=500,
                        help="resultsPerPage for the pacing part (the workers part uses 2000)")
    parser.add_argument("--limit", default="5/3",
                        help="N/SECONDS on the mock and the client (NVD: 5/30, keyed 50/30)")
    parser.add_argument("--latency", type=float, default=0.2, help="mock seconds per request")
    parser.add_argument("--pacing-workers", type=int, default=1,
                        help="workers for the pacing part")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per measurement; with more than 1 the median is printed")
    parser.add_argument("--only", choices=("pacing", "workers"), help="run one part only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    launcher = Launcher()  # first, while this process is small (see _harness.Launcher)
    n, window = args.limit.split("/")
    limit = (int(n), float(window))
    average, expected_ids = dataset_stats(args.records, args.seed)
    print(f"data: {args.records:,} generated records (seed {args.seed}), "
          f"average record {average:,.0f} B; mock page latency {args.latency:g} s")
    print(f"before: {load()}")
    wrong: list[str] = []
    with launcher, workdir() as work:
        if args.only in (None, "pacing"):
            wrong += pacing(args, limit, launcher, work, expected_ids)
        if args.only in (None, "workers"):
            wrong += workers(args, launcher, work, expected_ids)
    print(f"\nafter:  {load()}")
    for problem in wrong:
        print(f"WRONG RESULT: {problem}", file=sys.stderr)
    if not wrong:
        print("result check: every run stored all records (same id set as the mock)")
    return 1 if wrong else 0


def verify(name: str, result: dict[str, Any], total: int, expected_ids: str) -> list[str]:
    if result["records"] == total and result["ids_sha256"] == expected_ids:
        return []
    return [f"{name}: stored {result['records']} records, the mock serves {total}, "
            "or the id sets differ"]


def pacing(args: argparse.Namespace, limit: tuple[int, float], launcher: Launcher,
           work: Any, expected_ids: str) -> list[str]:
    n, window = limit
    mock_args = ["--records", str(args.records), "--seed", str(args.seed),
                 "--rate-limit", args.limit, "--keyed-rate-limit", args.limit,
                 "--latency", str(args.latency)]
    wrong: list[str] = []
    runs = []
    with mock_nvd(mock_args) as url:
        print(f"\n== pacing: limit {n} requests / {window:g} s on the mock (keyless and "
              f"keyed) and the client, pages of {args.page_size}, "
              f"{args.pacing_workers} worker(s)")
        for repeat in range(args.repeat):
            if repeat:
                # The mock still counts the previous run's last requests, which a new
                # process cannot know about: let them leave its window first.
                time.sleep(window + 0.5)
            spec = {"contender": "nvdsync", "api_url": url, "page_size": args.page_size,
                    "workers": args.pacing_workers, "rate_limit": args.limit,
                    "batch_size": None}
            result = run_child(launcher, spec, work)
            report = result["report"]
            result["requests"] = report["requests"]
            result["limiter_wait_s"] = report["rate_limit_wait_s"]
            result["report_duration_s"] = report["duration_s"]
            runs.append(result)
            print(f"  run {repeat + 1}: {result['duration_s']:.2f} s, "
                  f"{report['requests']} requests, retries {report['retries']} "
                  f"{report['retry_reasons'] or ''}", flush=True)
            wrong += verify("pacing run", result, args.records, expected_ids)
            if report["retries"] or report["retry_reasons"]:
                wrong.append(f"pacing run {repeat + 1}: {report['retries']} retries "
                             f"{report['retry_reasons']}: the mock refused requests")
    f = median_run(runs)
    requests = int(f["requests"])
    floor = (math.ceil(requests / n) - 1) * window + args.latency
    ratio = f["duration_s"] / floor
    label = f" (median of {args.repeat} runs)" if args.repeat > 1 else ""
    pages = math.ceil(args.records / args.page_size)
    rows = [
        ("requests issued" + label, f"{requests} ({pages} pages + the catch-up pass's "
                                     "empty page)"),
        ("floor", f"(ceil({requests}/{n}) - 1) * {window:g} s + {args.latency:g} s "
                  f"= {floor:.2f} s"),
        ("wall time" + label, f"{f['duration_s']:.2f} s (the sync() call; the report's "
                              f"duration_s {f['report_duration_s']:.2f} s, of which "
                              f"{f['limiter_wait_s']:.2f} s waiting in the limiter)"),
        ("wall time / floor", f"{ratio:.3f}x  ({check(ratio <= 1.15, '<= 1.15x')})"),
        ("refused (403)", f"retries {sum(r['report']['retries'] for r in runs)}, "
                          f"retry_reasons {[r['report']['retry_reasons'] for r in runs]} "
                          f"over {len(runs)} run(s) (0 and {{}}: none refused)"),
        ("peak RSS", f"{f['peak_mb']:.1f} MB (growth {f['growth_mb']:.1f} MB)"),
    ]
    width = max(len(name) for name, _ in rows) + 2
    for name, value in rows:
        print(f"{name + ':':<{width}}{value}")
    return wrong


def workers(args: argparse.Namespace, launcher: Launcher, work: Any,
            expected_ids: str) -> list[str]:
    mock_args = ["--records", str(args.records), "--seed", str(args.seed),
                 "--rate-limit", "off", "--keyed-rate-limit", "off",
                 "--latency", str(args.latency)]
    wrong: list[str] = []
    results: dict[int, list[dict[str, Any]]] = {1: [], 4: []}
    with mock_nvd(mock_args) as url:
        total, body, wire = probe_page(url, 2000)
        print(f"\n== workers: same data, pages of 2,000 ({body / 1e6:.2f} MB of JSON, "
              f"{wire / 1e6:.2f} MB gzipped), no rate limit, latency {args.latency:g} s")
        for repeat in range(args.repeat):
            order = (1, 4) if repeat % 2 == 0 else (4, 1)
            for count in order:
                spec = {"contender": "nvdsync", "api_url": url, "page_size": 2000,
                        "workers": count, "rate_limit": "off", "batch_size": None}
                result = run_child(launcher, spec, work)
                result["records_per_s"] = result["records"] / result["duration_s"]
                results[count].append(result)
                print(f"  run {repeat + 1}: workers={count}: {result['duration_s']:.2f} s, "
                      f"peak {result['peak_mb']:.1f} MB", flush=True)
                wrong += verify(f"workers={count}", result, total, expected_ids)
    one, four = median_run(results[1]), median_run(results[4])
    label = f" (median of {args.repeat})" if args.repeat > 1 else ""
    print(f"\n{'workers' + label:<22} {'peak MB':>8} {'growth MB':>10} {'base MB':>8} "
          f"{'rec/s':>7} {'time s':>7}")
    for count, f in ((1, one), (4, four)):
        print(f"{count:<22} {f['peak_mb']:8.1f} {f['growth_mb']:10.1f} {f['baseline_mb']:8.1f} "
              f"{f['records_per_s']:7,.0f} {f['duration_s']:7.2f}")
    diff = four["peak_mb"] - one["peak_mb"]
    print(f"peak(4) - peak(1) = {diff:+.1f} MB  ({check(diff <= 10, '<= +10 MB')})")
    return wrong


if __name__ == "__main__":
    raise SystemExit(main())
