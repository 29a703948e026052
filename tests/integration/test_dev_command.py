"""`python -m components dev start|status|stop`: the embedded server of a stack, by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
import yaml

from components.cli import main
from tests.support.engine import REPO

pytestmark = pytest.mark.slow


def project(tmp_path: Path) -> Path:
    """The repository's Pulumi.yaml with its dev stack file, data under `tmp_path`."""
    directory = tmp_path / "project"
    directory.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", directory / "Pulumi.yaml")
    document = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    document["config"]["mem0infra:embeddedDataDir"] = "data/dev"  # relative: to the project
    (directory / "Pulumi.dev.yaml").write_text(yaml.safe_dump(document))
    return directory


def state(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["dev", *args, "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_start_status_and_stop_the_embedded_server(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(tmp_path)
    where = ["--project-dir", str(directory)]
    data_dir = directory / "data" / "dev"
    try:
        assert state(capsys, "status", *where)["running"] is False
        started = state(capsys, "start", *where)
        assert started["running"] is True and started["dataDir"] == str(data_dir)
        with psycopg.connect(str(started["uri"])) as conn:
            assert conn.execute("SELECT count(*) FROM pg_available_extensions "
                                "WHERE name = 'vector'").fetchone() == (1,)
        # a second start finds the same server
        assert state(capsys, "start", *where)["uri"] == started["uri"]
        assert state(capsys, "status", *where)["uri"] == started["uri"]
        assert state(capsys, "stop", *where)["running"] is False
        assert state(capsys, "status", *where)["running"] is False
        assert (data_dir / "PG_VERSION").exists(), "stop keeps the data"
    finally:
        main(["dev", "stop", *where])


def test_a_stack_without_an_embedded_server_is_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "status", "--stack", "prod", "--project-dir", str(REPO)]) == 2
    assert "target is 'supabase'; `dev` serves only target 'embedded'" in \
        capsys.readouterr().err
