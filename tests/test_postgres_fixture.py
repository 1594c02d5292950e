"""PostgreSQL tests skip with a reason when no server answers, and fail under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
# Port 1 on loopback: nothing listens there, so the connection is refused at once.
NOWHERE = "postgresql://postgres@127.0.0.1:1/test"


def run_pg_test(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["NVDSYNC_TEST_PG_URL"] = NOWHERE
    if ci is not None:
        env["CI"] = ci
    target = "store/test_store_writer_lock.py::test_wait_timeout_raises_with_how_long_it_waited"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         f"{TESTS / target}[postgresql]"],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ci", [None, "false"])
def test_without_a_server_outside_ci_the_test_is_skipped_with_the_reason(ci):
    result = run_pg_test(ci)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert f"PostgreSQL at {NOWHERE}" in result.stdout and "not reachable" in result.stdout


def test_without_a_server_in_ci_the_test_fails():
    result = run_pg_test("true")
    assert result.returncode != 0
    assert "CI must run the PostgreSQL tests" in result.stdout
