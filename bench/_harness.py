"""Parent-side helpers shared by the benchmarks: the mock, the children, the figures.

The mock NVD runs in its own process (``nvdsync mock-nvd``) so its dataset never
counts, and every measured sync runs in a fresh ``python bench/_child.py`` so import
state and RSS are comparable between contenders. See ``_child.py`` for what exactly
is measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

BENCH_DIR = Path(__file__).resolve().parent
CHILD = BENCH_DIR / "_child.py"
OUT_DIR = BENCH_DIR / "out"  # git-ignored; scratch databases live here, not in /tmp
MB = 1024 * 1024


def child_env(config_dir: str) -> dict[str, str]:
    """The environment for children: no user config, no NVDSYNC_*/NVD_API_KEY overrides."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NVDSYNC_") and k != "NVD_API_KEY"}
    env["XDG_CONFIG_HOME"] = config_dir  # an empty directory: no config.toml is found
    return env


@contextlib.contextmanager
def mock_nvd(args: list[str]) -> Iterator[str]:
    """Run ``nvdsync mock-nvd --port 0 ARGS`` in a child process; yield its URL."""
    from nvdsync.cli_mock import start_mock_process

    proc, url = start_mock_process(args)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A temporary directory for databases and the empty config dir; removed after.

    It lives under ``bench/out/`` (git-ignored) and also turns SIGTERM into SystemExit,
    so that a terminated benchmark still stops its mock and launcher.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=OUT_DIR) as tmp:
        path = Path(tmp)
        (path / "config").mkdir()
        yield path


# The launcher: a bare interpreter that starts the measured children for us. Needed
# because Linux's ru_maxrss survives fork+exec: at exec the kernel folds the high-water
# mark of the old (forked) address space, i.e. the parent's RSS, into the new process's
# ru_maxrss. Children of this bench process (which holds the generated dataset) would
# all report its ~100 MB as their peak; children of a ~10 MB launcher inherit ~10 MB,
# below any real peak. ``_child.py`` also reads VmHWM (which exec does reset) to check.
_LAUNCHER = """
import json, signal, subprocess, sys
current = None
def stop(*_):
    if current is not None:
        current.kill()
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
for line in sys.stdin:
    job = json.loads(line)
    current = subprocess.Popen(job["argv"], env=job["env"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    out, err = current.communicate()
    rc, current = current.returncode, None
    print(json.dumps({"rc": rc, "stdout": out, "stderr": err}), flush=True)
"""


class Launcher:
    """Start this first, while the bench process is still small; then ``run``."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _LAUNCHER],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def run(self, argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"argv": argv, "env": env}) + "\n")
        self._proc.stdin.flush()
        answer = json.loads(self._proc.stdout.readline())
        return int(answer["rc"]), str(answer["stdout"]), str(answer["stderr"])

    def close(self) -> None:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # aborted while a child runs: it kills the child
            self._proc.terminate()
            self._proc.wait()
        self._proc.stdout.close()

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def run_child(launcher: Launcher, spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run one measured sync in a fresh interpreter; return its result dict."""
    db = work / f"run-{next_run_number()}.sqlite"
    spec = {**spec, "db": str(db)}
    env = child_env(str(work / "config"))
    if spec.get("premigrated") and spec["contender"] == "nvdsync":
        # Create nvdsync's schema in another process first.
        code = "import sys; from nvdsync.store import open_store; open_store(sys.argv[1]).close()"
        rc, _, stderr = launcher.run([sys.executable, "-c", code, str(db)], env)
        if rc != 0:
            sys.stderr.write(stderr)
            raise SystemExit(f"could not create the schema in {db}")
    rc, stdout, stderr = launcher.run([sys.executable, str(CHILD), json.dumps(spec)], env)
    if rc != 0 or not stdout.strip():
        sys.stderr.write(stderr)
        raise SystemExit(f"benchmark child failed ({spec['contender']}): exit {rc}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    if result["ru_maxrss_mb"] > result["vm_hwm_mb"] + 1:
        print(f"warning: ru_maxrss {result['ru_maxrss_mb']:.1f} MB > VmHWM "
              f"{result['vm_hwm_mb']:.1f} MB: an inherited high-water mark?", file=sys.stderr)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return result


_runs = 0


def next_run_number() -> int:
    global _runs
    _runs += 1
    return _runs


def dataset_stats(records: int, seed: int) -> tuple[float, str]:
    """(average record size in bytes, sha256 of the sorted ids) of the mock's data."""
    from nvdsync.mock import generate
    from nvdsync.mock.data import KEYS_DECODER

    data = generate(records, seed)
    average = sum(map(len, data)) / len(data)
    ids = sorted(KEYS_DECODER.decode(raw).id for raw in data)
    return average, hashlib.sha256("\n".join(ids).encode()).hexdigest()


def probe_page(url: str, page_size: int) -> tuple[int, int, int]:
    """(totalResults, body bytes, bytes on the wire) of the first page, fetched once."""
    import httpx

    with httpx.Client(timeout=120) as client:
        response = client.get(url, params={"startIndex": 0, "resultsPerPage": page_size})
        response.raise_for_status()
        total = int(response.json()["totalResults"])
        return total, len(response.content), response.num_bytes_downloaded


def median_run(runs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The first run with every numeric top-level figure replaced by the median."""
    runs = list(runs)
    out = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = statistics.median(r[key] for r in runs)
    out["runs"] = len(runs)
    return out


def load() -> str:
    """The 1/5/15-minute load averages and the CPU count, for judging wall times."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def check(ok: bool, target: str) -> str:
    return f"{'meets' if ok else 'MISSES'} target {target}"
