"""What every benchmark result states: the commit and the machine that produced it."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """Short hash of the checked-out commit ("unknown" outside a git checkout).

    ``BAYES_UNSL_COMMIT`` names it where the tree travels without its git history (a
    copy of the working tree on another machine).
    """
    if os.environ.get("BAYES_UNSL_COMMIT"):
        return os.environ["BAYES_UNSL_COMMIT"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_report(path: Path, lines: list[str], table=None) -> None:
    """Write a Markdown report atomically (a reader never sees half a file) and print it.

    ``table``: a DataFrame appended as a Markdown table.
    """
    if table is not None:
        from bayes_unsl.tables import markdown_table

        lines = [*lines, "", markdown_table(table), ""]
    text = "\n".join(lines)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    print(text)
