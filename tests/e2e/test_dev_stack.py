"""The README's main job, as a newcomer runs it: `bash scripts/up.sh --yes` on the dev stack.

In a copy of the repository's tracked files (up.sh makes its `.venv`), with no `pulumi`
on PATH (up.sh finds the CLI scripts/install-pulumi.sh built) and no
Pulumi login (state goes to `.pulumi-state/`), on the embedded server that the stack
starts itself.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.engine import REPO, pulumi_bin, tracked_copy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Path]:
    # A venv of its own, made by up.sh as on a fresh clone (pip's cache makes it quick):
    # a shared one would get the project reinstalled, editable, from this copy.
    root = tracked_copy(tmp_path / "mem0infra")
    try:
        yield root
    finally:
        python = root / ".venv/bin/python"
        if python.exists():  # never leave a server behind, whatever failed
            subprocess.run([str(python), "-m", "components", "dev", "stop"],
                           cwd=root, capture_output=True, check=False)


def newcomer_env(tmp_path: Path) -> dict[str, str]:
    """A shell with no pulumi on PATH and no Pulumi login."""
    pulumi_bin()  # built once for the session, so up.sh finds the cache
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if not (Path(p) / "pulumi").exists()]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PULUMI_")}
    env.update(PATH=os.pathsep.join(path), PULUMI_HOME=str(tmp_path / "pulumi-home"))
    return env


def run(root: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=root, env=env, capture_output=True, text=True,
                          timeout=900, check=False, stdin=subprocess.DEVNULL)


def test_up_sh_deploys_the_dev_stack_and_a_second_run_changes_nothing(
        checkout: Path, tmp_path: Path) -> None:
    env = newcomer_env(tmp_path)
    first = run(checkout, env, "bash", "scripts/up.sh", "--yes")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    outputs = first.stdout.split("Outputs of the dev stack")[-1]
    assert "Current stack outputs" in outputs and "mem0Config" in outputs, first.stdout[-3000:]
    assert "created" in first.stdout
    assert (checkout / ".pulumi-state").is_dir()
    # the committed stack file already has the salt: a newcomer's tree stays clean
    assert (checkout / "Pulumi.dev.yaml").read_text() == (REPO / "Pulumi.dev.yaml").read_text()

    second = run(checkout, env, "bash", "scripts/up.sh", "--yes")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    summary = second.stdout.split("Resources:")[-1]
    assert "unchanged" in summary
    assert not any(word in summary for word in ("created", "updated", "deleted", "replaced"))

    where = run(tmp_path, env, str(checkout / ".venv/bin/python"), "-c",
                "import components; print(components.__file__)")
    assert where.stdout.strip() == str(checkout / "components" / "__init__.py")

    status = run(checkout, env, ".venv/bin/python", "-m", "components", "dev", "status",
                 "--json")
    state = json.loads(status.stdout)
    assert state["running"] is True
    assert state["dataDir"] == str((checkout / ".pgdata" / "dev").resolve())

    # The main job's output feeds mem0 as the app role.
    pulumi = [str(pulumi_bin() / "pulumi")]
    env_cli = {**env, "PULUMI_BACKEND_URL": (checkout / ".pulumi-state").as_uri(),
               "PULUMI_CONFIG_PASSPHRASE": "", "PATH": f"{pulumi_bin()}:{env['PATH']}"}
    shown = run(checkout, env_cli, *pulumi, "stack", "output", "mem0Config",
                "--show-secrets", "--json", "--stack", "dev")
    assert shown.returncode == 0, shown.stderr
    uri = json.loads(shown.stdout)["vector_store"]["config"]["connection_string"]
    with psycopg.connect(uri) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("mem0_app",)
        conn.execute("INSERT INTO public.memories VALUES (gen_random_uuid(), NULL, '{}')")
        conn.execute("DELETE FROM public.memories")

    # destroy: the history the insert left is data, so it is refused until allowed
    refused = run(checkout, env_cli, *pulumi, "destroy", "--yes", "--stack", "dev",
                  "--non-interactive")
    assert refused.returncode != 0
    assert "refusing to drop table public.memory_history" in refused.stdout
    allowed = run(checkout, env_cli, *pulumi, "destroy", "--yes", "--stack", "dev",
                  "--non-interactive", "--run-program", "--config", "allowDataLoss=true")
    assert allowed.returncode == 0, allowed.stdout[-3000:] + allowed.stderr[-3000:]
    assert (checkout / ".pgdata" / "dev" / "PG_VERSION").exists(), "destroy keeps the data"
    assert not (checkout / ".pgdata" / "dev" / "postmaster.pid").exists(), \
        "destroy stops the server"
