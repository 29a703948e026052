"""Preflight and validation against a real PostgreSQL: fresh deployments pass, and each
fault made by hand fails exactly its check (the checks after it are held back, not run)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from components.checks.command import run_phase
from components.checks.core import FAIL, PASS, SKIP, Report, Result
from components.cli import main
from components.connection import DSN_ENV
from components.settings import Settings, parse_settings
from tests.conftest import TestDatabase, stack_config, stack_settings
from tests.support.engine import REPO, deployed_settings
from tests.support.supabase import deployed_stack
from tests.support.testbed import PgServer, create_database, drop_database

DIMS = 16
BASE = {"dimensions": DIMS}


def statuses(report: Report) -> dict[str, str]:
    return {r.name: r.status for r in report.results}


def result(report: Report, name: str) -> Result:
    return next(r for r in report.results if r.name == name)


def assert_all_good(report: Report) -> None:
    bad = [r for r in report.results if r.status == FAIL or (r.status == SKIP and r.blocks)]
    assert not bad, report.text()
    assert report.passed


def file_settings(database: TestDatabase, stack: str, **extra: object) -> Settings:
    """The settings the stack deploys: the stack file, then the test's config."""
    return parse_settings(deployed_settings(stack, stack_config(database, **extra)), stack)


# --- fresh deployments ----------------------------------------------------------------------

# name -> (stack file, settings on top of it)
CONFIGURATIONS: dict[str, tuple[str, dict[str, object]]] = {
    "dev-file": ("dev", {}),
    "staging-file": ("staging", {"target": "supabase"}),
    "prod-file": ("prod", {"target": "supabase"}),
    "postgres-org-session": ("dev", {"tenancy": "org", "sessionScope": True,
                                     "sharedAgentKnowledge": True}),
    "postgres-service-required": ("dev", {"tenancy": "service",
                                          "appRoleIdentity": "required"}),
    "supabase-org": ("staging", {"target": "supabase", "tenancy": "org"}),
    "supabase-every-job": ("prod", {"target": "supabase", "snapshotSchedule": "0 3 * * *",
                                    "expiredPurgeSchedule": "@daily",
                                    "sessionCleanupSchedule": "@hourly",
                                    "historyRetentionSchedule": "@weekly",
                                    "analyzeSchedule": "0 4 * * *"}),
}

@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_validate_passes_on_a_fresh_deployment(pg_server: PgServer, tmp_path: Path,
                                               name: str) -> None:
    # The stack files' own settings, on the test database (dev's embedded target becomes
    # postgres there; the Supabase stacks run in the emulation), with small vectors.
    stack, extra = CONFIGURATIONS[name]
    settings = {**BASE, **extra}
    with deployed_stack(pg_server, tmp_path, stack, **settings) as database:
        deployed = file_settings(database, stack, **settings)
        report = run_phase("validate", database.dsn, deployed)
        assert_all_good(report)
        ran = {r.name for r in report.results if r.status == PASS}
        assert {"extension", "tables", "indexes", "policies", "planner", "rls_enforced",
                "round_trip"} <= ran
        assert result(report, "pooler").status == SKIP  # no poolerUrl: not applicable
        preflight = run_phase("preflight", database.dsn, deployed)
        assert_all_good(preflight)


def test_the_deployment_runs_the_checks_and_exports_their_summary(make_stack) -> None:
    driver = make_stack("dev", **BASE)
    preview = driver.preview()
    assert preview.error is None
    assert set(preview.ops_by_type("CheckRun").values()) == {"create"}
    up = driver.up().raise_for_error()
    checks = up.outputs["checks"]
    assert checks["phase"] == "validate" and checks["passed"] is True
    assert checks["failed"] == [] and checks["checks"] == 18
    # Nothing changed: neither check runs again.
    again = driver.up().raise_for_error()
    assert set(again.ops_by_type("CheckRun").values()) == {"same"}


