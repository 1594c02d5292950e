"""Benchmark (issue "core"): nvdsync's full sync against the product's seed design.

Both contenders sync the same generated dataset from one mock NVD process (rate limits
off, no latency), each run in its own fresh interpreter, measured identically (see
``_child.py``). Printed for each: peak RSS, growth (peak minus the RSS just before the
first request) and records/s, then the nvdsync/seed ratios against the targets
(growth <= 0.3x, peak <= 0.75x, records/s >= 3x). Variants document the batch and GC
choices: nvdsync with ``--batch-size 50`` given explicitly, nvdsync with gc.collect()
forced after every 2 batches as the seed did, and (for calibration) the seed design
with its forced collections turned off.

The figures are printed, never asserted; the script exits non-zero only on a wrong
result (a contender stored a different number or set of records than the mock serves).

    .venv/bin/python bench/bench_memory.py [--records 20000] [--seed 0]
        [--page-size 2000] [--repeat 1] [--no-variants] [--premigrated]
        [--extra-batch-size N ...]
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
    probe_page,
    run_child,
    workdir,
)

CONTENDERS: dict[str, dict[str, Any]] = {
    "nvdsync": {"contender": "nvdsync", "batch_size": None},
    "seed design": {"contender": "seed"},
    "nvdsync --batch-size 50": {"contender": "nvdsync", "batch_size": 50},
    "nvdsync + gc every 2 batches": {"contender": "nvdsync", "batch_size": None,
                                     "gc_every_batches": 2},
    "seed design without forced GC": {"contender": "seed", "seed_gc": False},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000, help="records the mock serves")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--page-size", type=int, default=2000, help="resultsPerPage")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per contender; with more than 1 the median is printed")
    parser.add_argument("--no-variants", action="store_true",
                        help="skip the variants (batch size, forced GC, seed without GC)")
    parser.add_argument("--premigrated", action="store_true",
                        help="create nvdsync's schema in another process first, so the "
                        "measured sync opens an existing database (no Alembic import), "
                        "as every sync after the first does")
    parser.add_argument("--extra-batch-size", type=int, action="append", default=[],
                        metavar="N", help="also run nvdsync with --batch-size N (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    launcher = Launcher()  # first, while this process is small (see _harness.Launcher)
    contenders = dict(CONTENDERS)
    for size in args.extra_batch_size:
        contenders[f"nvdsync --batch-size {size}"] = {"contender": "nvdsync", "batch_size": size}
    names = list(contenders) if not args.no_variants else ["nvdsync", "seed design"]
    names += [f"nvdsync --batch-size {size}" for size in args.extra_batch_size
              if args.no_variants and size != 50]
    average, expected_ids = dataset_stats(args.records, args.seed)
    mock_args = ["--records", str(args.records), "--seed", str(args.seed),
                 "--rate-limit", "off", "--keyed-rate-limit", "off"]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    wrong: list[str] = []
    with launcher, workdir() as work, mock_nvd(mock_args) as url:
        total, body, wire = probe_page(url, args.page_size)
        print(f"data: {total:,} generated records (seed {args.seed}), "
              f"average record {average:,.0f} B; a page of {args.page_size:,} is "
              f"{body / 1e6:.2f} MB of JSON ({wire / 1e6:.2f} MB gzipped on the wire)")
        print("mock NVD in its own process; client and mock rate limits off; "
              f"{args.repeat} run(s) per contender, each in a fresh interpreter")
        database = ("existing (schema created by another process)" if args.premigrated
                    else "new (nvdsync creates its schema before the clock starts)")
        print(f"nvdsync database: {database}")
        print(f"before: {load()}\n")
        if total != args.records:
            wrong.append(f"the mock serves {total} records, expected {args.records}")
        for repeat in range(args.repeat):
            # Alternate the order so that neither contender always runs first.
            order = names if repeat % 2 == 0 else names[::-1]
            for name in order:
                spec = {"api_url": url, "page_size": args.page_size, "workers": 1,
                        "rate_limit": "off", "batch_size": None,
                        "premigrated": args.premigrated, **contenders[name]}
                result = run_child(launcher, spec, work)
                result["records_per_s"] = result["records"] / result["duration_s"]
                result["records_per_cpu_s"] = result["records"] / result["cpu_s"]
                results[name].append(result)
                print(f"  run {repeat + 1}: {name:<30} {result['duration_s']:6.1f} s, "
                      f"peak {result['peak_mb']:6.1f} MB, growth {result['growth_mb']:5.1f} MB",
                      flush=True)
                if result["records"] != total or result["ids_sha256"] != expected_ids:
                    wrong.append(f"{name} stored {result['records']} records "
                                 f"(ids sha256 {result['ids_sha256'][:12]}), the mock serves "
                                 f"{total} (ids sha256 {expected_ids[:12]})")
        print(f"after:  {load()}")
    figures = {name: median_run(runs) for name, runs in results.items()}
    print_table(figures, args.repeat)
    print_ratios(figures)
    own = figures["nvdsync"]["report"]
    print(f"cross-check, nvdsync's own SyncReport (first run; sampled once per page, baseline "
          f"at sync start): peak_rss_mb {own['peak_rss_mb']}, memory_growth_mb "
          f"{own['memory_growth_mb']}")
    if wrong:
        for problem in wrong:
            print(f"WRONG RESULT: {problem}", file=sys.stderr)
        return 1
    print(f"\nresult check: every run stored all {total:,} records (same id set as the mock)")
    return 0


def print_table(figures: dict[str, dict[str, Any]], repeat: int) -> None:
    label = f"median of {repeat} runs" if repeat > 1 else "1 run each"
    print(f"\n{'(' + label + ')':<30} {'peak':>6} {'growth':>6} {'base':>6} {'start':>6} "
          f"{'sampled':>7} {'maxrss':>6} {'rec/s':>6} {'time':>6} {'cpu':>6} "
          f"{'rec/cpu-s':>9} {'GCs':>4}")
    print(f"{'':<30} {'MB':>6} {'MB':>6} {'MB':>6} {'MB':>6} {'MB':>7} {'MB':>6} {'':>6} "
          f"{'s':>6} {'s':>6}")
    for name, f in figures.items():
        print(f"{name:<30} {f['peak_mb']:6.1f} {f['growth_mb']:6.1f} {f['baseline_mb']:6.1f} "
              f"{f['rss_before_sync_mb']:6.1f} {f['sampled_peak_mb']:7.1f} "
              f"{f['ru_maxrss_mb']:6.1f} {f['records_per_s']:6,.0f} {f['duration_s']:6.2f} "
              f"{f['cpu_s']:6.2f} {f['records_per_cpu_s']:9,.0f} {gcs(f):>4}")
    print("peak = max(sampled RSS, ru_maxrss); growth = peak - base; base = RSS just before "
          "the first\nrequest; start = RSS when the sync was called; MB = MiB; time = wall "
          "time of the sync\ncall; cpu = its user+system CPU; GCs = gc.collect() calls forced "
          "by the design.")


def gcs(f: dict[str, Any]) -> str:
    return f"{f['report'].get('gcs_run', 0) + f['forced_gcs']:.0f}"


def print_ratios(figures: dict[str, dict[str, Any]]) -> None:
    ours, seed = figures["nvdsync"], figures["seed design"]
    growth = ours["growth_mb"] / seed["growth_mb"]
    peak = ours["peak_mb"] / seed["peak_mb"]
    speed = ours["records_per_s"] / seed["records_per_s"]
    cpu = ours["records_per_cpu_s"] / seed["records_per_cpu_s"]
    print("\nnvdsync / seed design:")
    print(f"  growth         {growth:5.2f}x  ({check(growth <= 0.3, '<= 0.3x')})")
    print(f"  peak           {peak:5.2f}x  ({check(peak <= 0.75, '<= 0.75x')})")
    print(f"  records/s      {speed:5.2f}x  ({check(speed >= 3, '>= 3x')})")
    print(f"  records/cpu-s  {cpu:5.2f}x  (no target; the load-independent view of records/s)")
    variants = [name for name in figures if name not in ("nvdsync", "seed design")]
    if variants:
        print("variants (the default batch size is 50, so --batch-size 50 is a rerun):")
    for name in variants:
        f = figures[name]
        if name.startswith("seed"):
            print(f"  {name:<30} records/s {f['records_per_s'] / seed['records_per_s']:.2f}x "
                  f"the seed design, peak {f['peak_mb'] / seed['peak_mb']:.2f}x; "
                  f"nvdsync / this: records/s "
                  f"{ours['records_per_s'] / f['records_per_s']:.2f}x, "
                  f"peak {ours['peak_mb'] / f['peak_mb']:.2f}x")
            continue
        print(f"  {name:<30} records/s {f['records_per_s'] / ours['records_per_s']:.2f}x "
              "nvdsync, "
              f"records/cpu-s {f['records_per_cpu_s'] / ours['records_per_cpu_s']:.2f}x, "
              f"peak {f['peak_mb'] / ours['peak_mb']:.2f}x, "
              f"growth {f['growth_mb'] / ours['growth_mb']:.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
