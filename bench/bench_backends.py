"""SQLite vs PostgreSQL on the same data: full-sync speed and memory, search latency.

    .venv/bin/python bench/bench_backends.py [--records 20000] [--rounds 3]
        [--search-records 100000] [--part sync|search|all]
        [--pg postgresql://postgres@127.0.0.1:5432/test]

**sync**: one mock NVD process serves ``--records`` generated records (rate limits
off); each round runs ``nvdsync sync --full`` once into a new SQLite file and once
into a new PostgreSQL schema (alternating which goes first), each in a fresh child
interpreter measured like ``bench_memory.py`` (``_child.Probe``: sampled RSS and
``ru_maxrss``). Prints the medians and the PostgreSQL/SQLite ratios.

**search**: fills a mirror on each back end with ``--search-records`` generated
records (written batch by batch, not timed), then times a set of typical queries
through ``nvdsync.search`` (``count`` and the first page of ``search``), each
repeated, and prints the median latency per query with the PG/SQLite ratio.

Nothing is asserted; the figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _harness import Launcher, child_env, load, mock_nvd, workdir  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/test"


# --- child side: one measured sync ---------------------------------------------------
def child(spec: dict[str, Any]) -> None:
    import msgspec

    import _child
    import nvdsync.memory
    import nvdsync.pipeline
    import nvdsync.source.nvd
    import nvdsync.store.migrate  # noqa: F401  (imported before measuring, as _child does)
    from nvdsync.config import load_settings
    from nvdsync.store import open_store
    from nvdsync.sync import sync

    probe = _child.Probe(0.002)
    _child.hook_httpx(probe)
    settings = load_settings(db=spec["db"], api_url=spec["api_url"], rate_limit="off",
                             page_size=2000)
    open_store(spec["db"]).close()  # the schema exists before the clock starts
    probe.start()
    cpu, started = _child.cpu_seconds(), time.perf_counter()
    report = sync(settings, full=True)
    duration, cpu = time.perf_counter() - started, _child.cpu_seconds() - cpu
    probe.stop()
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open_store(spec["db"]) as store:
        count = store.count()
    assert probe.baseline is not None
    peak = max(probe.peak, maxrss)
    print(json.dumps({"records": count, "duration_s": duration, "cpu_s": cpu,
                      "peak_mb": peak / _child.MB,
                      "growth_mb": (peak - probe.baseline) / _child.MB,
                      "written": msgspec.to_builtins(report)["records_written"]}))


# --- parent side -----------------------------------------------------------------------
def new_pg_schema(pg: str, tag: str) -> tuple[str, str]:
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    name = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    url = make_url(pg).update_query_dict({"options": f"-csearch_path={name}"})
    return name, url.render_as_string(hide_password=False)


def drop_pg_schema(pg: str, name: str) -> None:
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def ratio_row(label: str, sqlite: float, pg: float, unit: str) -> str:
    return f"  {label:24s} {sqlite:>12,.1f} {pg:>12,.1f}  {unit:6s} PG/SQLite {pg / sqlite:.2f}x"


def bench_sync(args: argparse.Namespace, launcher: Launcher) -> None:
    results: dict[str, list[dict[str, Any]]] = {"sqlite": [], "postgresql": []}
    mock_args = ["--records", str(args.records), "--seed", "3",
                 "--rate-limit", "off", "--keyed-rate-limit", "off"]
    with workdir() as work, mock_nvd(mock_args) as url:
        env = child_env(str(work / "config"))
        for n in range(args.rounds):
            order = ["sqlite", "postgresql"] if n % 2 == 0 else ["postgresql", "sqlite"]
            for backend in order:
                schema = None
                if backend == "sqlite":
                    db = str(work / f"sync-{n}.sqlite")
                else:
                    schema, db = new_pg_schema(args.pg, "sync")
                try:
                    spec = {"db": db, "api_url": url}
                    rc, out, err = launcher.run(
                        [sys.executable, str(Path(__file__)), "--child", json.dumps(spec)], env)
                    if rc != 0:
                        sys.stderr.write(err)
                        raise SystemExit(f"{backend} sync failed: exit {rc}")
                    result = json.loads(out.strip().splitlines()[-1])
                    if result["records"] != args.records:
                        raise SystemExit(f"{backend} stored {result['records']} records")
                    results[backend].append(result)
                finally:
                    if schema is not None:
                        drop_pg_schema(args.pg, schema)
    med = {b: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for b, rs in results.items()}
    s, p = med["sqlite"], med["postgresql"]
    print(f"\nfull sync of {args.records:,} generated records, pages of 2000, batches of 50, "
          f"median of {args.rounds} ({load()})")
    print(f"  {'':24s} {'SQLite':>12s} {'PostgreSQL':>12s}")
    print(ratio_row("records/s (wall)", args.records / s["duration_s"],
                    args.records / p["duration_s"], "rec/s"))
    print(ratio_row("records/CPU-s (client)", args.records / s["cpu_s"],
                    args.records / p["cpu_s"], "rec/s"))
    print(ratio_row("peak RSS", s["peak_mb"], p["peak_mb"], "MB"))
    print(ratio_row("growth over baseline", s["growth_mb"], p["growth_mb"], "MB"))


QUERIES: dict[str, dict[str, Any]] = {
    "cve id": {"cve_id": "CVE-2003-10058"},  # in the generated data (seed 1000)
    "keyword (1 word)": {"keyword": "overflow"},
    "keyword (2 words)": {"keyword": "remote attacker"},
    "cpe with version": {"cpe": "cpe:2.3:o:hp:hp-ux:9.7:*:*:*:*:*:*:*"},
    "cpe any version": {"cpe": "cpe:2.3:a:google:tensorflow:*:*:*:*:*:*:*:*"},
    "severity CRITICAL": {"severity": "CRITICAL"},
    "cwe": {"cwe": "CWE-79"},
    "kev": {"kev": True},
    "published 30 days": {"published_since": "2024-01-01", "published_until": "2024-01-31"},
    "min score + keyword": {"min_score": 9.0, "keyword": "code"},
}


def fill(db: str, raws: list[bytes]) -> None:
    from nvdsync.models import CveRecord
    from nvdsync.normalize import normalize
    from nvdsync.store import open_store

    with open_store(db) as store:
        for start in range(0, len(raws), 500):
            batch = [r for r in map(normalize, raws[start:start + 500])
                     if isinstance(r, CveRecord)]
            store.write_batch(batch)
        if store.engine.dialect.name == "postgresql":
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum would, eventually
        print(f"  filled {db.split('?')[0]}: {store.count():,} records", flush=True)


def time_queries(db: str, repeat: int) -> dict[str, tuple[float, float, int]]:
    """Per query: (median ms for count, median ms for the first page of 20, total)."""
    from nvdsync.search import SearchQuery, count, search
    from nvdsync.store import open_store

    out = {}
    with open_store(db) as store:
        for name, fields in QUERIES.items():
            query = SearchQuery(limit=20, **fields)
            counts, pages = [], []
            total = count(store, query)  # warm-up, and the figure to compare
            for _ in range(repeat):
                t = time.perf_counter()
                count(store, query)
                counts.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                search(store, query)
                pages.append((time.perf_counter() - t) * 1000)
            out[name] = (statistics.median(counts), statistics.median(pages), total)
    return out


def bench_search(args: argparse.Namespace) -> None:
    with workdir() as work:
        sqlite_db = str(work / "search.sqlite")
        schema, pg_db = new_pg_schema(args.pg, "search")
        try:
            print(f"\nsearch over {args.search_records:,} generated records")
            from nvdsync.mock import generate

            raws = generate(args.search_records, seed=1000)  # ids are unique per call
            fill(sqlite_db, raws)
            fill(pg_db, raws)
            del raws
            s = time_queries(sqlite_db, args.repeat)
            p = time_queries(pg_db, args.repeat)
        finally:
            drop_pg_schema(args.pg, schema)
    print(f"median of {args.repeat} ({load()}); ms, count() | first page of 20")
    print(f"  {'query':22s} {'matches':>8s} {'SQLite':>16s} {'PostgreSQL':>16s} "
          f"{'PG/SQLite':>14s}")
    for name in QUERIES:
        (sc, sp, total), (pc, pp, ptotal) = s[name], p[name]
        same = "" if total == ptotal else f"  (PG found {ptotal})"
        print(f"  {name:22s} {total:>8,} {sc:>7.1f} | {sp:>6.1f} {pc:>7.1f} | {pp:>6.1f} "
              f"{pc / sc:>6.2f}x|{pp / sp:.2f}x{same}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--search-records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--part", choices=["sync", "search", "all"], default="all")
    parser.add_argument("--pg", default=PG)
    args = parser.parse_args()
    if args.part in ("sync", "all"):
        with Launcher() as launcher:  # first, while this process is small
            bench_sync(args, launcher)
    if args.part in ("search", "all"):
        bench_search(args)


if __name__ == "__main__":
    main()