def test_the_stack_benchmark_runs_in_the_deployment_only_where_enabled(make_stack) -> None:
    quick = {**BASE, "benchRows": 200, "benchUsers": 5, "benchInsertMs": 60000,
             "benchSearchMs": 60000, "benchGetMs": 60000, "benchTraverseMs": 60000}
    off = make_stack("dev", **quick).up().raise_for_error()
    assert "benchmark" not in off.outputs["checks"]
    on = make_stack("dev", **quick, checksBenchmark=True).up().raise_for_error()
    bench = on.outputs["checks"]["benchmark"]
    assert bench["passed"] is True and bench["rows"] == 200
    # Uniform users (40 memories each): one size class, ~100.
    assert set(bench["thresholds"]) == {"insert", "search_user_100", "get_by_id",
                                        "traverse_1hop", "traverse_2hop"}
    assert all(t["p95_ms"] <= t["limit_ms"] == 60000 for t in bench["thresholds"].values())


def test_a_benchmark_over_its_limit_names_the_metric_and_the_setting() -> None:
    from components.checks.provider import _bench_failure

    message = _bench_failure({"thresholds": {
        "get_by_id": {"limit_ms": 10, "p95_ms": 12.5, "passed": False, "setting": "benchGetMs"},
        "insert": {"limit_ms": 50, "p95_ms": 3.0, "passed": True, "setting": "benchInsertMs"}}})
    assert "get_by_id: p95 12.500 ms is over the limit of 10 ms (stack setting benchGetMs)" \
        in message
    assert "insert" not in message


# --- faults made by hand ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[TestDatabase]:
    """One deployment, copied for each fault (CREATE DATABASE ... TEMPLATE): faster than a
    deployment per test, and each fault gets a database of its own."""
    with deployed_stack(pg_server, tmp_path_factory.mktemp("state"), "dev", **BASE) as database:
        yield database


@pytest.fixture
def copy(pg_server: PgServer, template: TestDatabase) -> Iterator[tuple[TestDatabase, Settings]]:
    name = create_database(pg_server, prefix="c")
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template.name)))
    database = TestDatabase(pg_server, name, pg_server.dsn_for(name))
    settings = parse_settings(stack_config(template, databaseUrl=database.dsn, **BASE), "dev")
    try:
        yield database, settings
    finally:
        # The roles are the template's; only this test changes them (ALTER ROLE): restore.
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("ALTER ROLE {} SET hnsw.ef_search TO {}").format(
                sql.Identifier(settings.app_role), sql.Literal(str(settings.hnsw_ef_search))))
        drop_database(pg_server, name)


def _make_invalid(conn: psycopg.Connection, app: str) -> None:
    # What a failed CREATE INDEX CONCURRENTLY leaves: the index is there, marked invalid.
    conn.execute("UPDATE pg_catalog.pg_index SET indisvalid = false"
                 " WHERE indexrelid = 'public.memories_user_id_idx'::regclass")


def _alter_function(conn: psycopg.Connection, app: str) -> None:
    definition = conn.execute("SELECT pg_catalog.pg_get_functiondef("
                              "'public.mem0_touch_updated_at()'::regprocedure)").fetchone()[0]
    assert "now()" in definition
    conn.execute(definition.replace("now()", "clock_timestamp()"))


def _alter_policy(conn: psycopg.Connection, app: str) -> None:
    # The end users' read rule, rewritten to mean the same (the identity called per row):
    # only the catalog comparison can tell.
    conn.execute("ALTER POLICY memories_select_users ON public.memories"
                 " USING (user_id = public.mem0_user_id())")


Fault = Callable[[psycopg.Connection, str], None]


def _sql(statement: str) -> Fault:
    def apply(conn: psycopg.Connection, app: str) -> None:
        conn.execute(statement.replace("{app}", app))
    return apply


