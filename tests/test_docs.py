"""docs/cli.md is generated from the CLI itself; this test fails when it drifts.

Regenerate with ``NVDSYNC_UPDATE_DOCS=1 pytest tests/test_docs.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer.main

from nvdsync.cli import app

DOC = Path(__file__).parent.parent / "docs" / "cli.md"
README = Path(__file__).parent.parent / "README.md"


def _commands() -> list[tuple[str, Any]]:
    root: Any = typer.main.get_command(app)
    found: list[tuple[str, Any]] = [("nvdsync", root)]
    for name, command in sorted(root.commands.items()):
        if hasattr(command, "commands"):  # a group, e.g. `config`
            for sub, inner in sorted(command.commands.items()):
                found.append((f"nvdsync {name} {sub}", inner))
        else:
            found.append((f"nvdsync {name}", command))
    return found


def render() -> str:
    lines = ["# CLI reference", "", "Generated from the commands themselves by "
             "`tests/test_docs.py`; do not edit by hand.", ""]
    for name, command in _commands():
        lines += [f"## `{name}`", "", (command.help or "").strip().split("\n")[0], ""]
        params = [p for p in command.params if p.name != "help"]
        if not params:
            continue
        lines += ["| option | help |", "|---|---|"]
        for param in params:
            names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
            text = getattr(param, "help", None) or ""
            lines.append(f"| {names} | {text.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)


def test_cli_reference_is_current():
    expected = render()
    if os.environ.get("NVDSYNC_UPDATE_DOCS"):
        DOC.write_text(expected)
    assert DOC.read_text() == expected, "run NVDSYNC_UPDATE_DOCS=1 pytest tests/test_docs.py"


def test_every_command_is_in_the_readme():
    readme = README.read_text()
    for name, _ in _commands()[1:]:
        if name.startswith("nvdsync config"):
            name = "nvdsync config show"
        assert name in readme, f"{name} is not documented in README.md"
