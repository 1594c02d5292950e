"""The public surface: __all__ is complete, sorted, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import nvdsync


def test_all_is_sorted_and_resolves():
    assert nvdsync.__all__ == sorted(nvdsync.__all__)
    for name in nvdsync.__all__:
        assert getattr(nvdsync, name) is not None


def test_every_error_is_exported():
    from nvdsync import errors

    assert set(errors.__all__) <= set(nvdsync.__all__)
    assert all(issubclass(getattr(errors, n), errors.NvdSyncError) for n in errors.__all__)


def test_import_is_cheap():
    """`import nvdsync` must not drag in the HTTP, database or CLI stacks."""
    code = ("import sys, nvdsync; heavy = {'httpx', 'sqlalchemy', 'alembic', 'typer', "
            "'rich', 'pydantic'}; print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
