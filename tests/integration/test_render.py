"""`render` applied with psql gives the same catalog objects as a deployment."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from components.connection import connect
from components.introspect import catalog_snapshot
from components.model import build_model
from components.stackfile import load_stack_settings
from tests.conftest import TestDatabase, project_roles_for
from tests.support.engine import REPO
from tests.support.supabase import emulate_supabase
from tests.support.testbed import create_database, drop_database


def snapshot(dsn: str) -> dict[str, str]:
    with connect(dsn) as conn, conn.cursor() as cur:
        return catalog_snapshot(cur)


def _renamed(key: str, text: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        text = text.replace(old, new)
    # An ACL's items are sorted by name, which the renaming changed.
    return " ".join(sorted(text.split(" "))) if key.startswith("acl:") else text


def render(stack: str) -> str:
    done = subprocess.run([sys.executable, "-m", "components", "render", "--stack", stack],
                          cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_render_applied_with_psql_equals_a_deployment(stack: str, make_stack,
                                                      database: TestDatabase) -> None:
    psql = shutil.which("psql")
    assert psql, "psql is installed by scripts/setup-postgres.sh"
    other = create_database(database.server, "render")
    try:
        rendered_dsn = database.server.dsn_for(other)
        if stack == "prod":  # a Supabase project: its roles, auth.uid(), schema extensions
            for dsn in (database.dsn, rendered_dsn):
                emulate_supabase(dsn)
        target = {"prod": "supabase"}.get(stack, "postgres")
        make_stack(stack, target=target).up().raise_for_error()
        subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", rendered_dsn],
                       input=render(stack), text=True, check=True, capture_output=True)
        # The deployment used the test's own roles; the rendered script the stack file's.
        renames = {name: f"mem0_{key.removesuffix('Role').lower()}"
                   for key, name in project_roles_for(database).items()
                   if key.endswith("Role")}
        deployed = {key: _renamed(key, value, renames)
                    for key, value in snapshot(database.dsn).items()}
        rendered = snapshot(rendered_dsn)
        assert rendered == deployed
        declared = build_model(load_stack_settings(stack, REPO))
        for spec in declared:
            if spec.kind in ("table", "index", "trigger"):
                assert f"{spec.kind}:{spec.schema}.{spec.name}" in deployed, spec.key
        functions = [key for key in deployed if key.startswith("function:")]
        assert len(functions) == len([s for s in declared if s.kind == "function"])
        assert "mem0_app=arwd/" in deployed["acl:public.memories"]
        if stack == "prod":  # what Supabase's default privileges handed out is taken back
            assert "anon=" not in deployed["acl:public.memories"]
            assert "authenticated=arwd/" in deployed["acl:public.memories"]
    finally:
        drop_database(database.server, other)


def test_render_fails_clearly_on_bad_settings(tmp_path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: mem0infra\nruntime: python\n")
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  mem0infra:dimensions: 99999\n")
    done = subprocess.run([sys.executable, "-m", "components", "render", "--stack", "bad",
                           "--project-dir", str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert "dimensions: 99999 is not allowed; allowed: an integer from 1 to 16000" in done.stderr


@pytest.mark.parametrize("profile", ["python", "typescript"])
def test_render_of_each_client_profile_applies_to_an_empty_database(
        profile: str, database: TestDatabase, tmp_path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.app.yaml").write_text(
        f"config:\n  mem0infra:target: embedded\n  mem0infra:clientProfile: {profile}\n"
        f"  mem0infra:appRole: app_{database.name}\n  mem0infra:ftsLanguage: english\n")
    script = subprocess.run(
        [sys.executable, "-m", "components", "render", "--stack", "app", "--project-dir",
         str(tmp_path)], cwd=REPO, capture_output=True, text=True, check=True).stdout
    psql = shutil.which("psql")
    assert psql
    subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database.dsn],
                   input=script, text=True, check=True, capture_output=True)
    # twice: the role block must cope with a role another database already created
    other = create_database(database.server, "again")
    try:
        subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                        database.server.dsn_for(other)],
                       input=script, text=True, check=True, capture_output=True)
    finally:
        drop_database(database.server, other)
    declared = build_model(load_stack_settings("app", tmp_path))
    applied = snapshot(database.dsn)
    for spec in declared:
        if spec.kind in ("table", "index", "trigger"):
            assert applied[f"{spec.kind}:{spec.schema}.{spec.name}"] == spec.ddl
    search = "match_vectors" if profile == "typescript" else "match_memories"
    assert any(key.startswith(f"function:public.{search}(") for key in applied)


def test_render_json_carries_each_objects_statement_and_the_same_script() -> None:
    done = subprocess.run([sys.executable, "-m", "components", "render", "--stack", "prod",
                           "--json"], cwd=REPO, capture_output=True, text=True, check=True)
    rendered = json.loads(done.stdout)
    script = render("prod")
    assert rendered["script"] == script
    assert rendered["stack"] == "prod"
    keys = [o["key"] for o in rendered["objects"]]
    assert len(keys) == len(set(keys)) and "table:public.memories" in keys
    # Each object's statement is the script's, in the script's order.
    positions = [script.index(o["sql"]) for o in rendered["objects"]]
    assert positions == sorted(positions)
    memories = next(o for o in rendered["objects"] if o["key"] == "table:public.memories")
    assert memories["data_bearing"] and memories["sql"].startswith("CREATE TABLE")
