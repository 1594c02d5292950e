"""Benchmark (issue 4): growth with run size, and the GC policy chosen by measurement.

Part 1, **growth vs run size**: nvdsync's default full sync of 20,000 and of 100,000
generated records (pages of 2,000). A batch-bounded pipeline should grow by the same
few MB however long the run; target: the two growths differ by <= 5 MB.

Part 2, **GC policy**: on the same 20,000 records, nvdsync with threshold-only GC (the
default: a collection only when RSS crosses 1024/2048 MB) against the seed design's
periodic points (gc.collect() every 2 mini-batches, every 5 pages and every 3 DB
batches, plus the thresholds), and each periodic point alone. Printed: peak RSS,
growth, records/s and records per CPU-second, and ratios against threshold-only.

Each sync runs in a fresh interpreter against a mock NVD in its own process, measured
as ``_child.py`` describes (peak = max of a 2 ms RSS sampler and ru_maxrss; growth =
peak - RSS just before the first request). Runs alternate order between repeats and
the median is printed. Nothing is asserted; the exit code is non-zero only when a run
stored the wrong records.

    .venv/bin/python bench/bench_memory_policy.py [--repeat 3] [--small 20000]
        [--large 100000] [--skip-size] [--skip-gc]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _harness import (
    Launcher,
    check,
    dataset_stats,
    load,
    median_run,
    mock_nvd,
    run_child,
    workdir,
)

SEED_GC = {"gc_every_batches": 2, "gc_every_pages": 5, "gc_every_db_batches": 3}
POLICIES: dict[str, dict[str, Any]] = {
    "threshold-only (default)": {},
    "seed periodic GC (2/5/3)": SEED_GC,
    "gc every 2 batches": {"gc_every_batches": 2},
    "gc every 5 pages": {"gc_every_pages": 5},
    "gc every 3 DB batches": {"gc_every_db_batches": 3},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (median)")
    parser.add_argument("--small", type=int, default=20_000, help="records, small run")
    parser.add_argument("--large", type=int, default=100_000, help="records, large run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--skip-size", action="store_true", help="skip part 1")
    parser.add_argument("--skip-gc", action="store_true", help="skip part 2")
    return parser.parse_args(argv)


def measure(launcher: Launcher, work: Any, url: str, expected: tuple[int, str],
            settings: dict[str, Any], wrong: list[str], name: str) -> dict[str, Any]:
    spec = {"contender": "nvdsync", "api_url": url, "page_size": 2000, "workers": 1,
            "rate_limit": "off", "batch_size": None, "settings": settings}
    result = run_child(launcher, spec, work)
    result["records_per_s"] = result["records"] / result["duration_s"]
    result["records_per_cpu_s"] = result["records"] / result["cpu_s"]
    if (result["records"], result["ids_sha256"]) != expected:
        wrong.append(f"{name} stored {result['records']} records, expected {expected[0]}")
    print(f"  {name:<28} {result['duration_s']:6.1f} s, peak {result['peak_mb']:6.1f} MB, "
          f"growth {result['growth_mb']:5.1f} MB, GCs {result['report']['gcs_run']}",
          flush=True)
    return result


def run_size(launcher: Launcher, work: Any, args: argparse.Namespace,
             wrong: list[str]) -> dict[int, dict[str, Any]]:
    print("part 1: growth vs run size (nvdsync defaults)")
    figures: dict[int, dict[str, Any]] = {}
    for records in (args.small, args.large):
        _, ids = dataset_stats(records, args.seed)
        runs = []
        with mock_nvd(["--records", str(records), "--seed", str(args.seed), "--rate-limit",
                       "off", "--keyed-rate-limit", "off"]) as url:
            for _ in range(args.repeat):
                runs.append(measure(launcher, work, url, (records, ids), {}, wrong,
                                    f"{records:,} records"))
        figures[records] = median_run(runs)
    return figures


def run_gc(launcher: Launcher, work: Any, args: argparse.Namespace,
           wrong: list[str]) -> dict[str, dict[str, Any]]:
    print(f"\npart 2: GC policy on the same {args.small:,} records")
    _, ids = dataset_stats(args.small, args.seed)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in POLICIES}
    with mock_nvd(["--records", str(args.small), "--seed", str(args.seed), "--rate-limit",
                   "off", "--keyed-rate-limit", "off"]) as url:
        for repeat in range(args.repeat):
            order = list(POLICIES) if repeat % 2 == 0 else list(POLICIES)[::-1]
            for name in order:
                results[name].append(measure(launcher, work, url, (args.small, ids),
                                             POLICIES[name], wrong, name))
    return {name: median_run(runs) for name, runs in results.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    launcher = Launcher()  # first, while this process is small (see _harness.Launcher)
    wrong: list[str] = []
    sizes: dict[int, dict[str, Any]] = {}
    policies: dict[str, dict[str, Any]] = {}
    with launcher, workdir() as work:
        print(f"before: {load()}; {args.repeat} run(s) per contender, median printed\n")
        if not args.skip_size:
            sizes = run_size(launcher, work, args, wrong)
        if not args.skip_gc:
            policies = run_gc(launcher, work, args, wrong)
        print(f"after:  {load()}")
    if sizes:
        print(f"\n{'records':>9} {'peak MB':>8} {'growth MB':>10} {'base MB':>8} {'rec/s':>7}")
        for records, f in sizes.items():
            print(f"{records:>9,} {f['peak_mb']:8.1f} {f['growth_mb']:10.1f} "
                  f"{f['baseline_mb']:8.1f} {f['records_per_s']:7,.0f}")
        small, large = sizes[args.small], sizes[args.large]
        diff = large["growth_mb"] - small["growth_mb"]
        print(f"growth difference {args.large:,} - {args.small:,}: {diff:+.1f} MB "
              f"({check(abs(diff) <= 5, '<= 5 MB')})")
    if policies:
        base = policies["threshold-only (default)"]
        print(f"\n{'policy':<28} {'peak MB':>8} {'growth MB':>10} {'rec/s':>7} "
              f"{'rec/cpu-s':>9} {'GCs':>5}  vs threshold-only")
        for name, f in policies.items():
            print(f"{name:<28} {f['peak_mb']:8.1f} {f['growth_mb']:10.1f} "
                  f"{f['records_per_s']:7,.0f} {f['records_per_cpu_s']:9,.0f} "
                  f"{f['report']['gcs_run']:>5}  peak {f['peak_mb'] / base['peak_mb']:.2f}x, "
                  f"rec/s {f['records_per_s'] / base['records_per_s']:.2f}x, rec/cpu-s "
                  f"{f['records_per_cpu_s'] / base['records_per_cpu_s']:.2f}x")
    for problem in wrong:
        print(f"WRONG RESULT: {problem}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
