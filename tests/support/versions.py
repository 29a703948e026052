"""The project's package as an earlier commit had it, for tests that upgrade a stack."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

from tests.support.engine import REPO


def package_at(commit: str, destination: Path) -> Path:
    """The package `components` as it was at `commit`, importable from `destination` (put it
    on PYTHONPATH: the program and the provider plugin then import that version)."""
    archive = subprocess.run(["git", "archive", "--format=tar", commit, "components", "sql"],
                             cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    # Installed, sql/ is the package components.sql (pyproject's package-dir).
    shutil.move(destination / "sql", destination / "components" / "sql")
    return destination