# fault -> (the check that must fail, words its detail must hold)
FAULTS: dict[str, tuple[Fault, str, str]] = {
    "index dropped": (_sql("DROP INDEX public.memories_user_id_idx"), "indexes",
                      "missing: index public.memories_user_id_idx"),
    "index invalid": (_make_invalid, "indexes", "INVALID: index public.memories_user_id_idx"),
    "rls disabled": (_sql("ALTER TABLE public.memories DISABLE ROW LEVEL SECURITY"),
                     "row_security", "differs: row_security public.memories"),
    "force removed": (_sql("ALTER TABLE public.memories NO FORCE ROW LEVEL SECURITY"),
                      "row_security", "NO FORCE ROW LEVEL SECURITY"),
    "policy altered": (_alter_policy, "policies", "differs: policy public.memories_select"),
    "grant revoked": (_sql("REVOKE DELETE ON public.memories FROM {app}"), "grants",
                      "differs: grant"),
    "ef_search reset": (_sql("ALTER ROLE {app} RESET hnsw.ef_search"), "search_settings",
                        "hnsw.ef_search is not set"),
    "wrong dimensions": (_sql("ALTER TABLE public.memories ALTER COLUMN vector"
                              " TYPE public.vector(8)"), "tables", "vector(8)"),
    "extension missing": (_sql("DROP EXTENSION vector CASCADE"), "extension",
                          "missing: extension vector"),
    "function body changed": (_alter_function, "functions",
                              "differs: function public.mem0_touch_updated_at"),
    "history trigger dropped": (_sql("DROP TRIGGER memories_history ON public.memories"),
                                "triggers", "missing: trigger public.memories_history"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_fails_exactly_its_check(copy: tuple[TestDatabase, Settings],
                                            fault: str) -> None:
    database, settings = copy
    make, check, words = FAULTS[fault]
    with database.connect() as conn:
        make(conn, settings.app_role)
    report = run_phase("validate", database.dsn, settings)
    failed = result(report, check)
    assert [r.name for r in report.failures] == [check], report.text()
    assert words in failed.detail, failed.detail
    assert failed.hint, "every failure says what to do"
    # The others passed or were not applicable, or were held back by this fault: a check
    # is held back only when one it builds on failed or was held back itself.
    held: set[str] = {check}
    for r in report.results:
        if r.status == SKIP and r.blocks:
            names = r.detail.removeprefix("not run: ").removesuffix(" did not pass")
            assert set(names.split(", ")) <= held, r
            held.add(r.name)
        elif r.name != check:
            assert r.status in (PASS, SKIP), r
    assert check in report.failure_message() and failed.hint in report.failure_message()


def test_the_enforcement_test_finds_a_policy_the_stack_does_not_declare(
        copy: tuple[TestDatabase, Settings]) -> None:
    database, settings = copy
    with database.connect() as conn:
        conn.execute("CREATE POLICY open_to_all ON public.memories FOR SELECT USING (true)")
    report = run_phase("validate", database.dsn, settings)
    assert [r.name for r in report.failures] == ["rls_enforced"], report.text()
    failed = result(report, "rls_enforced")
    assert "read it" in failed.detail and "memories.open_to_all" in failed.hint


def test_the_round_trip_finds_a_trigger_that_refuses_mem0s_insert(
        copy: tuple[TestDatabase, Settings]) -> None:
    database, settings = copy
    with database.connect() as conn:
        conn.execute("CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS"
                     " $$BEGIN RAISE EXCEPTION 'inserts are closed'; END$$")
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON public.memories"
                     " FOR EACH ROW EXECUTE FUNCTION public.refuse()")
    report = run_phase("validate", database.dsn, settings)
    # The enforcement test inserts too: both behaviour checks see it, no catalog check does.
    assert {r.name for r in report.failures} <= {"round_trip", "rls_enforced"}
    assert "inserts are closed" in result(report, "round_trip").detail


def test_the_planner_check_fails_when_index_scans_are_turned_off(
        copy: tuple[TestDatabase, Settings]) -> None:
    database, settings = copy
    with database.connect() as conn:
        for name in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} = off").format(
                sql.Identifier(database.name), sql.Identifier(name)))
    report = run_phase("validate", database.dsn, settings)
    assert [r.name for r in report.failures] == ["planner"], report.text()
    assert "no plan of mem0's statement uses the index" in result(report, "planner").detail


def test_search_settings_overridden_in_this_database_are_found(
        copy: tuple[TestDatabase, Settings]) -> None:
    database, settings = copy
    with database.connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET hnsw.ef_search = 40").format(
            sql.Identifier(settings.app_role), sql.Identifier(database.name)))
    report = run_phase("validate", database.dsn, settings)
    assert [r.name for r in report.failures] == ["search_settings"], report.text()
    failed = result(report, "search_settings")
    assert "hnsw.ef_search is '40'" in failed.detail and "in this database" in failed.detail
    assert "IN DATABASE" in failed.hint


def test_validation_leaves_no_row_behind(copy: tuple[TestDatabase, Settings]) -> None:
    database, settings = copy
    before = _row_counts(database)
    assert_all_good(run_phase("validate", database.dsn, settings))
    assert _row_counts(database) == before


def _row_counts(database: TestDatabase) -> dict[str, int]:
    with database.connect() as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public'")]
        return {t: conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(
            sql.Identifier(t))).fetchone()[0] for t in tables}


