"""What only the real engine does, through the `pulumi` CLI on the test cluster.

Each test is a stack in its own project directory with a local file backend
(tests/support/engine.py), deploying into the test's own database with target postgres.
The commands and flags are the ones a platform team runs: `preview --diff` in a pull
request, `up`, `refresh --preview-only --expect-no-changes` in a drift job, `destroy`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import APP_PASSWORD, TestDatabase, app_role_for, stack_config
from tests.support.engine import PulumiStack, read_state_file
from tests.support.testbed import PgServer, create_database, drop_database

pytestmark = pytest.mark.e2e

DIMS = 8
# `pulumi refresh --expect-no-changes` exits with 7 when it finds changes (CLI >= 3.227).
EXIT_CHANGES = 7


def count_resources(output: str, what: str) -> int:
    """The `N to create` (or `N created`, ...) figure of a summary."""
    match = re.search(rf"^\s*[+~-]?\s*(\d+) {what}$", output, re.M)
    assert match, f"no '{what}' in:\n{output[-3000:]}"
    return int(match.group(1))


def test_preview_diff_shows_the_sql_and_a_changed_m_touches_only_the_vector_indexes(
        make_stack, database: TestDatabase) -> None:
    stack = make_stack(dimensions=DIMS)
    stack.write_config()
    first = stack.cli("preview", "--diff", "--stack", "dev", "--non-interactive")
    created = count_resources(first.stdout, "to create")
    assert "+ pulumi-python:dynamic/mem0:SqlObject: (create)" in first.stdout
    assert "CREATE TABLE public.memories (" in first.stdout
    assert "CREATE POLICY" in first.stdout and "GRANT" in first.stdout
    assert database.scalar("SELECT to_regclass('public.memories')") is None
    up = stack.up().raise_for_error()
    assert count_resources(up.output, "created") == created
    assert set(up.ops().values()) == {"create"}

    changed = make_stack(dimensions=DIMS, vectorIndexM=32)
    changed.write_config()
    diff = changed.cli("preview", "--diff", "--stack", "dev", "--non-interactive").stdout
    # the two vector indexes, and the two check runs that follow every schema change
    assert count_resources(diff, "to update") == 4, diff
    assert "to create" not in diff and "to delete" not in diff and "to replace" not in diff
    ids = sorted(re.findall(r": \(update\)\n\s+\[id=([^\]]+)\]", diff))
    assert ids[:2] == ["index:public.memories_entities_vector_idx",
                       "index:public.memories_vector_idx"], diff
    assert [i.split("-")[0] for i in ids[2:]] == ["preflight", "validate"], diff
    # the ddl as a line diff: the head and USING lines as context, the WITH line changed
    for index, table in (("memories_vector_idx", "memories"),
                         ("memories_entities_vector_idx", "memories_entities")):
        assert re.search(
            rf"CREATE INDEX {index} ON public\.{table} *\n"
            r"\s*USING hnsw \(vector public\.vector_cosine_ops\) *\n"
            r"\s*-\s+WITH \(m='16', ef_construction='64'\); *\n"
            r"\s*\+\s+WITH \(m='32', ef_construction='64'\); *\n", diff), diff
    assert "m='16'" in str(database.scalar(
        "SELECT pg_get_indexdef('public.memories_vector_idx'::regclass)"))


def test_drift_fails_the_drift_job_naming_each_object_and_one_up_heals_it(
        make_stack, database: TestDatabase) -> None:
    stack = make_stack(dimensions=DIMS)
    stack.up().raise_for_error()
    drift_job = ("refresh", "--preview-only", "--expect-no-changes", "--stack", "dev",
                 "--non-interactive")
    assert stack.cli(*drift_job, check=False).returncode == 0
    app = app_role_for(database)
    with database.connect() as conn:
        conn.execute("DROP INDEX public.memories_user_id_idx")
        conn.execute("ALTER POLICY memories_select_app ON public.memories USING (false)")
        conn.execute(f"REVOKE DELETE ON public.memories FROM {app}")
    found = stack.cli(*drift_job, check=False)
    assert found.returncode == EXIT_CHANGES, found.stdout + found.stderr
    assert re.search(r"- .*SqlObject mem0-dev-indexes-public\.memories_user_id_idx delete",
                     found.stdout)
    assert re.search(r"~ .*SqlObject mem0-dev-policies-public\.memories_select_app update",
                     found.stdout)
    assert re.search(rf"~ .*SqlObject mem0-dev-grants-public\.memories-to-{app} update",
                     found.stdout)
    # The drift job wrote nothing: the next `up` reads the catalog again (refresh: always)
    # and heals all three in one run.
    healed = stack.up().raise_for_error()
    assert {op for op in healed.ops().values()} <= {"same", "create", "update"}
    assert database.scalar("SELECT to_regclass('public.memories_user_id_idx')") is not None
    assert database.scalar("SELECT qual FROM pg_policies WHERE policyname = "
                           "'memories_select_app'") != "false"
    assert database.scalar("SELECT has_table_privilege(%s, 'public.memories', 'DELETE')",
                           (app,)) is True
    assert stack.cli(*drift_job, check=False).returncode == 0


def test_mem0_runs_on_the_stack_output_as_the_app_role(
        make_stack, database: TestDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack(dimensions=DIMS)
    stack.up().raise_for_error()
    shown = stack.cli("stack", "output", "mem0Config", "--show-secrets", "--json",
                      "--stack", "dev")
    config = json.loads(shown.stdout)
    # target postgres: the exported URL carries sslMode (auto: require), and mem0's
    # connections (psycopg takes the URL as it is) are encrypted
    assert "sslmode=require" in config["vector_store"]["config"]["connection_string"]
    monkeypatch.setenv("MEM0_TELEMETRY", "False")
    monkeypatch.setenv("MEM0_DIR", str(tmp_path / "mem0"))
    from tests.support import mem0_client

    memory = mem0_client.memory(config["vector_store"], DIMS)
    try:
        added = memory.add("prefers window seats", user_id="alice", infer=False)
        [item] = added["results"]
        found = memory.search("prefers window seats", filters={"user_id": "alice"})
        assert [r["id"] for r in found["results"]][:1] == [item["id"]]
        assert memory.search("prefers window seats", filters={"user_id": "bob"})[
            "results"] == []
        assert memory.get(item["id"])["memory"] == "prefers window seats"
        memory.delete(item["id"])
        assert memory.get(item["id"]) is None
        encrypted = database.scalar(
            "SELECT array_agg(DISTINCT s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a "
            "USING (pid) WHERE a.usename = %s", (app_role_for(database),))
        assert encrypted == [True]
    finally:
        mem0_client.close(memory)
    # the history trigger records who logged in: mem0 connected as the app role
    role = app_role_for(database)
    with database.connect() as conn:
        rows = conn.execute("SELECT operation, login_role FROM public.memory_history "
                            "WHERE memory_id = %s ORDER BY id", (item["id"],)).fetchall()
    assert rows == [("create", role), ("delete", role)]


def test_secrets_never_reach_state_exports_logs_or_outputs(
        make_stack, database: TestDatabase) -> None:
    # The test cluster trusts local connections: any password in the URL gets in.
    db_password = "Db-Secret-4f1c9e"
    url = database.dsn.replace("postgresql://postgres@", f"postgresql://postgres:{db_password}@")
    stack = make_stack(dimensions=DIMS, databaseUrl=url)
    printed = [stack.preview().output, stack.up().raise_for_error().output,
               stack.refresh().output,
               stack.cli("stack", "output", "--json", "--stack", "dev").stdout,
               stack.cli("stack", "--show-urns", "--stack", "dev").stdout]
    stored = [read_state_file(stack), json.dumps(stack.export()),
              stack.stack_file().read_text()]
    assert read_state_file(stack), "the state file is where the test looks"
    for text in printed + stored:
        for secret in (db_password, APP_PASSWORD, url):
            assert secret not in text
    # and yet the secrets are there, encrypted, for those allowed to see them
    shown = stack.cli("stack", "output", "mem0Config", "--show-secrets", "--json",
                      "--stack", "dev").stdout
    assert APP_PASSWORD in shown


@pytest.mark.parametrize(("settings", "plain", "message"), [
    ({"tenancy": "everyone"}, (),
     "tenancy: 'everyone' is not allowed; allowed: user, org, service"),
    ({"dimensions": "many"}, (),
     "Stack 'dev' with configuration key 'dimensions' must be of type 'integer'"),
    ({"appRolePassword": "in-the-clear"}, ("appRolePassword",),
     "appRolePassword: stored in plain text in Pulumi.dev.yaml, but it is a secret"),
    ({"appRolePassword": ""}, (),
     "appRolePassword: not set, but target is 'postgres'"),
])
def test_a_bad_setting_fails_preview_and_up_and_changes_nothing(
        make_stack, database: TestDatabase, settings: dict[str, Any],
        plain: tuple[str, ...], message: str) -> None:
    stack = make_stack(**{"dimensions": DIMS, **settings})
    stack.plain_keys = frozenset(plain)
    for report in (stack.preview(), stack.up()):
        assert report.error and message in report.output, report.output[-3000:]
        assert report.ops("create") == {}
    assert database.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 0
    assert database.scalar("SELECT count(*) FROM pg_roles WHERE rolname = %s",
                           (app_role_for(database),)) == 0


def test_protect_makes_destroy_refuse_and_keeps_every_table(
        make_stack, database: TestDatabase) -> None:
    stack = make_stack(dimensions=DIMS, protect=True)
    stack.up().raise_for_error()
    refused = stack.destroy()
    assert refused.error and "protected" in refused.error
    assert database.scalar("SELECT to_regclass('public.memories') IS NOT NULL") is True
    assert database.scalar("SELECT to_regclass('public.memory_history') IS NOT NULL") is True


def test_two_stacks_deploy_side_by_side_into_two_databases(
        make_stack, database: TestDatabase, pg_server: PgServer, tmp_path: Path) -> None:
    other_name = create_database(pg_server)
    try:
        other = TestDatabase(pg_server, other_name, pg_server.dsn_for(other_name))
        first = make_stack(dimensions=DIMS)
        second = PulumiStack("second", tmp_path / "state-second.json",
                             stack_config(other, dimensions=16, collection="notes"))
        first.up().raise_for_error()
        second.up().raise_for_error()
        for stack in (first, second):
            assert stack.refresh().raise_for_error().drift == []
        assert database.scalar("SELECT to_regclass('public.memories') IS NOT NULL") is True
        assert database.scalar("SELECT to_regclass('public.notes')") is None
        assert other.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                            "WHERE attrelid = 'public.notes'::regclass AND "
                            "attname = 'vector'") == "vector(16)"
        second.destroy().raise_for_error()
        assert other.scalar("SELECT to_regclass('public.notes')") is None
        assert database.scalar("SELECT to_regclass('public.memories') IS NOT NULL") is True
        assert first.refresh().raise_for_error().drift == []
    finally:
        drop_database(pg_server, other_name)
