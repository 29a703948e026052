"""The package as a wheel: every module and the SQL templates, without the editable install.

The dynamic providers are pickled by reference, so the plugin imports `components.*` from
wherever the package is installed: a module missing from the wheel breaks refresh and
destroy only on a machine that installed the wheel, never in a checkout.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from tests.support.engine import REPO, tracked_copy


def modules_in_tree() -> list[str]:
    found = []
    for path in sorted((REPO / "components").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] != "__main__":  # importing it runs the command line
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_a_built_wheel_imports_every_module_in_a_clean_venv(tmp_path: Path) -> None:
    # From the tracked files alone: an in-tree build/ left by an earlier build would hide
    # a package the configuration leaves out.
    source = tracked_copy(tmp_path / "source")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(wheels), str(source)], check=True, cwd=tmp_path)
    [wheel] = wheels.glob("mem0infra-*.whl")
    clean = tmp_path / "clean"
    venv.create(clean, with_pip=False)
    site = Path(subprocess.run(
        [str(clean / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), str(wheel)], check=True)
    # The dependencies come from the project's venv, by path: not its editable install,
    # whose finder is a .pth file that a path added this way does not run.
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    modules = modules_in_tree()
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(site)!r}), (name, module.__file__)\n"
        "import components.sql, importlib.resources as r\n"
        "print(len([f for f in r.files('components.sql').iterdir() if f.name.endswith('.sql')]))\n"
    )
    done = subprocess.run([str(clean / "bin/python"), "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    templates = len(list((REPO / "sql").glob("*.sql")))
    assert int(done.stdout.strip()) == templates > 0