# --- through the Pulumi CLI ---------------------------------------------------------------------

def test_a_failing_validation_fails_the_apply_with_the_checks_message(
        make_stack, database: TestDatabase) -> None:
    driver = make_stack("dev", **BASE)
    driver.up().raise_for_error()
    with database.connect() as conn:
        conn.execute("CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS"
                     " $$BEGIN RAISE EXCEPTION 'inserts are closed'; END$$")
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON public.memories"
                     " FOR EACH ROW EXECUTE FUNCTION public.refuse()")
    changed = make_stack("dev", **BASE, hnswEfSearch=120)
    assert changed.preview().error is None  # a preview never runs the checks
    report = changed.up()
    assert report.error is not None
    assert "validate failed" in report.error and "round_trip" in report.error
    assert "inserts are closed" in report.error and "fix:" in report.error
    # The schema change itself was applied; the checks run again on the next up.
    with database.connect() as conn:
        setting = conn.execute("SELECT setconfig FROM pg_catalog.pg_db_role_setting s"
                               " JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = %s",
                               (changed.config["appRole"],)).fetchone()[0]
        assert "hnsw.ef_search=120" in setting
        conn.execute("DROP TRIGGER refuse ON public.memories")
    healed = changed.up().raise_for_error()
    assert healed.outputs["checks"]["passed"] is True


def test_a_failing_preflight_stops_the_deployment_before_any_change(
        make_stack, database: TestDatabase) -> None:
    weak = f"weak_{database.name}"
    with database.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(weak)))
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = database.server.dsn_for(database.name, user=weak)
    report = make_stack("dev", **BASE, databaseUrl=url).up()
    assert report.error is not None and "preflight failed" in report.error
    assert "deployer" in report.error and "CREATEROLE" in report.error
    assert not [op for op in report.operations
                if op["op"] == "create" and "SqlObject" in op["urn"]], report.operations
    assert database.scalar("SELECT count(*) FROM pg_catalog.pg_extension"
                           " WHERE extname = 'vector'") == 0


# --- preflight --------------------------------------------------------------------------------

def test_preflight_passes_for_a_superuser_on_an_empty_database(database: TestDatabase) -> None:
    report = run_phase("preflight", database.dsn, stack_settings(database, **BASE))
    assert_all_good(report)
    assert statuses(report) == {"server_version": PASS, "tls": PASS, "pgvector": PASS,
                                "pg_cron": SKIP,
                                "deployer": PASS, "target_shape": SKIP, "data_safe": PASS}
    assert result(report, "pgvector").detail.startswith("pgvector ")


def test_preflight_names_what_a_weak_deployer_lacks(database: TestDatabase) -> None:
    weak = f"weak_{database.name}"
    with database.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(weak)))
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    settings = stack_settings(database, **BASE)
    report = run_phase("preflight", database.server.dsn_for(database.name, user=weak),
                       settings)
    assert [r.name for r in report.failures] == ["deployer"]
    detail = result(report, "deployer").detail
    assert "no CREATE on schema public" in detail and "no CREATEROLE" in detail
    assert "pgvector is not installed" in detail
    assert "GRANT" in result(report, "deployer").hint


