"""`python -m components bench --rls`, run in-process on a small data set against a real
PostgreSQL: the report's shape, the plans' shape, the result check, and the clean-up (scratch
schema and throwaway role). Timings are never asserted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from components import bench
from components.bench import measure, rls
from components.cli import main
from tests.conftest import TestDatabase

REPO = Path(__file__).resolve().parents[2]
SAMPLES = 5
SCRATCH_LEFT = r"SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname LIKE 'mem0\_bench\_%'"
ROLES_LEFT = r"SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname LIKE 'mem0\_bench\_%'"
PUBLIC_RELATIONS = ("SELECT coalesce(string_agg(relname, ',' ORDER BY relname), '')"
                    " FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace")
UUID_TEXT = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$"


def rls_run(dsn: str, *extra: str, stack: str = "dev", project: Path = REPO) -> list[str]:
    return ["bench", "--stack", stack, "--project-dir", str(project), "--dsn", dsn,
            "--rows", "300", "--users", "5", "--samples", str(SAMPLES), "--dims", "8", "--rls",
            *extra]


@pytest.fixture
def with_pgvector(database: TestDatabase) -> TestDatabase:
    with database.connect() as conn:
        conn.execute("CREATE EXTENSION vector")
        # A real table named like the stack's collection: the bench must not touch it.
        conn.execute("CREATE TABLE public.memories (id uuid PRIMARY KEY,"
                     " vector public.vector(8), payload jsonb)")
    return database


def assert_nothing_left(database: TestDatabase, public_before: object) -> None:
    assert database.scalar(SCRATCH_LEFT) == 0
    assert database.scalar(ROLES_LEFT) == 0
    assert database.scalar(PUBLIC_RELATIONS) == public_before
    assert database.scalar("SELECT count(*) FROM public.memories") == 0


def section_role(report: dict[str, Any]) -> str:
    role: str = report["rls"]["role"]
    return role


def stack_file(tmp_path: Path, stack: str, **settings: object) -> Path:
    lines = ["config:", "  mem0infra:target: embedded", "  mem0infra:dimensions: 8"]
    lines += [f"  mem0infra:{key}: {json.dumps(value)}" for key, value in settings.items()]
    (tmp_path / f"Pulumi.{stack}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def test_bench_rls_times_every_variant_and_query_and_leaves_nothing_behind(
        with_pgvector: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    public_before = with_pgvector.scalar(PUBLIC_RELATIONS)
    output = tmp_path / "bench.json"

    code = main(rls_run(with_pgvector.dsn, "--json", "--output", str(output)))

    assert code == 0, capsys.readouterr().err
    report: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    assert json.loads(capsys.readouterr().out) == report
    # The ordinary run, too, as the app role under its own policies, which --rls lifted
    # before its variants; one throwaway role serves both.
    assert {measure.family_of(name) for name in report["metrics"]} == set(bench.MEASUREMENTS)
    assert report["parameters"]["measured_as"]["role"] == section_role(report)
    section = report["rls"]
    assert list(section["variants"]) == list(rls.VARIANTS)
    for variant, body in section["variants"].items():
        assert list(body["queries"]) == list(rls.QUERIES), variant
        for query, cell in body["queries"].items():
            assert cell["count"] == SAMPLES, (variant, query)
            assert 0 < cell["p50_ms"] <= cell["p95_ms"] <= cell["p99_ms"], (variant, query)
            assert cell["p50_ratio_to_none"] > 0, (variant, query)
            # mem0's list has no ORDER BY: another plan may return another 100 of a user's
            # rows (the check below proves each is one the user may see); the rest must
            # match exactly.
            if query != "list_user":
                assert cell["timed_results_identical_to_none"] == SAMPLES, (variant, query)
            assert cell["plan"]["used"] in ("custom", "generic")
    assert all(c["p50_ratio_to_none"] == 1.0
               for c in section["variants"]["none"]["queries"].values())
    check = section["check"]
    assert (check["passed"], check["mismatch_count"]) == (True, 0)
    assert (check["users_checked"], check["samples_checked"]) == (5, SAMPLES)
    assert set(section["baseline_repeat_p50_ratio"]) == set(rls.QUERIES)
    assert section["role"] == report["parameters"]["scratch_schema"]
    assert_nothing_left(with_pgvector, public_before)


def test_bench_rls_plans_show_the_initplan_and_the_per_row_call(
        with_pgvector: TestDatabase, tmp_path: Path) -> None:
    output = tmp_path / "bench.json"

    assert main(rls_run(with_pgvector.dsn, "--json", "--output", str(output))) == 0

    report = json.loads(output.read_text(encoding="utf-8"))
    variants, scratch = report["rls"]["variants"], report["parameters"]["scratch_schema"]
    # The project's policy is the model's: identity through (SELECT mem0_user_id()).
    assert variants["project"]["policy_using"] == \
        f"(user_id = ( SELECT {scratch}.mem0_user_id() AS mem0_user_id))"
    assert variants["seed"]["policy_using"] == f"(({scratch}.uid())::text = user_id)"
    for query in rls.QUERIES:
        for variant in ("project", "project-app"):
            plan = variants[variant]["queries"][query]["plan"]
            assert plan["initplan"] and not plan["per_row_call"], (variant, query, plan)
        seed = variants["seed"]["queries"][query]["plan"]
        assert not seed["initplan"], (query, seed)
        none = variants["none"]["queries"][query]["plan"]
        assert not (none["initplan"] or none["per_row_call"]), (query, none)
    # Get by id finds the row by its primary key; the seed's policy then calls uid() for it.
    get = variants["seed"]["queries"]["get_by_id"]["plan"]
    assert get["per_row_call"], get
    assert any("uid()" in line and "Filter:" in line for line in get["custom_plan"])
    # Wherever the seed's plan reads a user's rows by the user_id index, uid() is evaluated
    # in the index condition and again, per row, in the filter.
    for query in ("search_user", "list_user"):
        shape = variants["seed"]["queries"][query]["plan"]
        assert shape["per_row_call"] or shape["index_cond_call"], (query, shape)


def test_bench_rls_user_ids_are_uuid_text(with_pgvector: TestDatabase, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    samples = rls._samples

    def record(conn: psycopg.Connection[Any], n: Any, count: int) -> list[rls.Sample]:
        found = samples(conn, n, count)
        seen.extend(s.user for s in found)
        return found

    monkeypatch.setattr(rls, "_samples", record)

    assert main(rls_run(with_pgvector.dsn, "--json")) == 0

    assert len(set(seen)) == 5
    assert all(re.match(UUID_TEXT, user) for user in seen), seen


def test_bench_rls_text_report(with_pgvector: TestDatabase,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(rls_run(with_pgvector.dsn)) == 0

    out = capsys.readouterr().out
    assert "row-level security: as role mem0_bench_" in out
    for variant in rls.VARIANTS:
        for query in rls.QUERIES:
            assert any(line.startswith(variant) and query in line and "x " in line
                       for line in out.splitlines()), (variant, query)
    assert "check passed" in out and "InitPlan" in out and "uid() per row" in out


def test_bench_rls_with_session_scope_shared_agents_and_required_identity(
        with_pgvector: TestDatabase, tmp_path: Path) -> None:
    project = stack_file(tmp_path, "scoped", sessionScope=True, sharedAgentKnowledge=True,
                         appRoleIdentity="required")
    output = tmp_path / "bench.json"

    code = main(rls_run(with_pgvector.dsn, "--json", "--output", str(output),
                        stack="scoped", project=project))

    assert code == 0
    section = json.loads(output.read_text(encoding="utf-8"))["rls"]
    assert "mem0_run_id()" in section["variants"]["project"]["policy_using"]
    assert "agent_id IS NOT NULL" in section["variants"]["project"]["policy_using"]
    assert section["check"]["passed"]
    assert with_pgvector.scalar(ROLES_LEFT) == 0


def test_bench_rls_exits_1_when_a_variant_hides_the_users_rows(
        with_pgvector: TestDatabase, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    public_before = with_pgvector.scalar(PUBLIC_RELATIONS)
    variants = rls._variants

    def hiding(n: Any) -> list[rls.Variant]:
        return [rls.Variant(v.name, v.words, "(user_id = 'nobody'::text)", v.function)
                if v.name == "project" else v for v in variants(n)]

    monkeypatch.setattr(rls, "_variants", hiding)

    code = main(rls_run(with_pgvector.dsn, "--json"))

    captured = capsys.readouterr()
    assert code == rls.EXIT_RESULTS_DIFFER == 1
    check = json.loads(captured.out)["rls"]["check"]
    assert not check["passed"] and check["mismatch_count"] > 0
    assert {m["variant"] for m in check["mismatches"]} == {"project"}
    assert "row-level security changed" in captured.err
    assert_nothing_left(with_pgvector, public_before)


@pytest.mark.parametrize("failure", [KeyboardInterrupt, psycopg.errors.QueryCanceled])
def test_bench_rls_drops_its_role_and_schema_on_interrupt_or_error(
        failure: type[BaseException], with_pgvector: TestDatabase,
        monkeypatch: pytest.MonkeyPatch) -> None:
    public_before = with_pgvector.scalar(PUBLIC_RELATIONS)
    measured: list[str] = []
    measure = rls._measure_variant

    def fail_on_the_second(*args: Any, **kwargs: Any) -> Any:
        # The second variant: the role exists, a policy names it, row-level security is on.
        if measured:
            raise failure("stop")
        measured.append("none")
        return measure(*args, **kwargs)

    monkeypatch.setattr(rls, "_measure_variant", fail_on_the_second)

    code = main(rls_run(with_pgvector.dsn))

    assert code == (bench.EXIT_INTERRUPTED if failure is KeyboardInterrupt else 2)
    assert_nothing_left(with_pgvector, public_before)


def test_bench_rls_runs_as_a_createrole_role_that_is_not_superuser(
        with_pgvector: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    # Supabase's postgres role is such a role. Named after the database: its teardown drops it.
    role = f"bencher_{with_pgvector.name}"
    with with_pgvector.connect() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN CREATEROLE PASSWORD 'bench'")
        conn.execute(f"GRANT CREATE ON DATABASE {with_pgvector.name} TO {role}")
    dsn = with_pgvector.server.dsn_for(with_pgvector.name, user=role, password="bench")

    code = main(rls_run(dsn, "--json"))

    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["rls"]["check"]["passed"]
    assert with_pgvector.scalar(ROLES_LEFT) == 0
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0


def test_bench_rls_refuses_a_role_that_cannot_create_roles_before_loading(
        with_pgvector: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    role = f"plain_{with_pgvector.name}"
    with with_pgvector.connect() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'bench'")
        conn.execute(f"GRANT CREATE ON DATABASE {with_pgvector.name} TO {role}")
    dsn = with_pgvector.server.dsn_for(with_pgvector.name, user=role, password="bench")

    assert main(rls_run(dsn)) == 2
    assert "CREATEROLE" in capsys.readouterr().err
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0


@pytest.mark.parametrize("tenancy", ["org", "service"])
def test_bench_rls_refuses_other_tenancies_before_connecting(
        tenancy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = stack_file(tmp_path, "other", tenancy=tenancy)
    # Nothing listens on port 1: a connection attempt would fail differently.
    dsn = "postgresql://nobody@127.0.0.1:1/none"

    assert main(rls_run(dsn, stack="other", project=project)) == 2
    err = capsys.readouterr().err
    assert "--rls" in err and f"tenancy {tenancy!r}" in err and "allowed: tenancy user" in err


def test_identity_function_on_supabase_is_the_postgres_target_rendering() -> None:
    # A supabase stack's own mem0_user_id() calls auth.uid(), which plain PostgreSQL lacks.
    from components.settings import parse_settings

    settings = parse_settings({"target": "supabase", "databaseUrl": "postgresql://x@h/db",
                               "appRolePassword": "p"}, "s")
    ddl = rls._identity_function_ddl(settings, "mem0_bench_00000000")

    assert ddl.startswith("CREATE OR REPLACE FUNCTION mem0_bench_00000000.mem0_user_id()")
    assert "auth.uid" not in ddl and "request.jwt.claims" in ddl and "mem0.user_id" in ddl
