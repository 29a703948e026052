"""The project's package as an earlier commit had it, for tests that upgrade a stack."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.engine import REPO, PulumiStack


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


@contextmanager
def deployed_by(commit: str, stack: PulumiStack, destination: Path,
                env: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the stack's commands inside with the code of `commit`: its package (program and
    provider plugin), and a Pulumi.yaml that declares only the settings that code knows (a
    newer setting's default would reach it as an unknown key). The key set is the commit's;
    each key's declaration stays today's (older files marked keys secret in ways the test
    stacks' config no longer matches). Both are restored on leaving."""
    known = yaml.safe_load(subprocess.run(
        ["git", "show", f"{commit}:Pulumi.yaml"], cwd=REPO, capture_output=True, text=True,
        check=True).stdout)["config"]
    stack.write_config()  # prepares the project directory
    project_file = stack.project_dir / "Pulumi.yaml"
    current = project_file.read_text()
    project = yaml.safe_load(current)
    project["config"] = {k: v for k, v in project["config"].items() if k in known}
    with env.context() as patched:
        patched.setenv("PYTHONPATH", str(package_at(commit, destination)))
        project_file.write_text(yaml.safe_dump(project, sort_keys=False))
        try:
            yield
        finally:
            project_file.write_text(current)
