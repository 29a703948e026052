"""`python -m components audit` against a real PostgreSQL: each check on a mistake built by
hand beside its clean counterpart, the exit codes, and audits of deployed stacks.

A fresh database lacks every object a stack declares, so the hand-built cases look only at
the generic checks (`generic()` leaves out the declared-object codes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import audit
from components.bench.common import DSN_ENV
from components.cli import main
from components.connection import connect
from components.introspect import catalog_snapshot
from components.stackfile import read_stack_config
from tests.conftest import TestDatabase
from tests.support.supabase import emulate_supabase

REPO = Path(__file__).resolve().parents[2]
DECLARED = ("declared_object_missing", "declared_object_drifted")
ALL_CODES = [
    "rls_disabled_in_public", "rls_not_forced", "policy_exists_rls_disabled",
    "rls_enabled_no_policy", "function_search_path_mutable", "security_definer_view",
    "extension_in_public", "rls_bypass_without_need", "policy_column_unindexed",
    "privileges_to_anon_or_public", "schema_create_for_public", "declared_object_missing",
    "declared_object_drifted", "non_owner_ddl_privilege", "login_without_tls", "snapshot_stale",
    "job_last_run_failed",
]

Finding = dict[str, Any]


# --- helpers ---------------------------------------------------------------------------------


def execute(database: TestDatabase, *statements: str) -> None:
    with database.connect() as conn:
        for statement in statements:
            conn.execute(statement)


def run_audit(capsys: pytest.CaptureFixture[str], dsn: str, stack: str = "dev",
              project_dir: Path = REPO) -> tuple[int, dict[str, Any]]:
    code = main(["audit", "--stack", stack, "--project-dir", str(project_dir), "--dsn", dsn,
                 "--json"])
    out = capsys.readouterr()
    assert code in (0, 1), out.err
    return code, json.loads(out.out)


def generic(document: dict[str, Any]) -> list[Finding]:
    return [f for f in document["findings"] if f["code"] not in DECLARED]


def pairs(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f["code"], f["object"]) for f in findings]


@pytest.fixture
def clean(database: TestDatabase) -> TestDatabase:
    """A fresh database with PostgreSQL 15's schema default on any server version, so only
    the mistake a test builds is reported."""
    execute(database, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    return database


def guarded_table(name: str) -> tuple[str, ...]:
    """A table that passes every generic check: RLS enabled, a policy that reads no column."""
    return (f"CREATE TABLE public.{name} (id bigint PRIMARY KEY, note text)",
            f"ALTER TABLE public.{name} ENABLE ROW LEVEL SECURITY",
            f"CREATE POLICY {name}_all ON public.{name} USING (true) WITH CHECK (true)")


# --- one check at a time, on a fresh database --------------------------------------------------


def test_fresh_database_with_the_generic_checks_only_has_no_findings(
        clean: TestDatabase, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "CHECKS", tuple(
        c for c in audit.CHECKS if not set(c.codes) & set(DECLARED)))
    code = main(["audit", "--stack", "dev", "--project-dir", str(REPO), "--dsn", clean.dsn])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("no findings from 15 checks on ")


def test_json_report_lists_every_check_and_a_summary(
        clean: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    code, document = run_audit(capsys, clean.dsn)
    assert code == 1  # nothing the stack declares exists
    assert document["checked"] == ALL_CODES
    assert generic(document) == []
    summary = document["summary"]
    assert summary["stack"] == "dev" and summary["target"] == "embedded"
    assert summary["findings"] == len(document["findings"]) == summary["errors"]
    assert summary["by_code"] == {"declared_object_missing": summary["findings"]}
    assert "@" not in summary["database"]  # where, never who
    assert all(set(f) == {"code", "level", "object", "message", "fix"}
               for f in document["findings"])
    extension = next(f for f in document["findings"] if f["object"] == "extension:public.vector")
    assert extension == {"code": "declared_object_missing", "level": "error",
                     "object": "extension:public.vector",
                     "message": "stack 'dev' declares extension 'vector', but it does not exist",
                     "fix": audit.PULUMI_UP}


def test_table_without_rls_in_public(clean: TestDatabase,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    execute(clean, "CREATE TABLE public.open_notes (id bigint)", *guarded_table("closed_notes"))
    _, document = run_audit(capsys, clean.dsn)
    [finding] = generic(document)
    assert pairs([finding]) == [("rls_disabled_in_public", "table public.open_notes")]
    assert finding["level"] == "error"
    assert "row-level security is disabled" in finding["message"]
    assert finding["fix"] == "ALTER TABLE public.open_notes ENABLE ROW LEVEL SECURITY;"


def test_policy_on_a_table_with_rls_disabled(clean: TestDatabase,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    execute(clean, *guarded_table("notes"), "ALTER TABLE public.notes DISABLE ROW LEVEL SECURITY",
            *guarded_table("kept_notes"))
    _, document = run_audit(capsys, clean.dsn)
    # Supabase's linter reports both: the table is open, and its policies are dead letters.
    assert pairs(generic(document)) == [("rls_disabled_in_public", "table public.notes"),
                                        ("policy_exists_rls_disabled", "table public.notes")]
    [finding] = [f for f in generic(document) if f["code"] == "policy_exists_rls_disabled"]
    assert "none of them applies" in finding["message"]
    assert finding["fix"] == "ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;"


def test_rls_enabled_without_any_policy(clean: TestDatabase,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    reader = f"reader_{clean.name}"
    execute(clean, f"CREATE ROLE {reader}",
            "CREATE TABLE public.sealed (id bigint)",
            "ALTER TABLE public.sealed ENABLE ROW LEVEL SECURITY",
            f"GRANT SELECT ON public.sealed TO {reader}", *guarded_table("notes"))
    _, document = run_audit(capsys, clean.dsn)
    [finding] = generic(document)
    assert pairs([finding]) == [("rls_enabled_no_policy", "table public.sealed")]
    assert finding["level"] == "warn"
    assert f"it is granted to {reader}, yet only the owner" in finding["message"]
    assert finding["fix"].startswith("CREATE POLICY <name> ON public.sealed ")

    # By design: no role that row-level security binds holds a privilege (the owner alone,
    # like the service role's tables), so it passes, named in the check's detail.
    execute(clean, f"REVOKE ALL ON public.sealed FROM {reader}")
    _, document = run_audit(capsys, clean.dsn)
    assert generic(document) == []
    [result] = [r for r in document["results"] if r["name"] == "rls_enabled_no_policy"]
    assert result["status"] == "pass"
    assert result["detail"].endswith("holds a privilege on them: public.sealed")


def test_declared_table_without_forced_rls(clean: TestDatabase,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # Two tables the dev stack declares, by hand: one forced, one not.
    execute(clean, *guarded_table("memories"), *guarded_table("memory_history"),
            "ALTER TABLE public.memory_history FORCE ROW LEVEL SECURITY",
            *guarded_table("undeclared"))
    _, document = run_audit(capsys, clean.dsn)
    [finding] = generic(document)
    assert pairs([finding]) == [("rls_not_forced", "table public.memories")]
    owner = clean.scalar("SELECT current_user")
    assert f"the table's owner {owner} and every session" in finding["message"]
    assert finding["fix"] == ("run `pulumi up`: the stack declares it (or by hand: "
                              "ALTER TABLE public.memories FORCE ROW LEVEL SECURITY;)")


def test_function_without_search_path(clean: TestDatabase,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    execute(clean,
            "CREATE FUNCTION public.loose(n integer) RETURNS integer LANGUAGE sql AS 'SELECT n'",
            "CREATE FUNCTION public.pinned() RETURNS integer LANGUAGE sql SET search_path = ''"
            " AS 'SELECT 1'")
    _, document = run_audit(capsys, clean.dsn)
    [finding] = generic(document)
    assert pairs([finding]) == [("function_search_path_mutable",
                                 "function public.loose(n integer)")]
    assert finding["fix"].startswith("ALTER FUNCTION public.loose(n integer) SET search_path = '';")


def test_view_without_security_invoker(clean: TestDatabase,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    statements = ["CREATE VIEW public.owner_view AS SELECT 1 AS one"]
    modern = int(str(clean.scalar("SHOW server_version_num"))) >= 150000
    if modern:
        statements.append("CREATE VIEW public.invoker_view WITH (security_invoker = on)"
                          " AS SELECT 1 AS one")
    execute(clean, *statements)
    _, document = run_audit(capsys, clean.dsn)
    [finding] = generic(document)
    assert pairs([finding]) == [("security_definer_view", "view public.owner_view")]
    owner = clean.scalar("SELECT current_user")
    assert f"reads its tables as its owner {owner}," in finding["message"]
    if modern:
        assert finding["fix"] == "ALTER VIEW public.owner_view SET (security_invoker = true);"


def _contrib_extension(database: TestDatabase) -> str:
    name = database.scalar("SELECT min(name) FROM pg_available_extensions"
                           " WHERE name IN ('citext', 'pg_trgm')")
    if name is None:
        pytest.skip("neither citext nor pg_trgm is available on this server")
    return str(name)


def test_every_schema_the_stack_declares_is_audited_and_no_other(
        clean: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    # The dev stack declares mem0_backup, mem0_erasure and mem0_migration beside public.
    execute(clean, "CREATE SCHEMA mem0_backup", "CREATE SCHEMA mem0_migration",
            "CREATE SCHEMA elsewhere",
            "CREATE TABLE mem0_backup.loose_copy (id bigint)",
            "CREATE FUNCTION mem0_migration.loose() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
            "GRANT CREATE ON SCHEMA mem0_migration TO PUBLIC",
            # not the stack's: out of the audit's scope
            "CREATE TABLE elsewhere.loose_copy (id bigint)",
            "CREATE FUNCTION elsewhere.loose() RETURNS integer LANGUAGE sql AS 'SELECT 1'")
    _, document = run_audit(capsys, clean.dsn)
    findings = generic(document)
    assert pairs(findings) == [
        ("rls_disabled_in_public", "table mem0_backup.loose_copy"),
        ("function_search_path_mutable", "function mem0_migration.loose()"),
        ("schema_create_for_public", "schema mem0_migration")]
    assert "in schema mem0_backup" in findings[0]["message"]
    assert findings[0]["fix"] == "ALTER TABLE mem0_backup.loose_copy ENABLE ROW LEVEL SECURITY;"


def test_on_supabase_its_extensions_schema_is_not_audited(
        clean: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    # Supabase keeps functions of its own there (splinter skips the schema too).
    execute(clean, "CREATE SCHEMA extensions", "CREATE SCHEMA mem0_erasure",
            "CREATE FUNCTION extensions.loose() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
            "CREATE FUNCTION mem0_erasure.loose() RETURNS integer LANGUAGE sql AS 'SELECT 1'")
    _, document = run_audit(capsys, clean.dsn, stack="prod")  # target supabase
    assert pairs(generic(document)) == [("function_search_path_mutable",
                                         "function mem0_erasure.loose()")]


def test_extension_in_public_except_the_stacks_own_vector(
        clean: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    extension = _contrib_extension(clean)
    execute(clean, f"CREATE EXTENSION {extension} WITH SCHEMA public",
            "CREATE EXTENSION vector WITH SCHEMA public")
    _, document = run_audit(capsys, clean.dsn)
    # Only the extension itself: the functions and types it installed in public are its own.
    [finding] = generic(document)
    assert pairs([finding]) == [("extension_in_public", f"extension {extension} in schema public")]
    assert finding["fix"] == (f"CREATE SCHEMA IF NOT EXISTS extensions; ALTER EXTENSION "
                              f"{extension} SET SCHEMA extensions;")


def test_on_supabase_vector_in_public_is_reported_too(
        clean: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    execute(clean, "CREATE EXTENSION vector WITH SCHEMA public")
    _, document = run_audit(capsys, clean.dsn, stack="prod")  # target supabase
    assert pairs(generic(document)) == [("extension_in_public",
                                         "extension vector in schema public")]


def test_bypassrls_role_with_a_privilege(clean: TestDatabase,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bypass, idle, plain = (f"{kind}_{clean.name}" for kind in ("bypass", "idle", "plain"))
    execute(clean, *guarded_table("guarded"),
            f"CREATE ROLE {bypass} BYPASSRLS", f"CREATE ROLE {idle} BYPASSRLS",
            f"CREATE ROLE {plain}",
            f"GRANT SELECT, UPDATE ON public.guarded TO {bypass}",
            f"GRANT SELECT ON public.guarded TO {plain}")
    _, document = run_audit(capsys, clean.dsn)
    [finding] = generic(document)
    assert pairs([finding]) == [("rls_bypass_without_need", f"role {bypass}")]
    assert "public.guarded (SELECT, UPDATE)" in finding["message"]
    assert finding["fix"] == f"ALTER ROLE {bypass} NOBYPASSRLS;"


def test_policy_column_without_a_leading_index(clean: TestDatabase,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    execute(clean,
            "CREATE TABLE public.notes (id bigint, author text, team text)",
            "ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY by_author ON public.notes USING (author = current_user)",
            "CREATE POLICY by_team ON public.notes USING (team = current_user)"
            " WITH CHECK (team = current_user)",
            # author is only the second key here: no help for the policy
            "CREATE INDEX notes_id_author_idx ON public.notes (id, author)",
            # partial indexes count
            "CREATE INDEX notes_team_idx ON public.notes (team) WHERE team IS NOT NULL")
    _, document = run_audit(capsys, clean.dsn)
    [finding] = generic(document)
    assert pairs([finding]) == [("policy_column_unindexed", "policy by_author ON public.notes")]
    assert "policy by_author on public.notes reads column author" in finding["message"]
    assert finding["fix"] == "CREATE INDEX CONCURRENTLY ON public.notes (author);"


def test_privileges_granted_to_public(clean: TestDatabase,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    reader = f"reader_{clean.name}"
    execute(clean, *guarded_table("shared"), *guarded_table("private"),
            f"CREATE ROLE {reader}",
            "GRANT SELECT ON public.shared TO PUBLIC",
            f"GRANT SELECT ON public.private TO {reader}",
            "CREATE SEQUENCE public.counter", "GRANT USAGE ON SEQUENCE public.counter TO PUBLIC",
            "CREATE SEQUENCE public.quiet")
    _, document = run_audit(capsys, clean.dsn)
    findings = generic(document)
    assert pairs(findings) == [("privileges_to_anon_or_public", "sequence public.counter"),
                               ("privileges_to_anon_or_public", "table public.shared")]
    assert "PUBLIC holds SELECT on public.shared" in findings[1]["message"]
    assert findings[1]["fix"] == "REVOKE ALL ON TABLE public.shared FROM PUBLIC;"
    assert findings[0]["fix"] == "REVOKE ALL ON SEQUENCE public.counter FROM PUBLIC;"


def test_security_definer_function_with_default_execute(
        clean: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    definer = "LANGUAGE sql SECURITY DEFINER SET search_path = '' AS 'SELECT 1'"
    execute(clean,
            f"CREATE FUNCTION public.elevated() RETURNS integer {definer}",
            f"CREATE FUNCTION public.locked() RETURNS integer {definer}",
            "REVOKE EXECUTE ON FUNCTION public.locked() FROM PUBLIC",
            # a trigger function cannot be called directly: its EXECUTE exposes nothing
            "CREATE FUNCTION public.on_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
            " SET search_path = '' AS 'BEGIN RETURN NEW; END'")
    _, document = run_audit(capsys, clean.dsn)
    [finding] = generic(document)
    assert pairs([finding]) == [("privileges_to_anon_or_public", "function public.elevated()")]
    assert "PUBLIC may execute the SECURITY DEFINER function" in finding["message"]
    assert finding["fix"].startswith("REVOKE EXECUTE ON FUNCTION public.elevated() FROM PUBLIC;")


def test_create_on_schema_public_for_public(database: TestDatabase,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    execute(database, "GRANT CREATE ON SCHEMA public TO PUBLIC")
    _, document = run_audit(capsys, database.dsn)
    [finding] = generic(document)
    assert pairs([finding]) == [("schema_create_for_public", "schema public")]
    assert "CVE-2018-1058" in finding["message"]
    assert finding["fix"] == "REVOKE CREATE ON SCHEMA public FROM PUBLIC;"


def test_ddl_privileges_for_a_role_other_than_the_owner(
        clean: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    ddl, dml = f"ddl_{clean.name}", f"dml_{clean.name}"
    execute(clean, *guarded_table("notes"), f"CREATE ROLE {ddl}", f"CREATE ROLE {dml}",
            f"GRANT TRUNCATE, REFERENCES ON public.notes TO {ddl}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON public.notes TO {dml}")
    _, document = run_audit(capsys, clean.dsn)
    [finding] = generic(document)
    assert pairs([finding]) == [("non_owner_ddl_privilege", "table public.notes")]
    assert f"{ddl} holds REFERENCES, TRUNCATE on public.notes" in finding["message"]
    assert finding["fix"] == f"REVOKE REFERENCES, TRUNCATE ON TABLE public.notes FROM {ddl};"


def test_text_report_has_one_block_per_finding(clean: TestDatabase,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    execute(clean, "CREATE TABLE public.open_notes (id bigint)")
    code = main(["audit", "--stack", "dev", "--project-dir", str(REPO), "--dsn", clean.dsn])
    out = capsys.readouterr().out
    assert code == 1
    block = next(b for b in out.split("\n\n") if "rls_disabled_in_public" in b)
    assert block.splitlines() == [
        "[error] rls_disabled_in_public: table public.open_notes",
        "  row-level security is disabled on this table in schema public: every role with a "
        "grant on it (in an API-exposed schema, every API caller) reads and writes all of its "
        "rows",
        "  fix: ALTER TABLE public.open_notes ENABLE ROW LEVEL SECURITY;"]
    assert out.rstrip().splitlines()[-1].endswith("(stack dev, target embedded)")


# --- could not run ------------------------------------------------------------------------------


def test_no_dsn_and_no_environment_exits_2(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(DSN_ENV, raising=False)
    assert main(["audit", "--stack", "dev", "--project-dir", str(REPO)]) == 2
    assert DSN_ENV in capsys.readouterr().err


def test_dsn_from_the_environment(clean: TestDatabase, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(DSN_ENV, clean.dsn)
    assert main(["audit", "--stack", "dev", "--project-dir", str(REPO), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["checked"] == ALL_CODES


def test_unreachable_database_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    dsn = "postgresql://nobody@127.0.0.1:1/nothing"  # port 1: nothing listens
    assert main(["audit", "--stack", "dev", "--project-dir", str(REPO), "--dsn", dsn]) == 2
    assert "could not connect" in capsys.readouterr().err


def test_unknown_stack_exits_2(clean: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["audit", "--stack", "nosuch", "--project-dir", str(REPO), "--dsn", clean.dsn])
    assert code == 2
    assert "stack 'nosuch'" in capsys.readouterr().err


def test_embedded_spec_is_refused_without_starting_a_server(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "pgdata"
    code = main(["audit", "--stack", "dev", "--project-dir", str(REPO),
                 "--dsn", f"embedded:{data_dir}"])
    assert code == 2
    assert "'embedded:' spec is not allowed" in capsys.readouterr().err
    assert not data_dir.exists()


# --- deployed stacks --------------------------------------------------------------------------


def deploy(make_stack: Any, tmp_path: Path, **settings: object) -> Path:
    """Deploy the dev stack (pointed at the test database) and write a stack file with the
    same settings for the audit to read; returns its project directory."""
    driver = make_stack("dev", **settings)
    driver.up().raise_for_error()
    config = {**read_stack_config("dev", REPO), **driver.config}
    project = tmp_path / "audit-project"
    project.mkdir(exist_ok=True)
    (project / "Pulumi.deployed.yaml").write_text(yaml.safe_dump(
        {"config": {f"mem0infra:{key}": value for key, value in config.items()}}))
    return project


def audit_deployed(capsys: pytest.CaptureFixture[str], database: TestDatabase,
                   project: Path) -> tuple[int, dict[str, Any]]:
    return run_audit(capsys, database.dsn, stack="deployed", project_dir=project)


def new_findings(before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    return [f for f in after["findings"] if f not in before["findings"]]


def test_fresh_deployment_matches_what_the_stack_declares(
        make_stack: Any, database: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = deploy(make_stack, tmp_path)
    _, document = audit_deployed(capsys, database, project)
    assert [f for f in document["findings"] if f["code"] in DECLARED] == []


def test_dropped_and_altered_objects_are_missing_and_drifted(
        make_stack: Any, database: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = deploy(make_stack, tmp_path)
    _, before = audit_deployed(capsys, database, project)
    execute(database, "DROP INDEX public.memories_agent_id_idx",
            "ALTER FUNCTION public.memory_neighbours(uuid, integer) RESET search_path")
    _, after = audit_deployed(capsys, database, project)
    found = new_findings(before, after)
    assert pairs(found) == [
        ("function_search_path_mutable",
         "function public.memory_neighbours(start_id uuid, max_depth integer)"),
        ("declared_object_drifted", "function:public.memory_neighbours"),
        ("declared_object_missing", "index:public.memories_agent_id_idx"),
    ]
    drifted = found[1]["message"]
    assert drifted.startswith("function 'memory_neighbours' differs from what stack "
                              "'deployed' declares:\n--- declared\n+++ live\n")
    assert "\n- SET search_path TO ''" in drifted
    assert all("pulumi up" in f["fix"] for f in found[1:])


def test_audit_changes_nothing(make_stack: Any, database: TestDatabase, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    project = deploy(make_stack, tmp_path)
    execute(database, "CREATE TABLE public.open_notes (id bigint)",
            "GRANT SELECT ON public.open_notes TO PUBLIC",
            "CREATE FUNCTION public.loose() RETURNS integer LANGUAGE sql AS 'SELECT 1'")

    def state() -> tuple[dict[str, str], object]:
        with connect(database.dsn) as conn, conn.cursor() as cur:
            roles = cur.execute("SELECT array_agg(r ORDER BY rolname)::text FROM pg_roles r"
                                ).fetchone()
            return catalog_snapshot(cur), roles

    before = state()
    code, _ = audit_deployed(capsys, database, project)
    assert main(["audit", "--stack", "deployed", "--project-dir", str(project),
                 "--dsn", database.dsn]) == code == 1
    assert state() == before


@pytest.mark.parametrize("tenancy", ["user", "org", "service"])
def test_fresh_deployment_has_no_findings(
        make_stack: Any, database: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], tenancy: str) -> None:
    project = deploy(make_stack, tmp_path, tenancy=tenancy)
    code, document = audit_deployed(capsys, database, project)
    assert document["findings"] == []
    assert code == 0
    # The migration checkpoints have no policy by design: the service role's alone.
    [result] = [r for r in document["results"] if r["name"] == "rls_enabled_no_policy"]
    assert result["detail"].endswith(": mem0_migration.batches, mem0_migration.history_marks, "
                                     "mem0_migration.runs")


def test_fresh_supabase_deployment_has_no_findings(
        make_stack: Any, database: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Into the emulation, whose default privileges hand every new table and function in
    # public to anon, authenticated and service_role; every mem0_* schema is audited too.
    emulate_supabase(database.dsn)
    project = deploy(make_stack, tmp_path, target="supabase")
    code, document = audit_deployed(capsys, database, project)
    assert document["findings"] == []
    assert code == 0
    assert document["summary"]["target"] == "supabase"


def test_deployment_with_a_table_added_by_hand_in_mem0_backup(
        make_stack: Any, database: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = deploy(make_stack, tmp_path)
    execute(database, "CREATE TABLE mem0_backup.memories_extra (id bigint)")
    code, document = audit_deployed(capsys, database, project)
    assert code == 1
    [finding] = document["findings"]
    assert pairs([finding]) == [("rls_disabled_in_public", "table mem0_backup.memories_extra")]
    assert finding["fix"] == "ALTER TABLE mem0_backup.memories_extra ENABLE ROW LEVEL SECURITY;"


def test_deployment_with_rls_disabled_on_memories(
        make_stack: Any, database: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = deploy(make_stack, tmp_path)
    _, before = audit_deployed(capsys, database, project)
    execute(database, "ALTER TABLE public.memories DISABLE ROW LEVEL SECURITY")
    _, after = audit_deployed(capsys, database, project)
    found = new_findings(before, after)
    [finding] = [f for f in found if f["code"] == "rls_disabled_in_public"]
    assert finding["object"] == "table public.memories"
    assert "row-level security is disabled" in finding["message"]
    assert finding["fix"] == ("run `pulumi up`: the stack declares it (or by hand: "
                              "ALTER TABLE public.memories ENABLE ROW LEVEL SECURITY;)")
    # The same mistake seen from the policies and from the declared row-security object.
    assert {f["code"] for f in found} <= {"rls_disabled_in_public", "policy_exists_rls_disabled",
                                          *DECLARED}


def test_deployment_with_a_policy_dropped(
        make_stack: Any, database: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = deploy(make_stack, tmp_path)
    _, before = audit_deployed(capsys, database, project)
    policy = database.scalar("SELECT min(polname) FROM pg_policy"
                             " WHERE polrelid = 'public.memories'::regclass")
    assert policy is not None, "the deployment has no policy on public.memories"
    execute(database, f'DROP POLICY "{policy}" ON public.memories')
    _, after = audit_deployed(capsys, database, project)
    found = new_findings(before, after)
    missing = [f for f in found if f["code"] == "declared_object_missing"]
    assert len(missing) == 1
    assert policy in missing[0]["object"] and policy in missing[0]["message"]
    assert "pulumi up" in missing[0]["fix"]
    assert {f["code"] for f in found} <= set(DECLARED)


def test_deployment_with_a_function_search_path_reset(
        make_stack: Any, database: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = deploy(make_stack, tmp_path)
    _, before = audit_deployed(capsys, database, project)
    execute(database, "ALTER FUNCTION public.memory_neighbours(uuid, integer) RESET search_path")
    _, after = audit_deployed(capsys, database, project)
    found = new_findings(before, after)
    assert pairs(found) == [
        ("function_search_path_mutable",
         "function public.memory_neighbours(start_id uuid, max_depth integer)"),
        ("declared_object_drifted", "function:public.memory_neighbours")]
    assert "no fixed search_path" in found[0]["message"]
    assert "pulumi up" in found[0]["fix"]
    assert "- SET search_path TO ''" in found[1]["message"]


def test_deployment_with_memories_granted_to_public(
        make_stack: Any, database: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = deploy(make_stack, tmp_path)
    _, before = audit_deployed(capsys, database, project)
    execute(database, "GRANT SELECT ON public.memories TO PUBLIC")
    _, after = audit_deployed(capsys, database, project)
    found = new_findings(before, after)
    [finding] = [f for f in found if f["code"] == "privileges_to_anon_or_public"]
    assert finding["object"] == "table public.memories"
    assert "PUBLIC holds SELECT on public.memories" in finding["message"]
    assert finding["fix"] == "REVOKE ALL ON TABLE public.memories FROM PUBLIC;"
    assert {f["code"] for f in found} <= {"privileges_to_anon_or_public", *DECLARED}
