"""Write/read throughput of the store (a script, not a test: no timing is asserted).

    .venv/bin/python bench/bench_store_write.py [DB] [--records N] [--batch B]

Writes N synthetic records (default 20,000: ~4.4 KB of JSON each, 5 CPE matches,
6 references, 1-2 CWEs) in batches of B (default 50), then replaces them all with
newer versions, then exports them with ``iter_raw``. DB defaults to a new SQLite
file in a temporary directory; a PostgreSQL URL works too (use an empty schema).
Prints records/s by wall clock and by this process's CPU time: on a shared machine
the second is the steadier number.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import msgspec

from nvdsync.models import CpeMatch, CveRecord, CvssScore, Reference
from nvdsync.store import open_store

WORDS = [
    "buffer",
    "overflow",
    "remote",
    "attacker",
    "execute",
    "arbitrary",
    "code",
    "crafted",
    "request",
    "via",
    "the",
    "in",
    "of",
    "allows",
    "improper",
    "validation",
    "authenticated",
    "user",
    "component",
]


def synthetic(n: int, rng: random.Random) -> CveRecord:
    cve_id = f"CVE-{2000 + n % 25}-{n:06d}"  # ids spread over 25 years, as NVD's are
    published = f"20{n % 25:02d}-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:15:06.230"
    description = " ".join(rng.choice(WORDS) for _ in range(60))
    vendor = f"vendor{n % 97}"
    cpes = tuple(
        CpeMatch(
            criteria=f"cpe:2.3:a:{vendor}:product{i}:{i}.0:*:*:*:*:*:*:*",
            part="a",
            vendor=vendor,
            product=f"product{i}",
            version=f"{i}.0",
            vulnerable=True,
            match_criteria_id=f"{n:08d}-{i}",
        )
        for i in range(5)
    )
    refs = tuple(
        Reference(f"https://example.com/{cve_id}/{i}/{rng.random()}", "cve@mitre.org", ("Patch",))
        for i in range(6)
    )
    cve = {
        "id": cve_id,
        "published": published,
        "lastModified": published,
        "descriptions": [{"lang": "en", "value": description}],
        "configurations": [{"nodes": [{"cpeMatch": [msgspec.to_builtins(m) for m in cpes]}]}],
        "references": [msgspec.to_builtins(r) for r in refs],
        "evaluatorComment": " ".join(rng.choice(WORDS) for _ in range(220)),
    }
    return CveRecord(
        id=cve_id,
        published=published,
        last_modified=published,
        vuln_status="Analyzed",
        source_identifier="cve@mitre.org",
        description=description,
        cvss_v2=None,
        cvss_v3=CvssScore(
            "3.1", 9.8, "CRITICAL", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "nvd@nist.gov"
        ),
        cvss_v4=None,
        cwes=("CWE-79",) if n % 2 else ("CWE-79", "CWE-20"),
        kev=None,
        cpe_matches=cpes,
        references=refs,
        raw=json.dumps(cve, separators=(",", ":")).encode(),
    )


def timed(label: str, count: int, start: tuple[float, float]) -> None:
    wall = time.perf_counter() - start[0]
    cpu = time.process_time() - start[1]
    print(
        f"{label:8s} {count:>7,} records  {count / wall:>8,.0f}/s wall  {count / cpu:>8,.0f}/s cpu"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", nargs="?")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    if args.db:
        run(args.db, args.records, args.batch)
    else:
        with tempfile.TemporaryDirectory(prefix="nvdsync-bench-") as tmp:
            run(str(Path(tmp) / "bench.db"), args.records, args.batch)


def run(db: str, count: int, batch_size: int) -> None:
    rng = random.Random(1)
    records = [synthetic(n, rng) for n in range(count)]
    newer = [msgspec.structs.replace(r, last_modified="2030-01-01T00:00:00.000") for r in records]
    size = sum(len(r.raw) for r in records) // len(records)
    print(f"{db}: {len(records):,} records of ~{size:,} bytes, batches of {batch_size}")

    with open_store(db) as store:
        for label, batch in (("insert", records), ("replace", newer)):
            start = (time.perf_counter(), time.process_time())
            for i in range(0, len(batch), batch_size):
                store.write_batch(batch[i : i + batch_size])
            timed(label, len(batch), start)
        start = (time.perf_counter(), time.process_time())
        exported = sum(1 for _ in store.iter_raw())
        timed("iter_raw", exported, start)


if __name__ == "__main__":
    main()