def test_preflight_says_a_deployer_that_cannot_run_the_jobs_must_not_schedule_them(
        database: TestDatabase) -> None:
    """pg_cron keeps its jobs in another database here: the deploying role must be able to
    schedule there, and the jobs run as it, so it must bypass row-level security. Both
    failures name the settings that schedule jobs."""
    weak = f"weak_{database.name}"
    with database.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(weak)))
    settings = stack_settings(database, **BASE, snapshotSchedule="@daily",
                              analyzeSchedule="@daily")
    url = database.server.dsn_for(database.name, user=weak)
    cron = result(run_phase("preflight", url, settings), "pg_cron")
    assert cron.status == FAIL
    assert f"{weak} may not read cron.database_name" in cron.detail
    assert f"GRANT pg_read_all_settings TO {weak}" in cron.detail
    assert cron.hint.endswith("or turn the jobs off (set snapshotSchedule, analyzeSchedule "
                              "to empty)")
    with database.connect() as conn:
        conn.execute(sql.SQL("GRANT pg_read_all_settings TO {}").format(sql.Identifier(weak)))
    cron = result(run_phase("preflight", url, settings), "pg_cron")
    assert cron.status == FAIL
    assert "may not run cron.schedule_in_database()" in cron.detail
    assert cron.hint.endswith("or turn the jobs off (set snapshotSchedule, analyzeSchedule "
                              "to empty)")
    cron_database = database.server.cron_database
    with psycopg.connect(database.server.dsn_for(cron_database), autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA cron TO {}").format(sql.Identifier(weak)))
        conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text, text, "
                             "text, text, text, boolean) TO {}").format(sql.Identifier(weak)))
    try:
        cron = result(run_phase("preflight", url, settings), "pg_cron")
        assert cron.status == FAIL
        assert "does not bypass row-level security" in cron.detail
        assert "snapshotSchedule, analyzeSchedule" in cron.hint
    finally:
        with psycopg.connect(database.server.dsn_for(cron_database), autocommit=True) as conn:
            conn.execute(sql.SQL("REVOKE ALL ON FUNCTION cron.schedule_in_database(text, text, "
                                 "text, text, text, boolean) FROM {}").format(
                                     sql.Identifier(weak)))
            conn.execute(sql.SQL("REVOKE ALL ON SCHEMA cron FROM {}").format(
                sql.Identifier(weak)))


def test_preflight_on_target_supabase_refuses_a_plain_postgres(database: TestDatabase) -> None:
    settings = stack_settings(database, "staging", target="supabase", **BASE)
    report = run_phase("preflight", database.dsn, settings)
    assert [r.name for r in report.failures] == ["target_shape"]
    failed = result(report, "target_shape")
    # Roles are cluster-wide: another test's Supabase emulation may have made anon & co.
    assert "schema auth" in failed.detail and "function auth.uid()" in failed.detail
    assert "set target to postgres" in failed.hint


def test_preflight_refuses_a_pgvector_older_than_the_stack_needs(
        database: TestDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server's pgvector is what it is; the stack's floor is raised past it instead.
    from components.checks import preflight
    from components.model import Requirement

    monkeypatch.setattr(preflight, "BASE_PGVECTOR",
                        Requirement("vector", "99.0", "install pgvector 99 or later"))
    report = run_phase("preflight", database.dsn, stack_settings(database, **BASE))
    assert [r.name for r in report.failures] == ["pgvector"]
    assert ">= 99.0" in result(report, "pgvector").detail
    assert result(report, "pgvector").hint == "install pgvector 99 or later"


# --- the commands -----------------------------------------------------------------------------

def test_validate_command_exit_codes_and_json(copy: tuple[TestDatabase, Settings],
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    database, settings = copy
    project = _project(tmp_path, settings)
    monkeypatch.setenv(DSN_ENV, database.dsn)
    assert main(["validate", "--stack", "t", "--project-dir", str(project), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["passed"] is True and document["phase"] == "validate"
    assert {r["name"] for r in document["results"]} >= {"extension", "round_trip"}
    with database.connect() as conn:
        conn.execute("DROP TRIGGER memories_history ON public.memories")
    assert main(["validate", "--stack", "t", "--project-dir", str(project)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  triggers" in out and "fix:" in out
    monkeypatch.delenv(DSN_ENV)
    assert main(["validate", "--stack", "t", "--project-dir", str(project)]) == 2
    assert DSN_ENV in capsys.readouterr().err
    bad = database.server.dsn_for(f"missing_{uuid.uuid4().hex[:8]}")
    assert main(["preflight", "--stack", "t", "--project-dir", str(project),
                 "--dsn", bad]) == 2
    assert "could not connect" in capsys.readouterr().err


def _project(tmp_path: Path, settings: Settings) -> Path:
    """A project directory whose stack `t` is the test's stack (roles, dimensions)."""
    import yaml

    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    config = {f"mem0infra:{k}": v for k, v in {
        "target": "postgres", "databaseUrl": "postgresql://unused@localhost/unused",
        "dimensions": settings.dimensions, "appRole": settings.app_role,
        "appRolePassword": "x", "ownerRole": settings.owner_role,
        "readonlyRole": settings.readonly_role, "readonlyRolePassword": "x",
        "serviceRole": settings.service_role, "serviceRolePassword": "x"}.items()}
    (project / "Pulumi.t.yaml").write_text(yaml.safe_dump({"config": config}))
    return project
