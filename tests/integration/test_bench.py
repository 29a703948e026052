"""`python -m components bench`, run in-process on a small data set against a real PostgreSQL.

Only the shape of the report and the clean-up are asserted: timings are for issue notes,
never for tests. Runs that must pass use a copy of the dev stack whose limits are the largest
allowed (60 s), so a slow machine cannot fail them; the run that must fail a limit replaces
the measurements' clock instead of hoping for a slow query.

The small run: 300 memories over 5 users, zipf (the command's default): 130, 66, 44, 33 and
27 memories, so two size classes, ~100 (the first four) and ~10 (the last).
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from pgvector import Vector
from pgvector.psycopg import register_vector

from components import bench, vectors
from components.bench import measure, role, run
from components.bench.thresholds import LIMITS
from components.cli import main
from components.connection import connect
from tests.conftest import TestDatabase, stack_settings

REPO = Path(__file__).resolve().parents[2]
SAMPLES = 20
SCRATCH_LEFT = r"SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname LIKE 'mem0\_bench\_%'"
ROLES_LEFT = r"SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname LIKE 'mem0\_bench\_%'"
PUBLIC_RELATIONS = ("SELECT coalesce(string_agg(relname, ',' ORDER BY relname), '')"
                    " FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOMY = {"benchInsertMs": 60_000, "benchSearchMs": 60_000, "benchGetMs": 60_000,
         "benchTraverseMs": 60_000}
# The small run's metrics, in the report's order (searches and lists per size class).
SMALL_RUN_METRICS = ["insert", "search_user_100", "search_user_10", "search_unfiltered",
                     "get_by_id", "list_user_100", "list_user_10", "traverse_1hop",
                     "traverse_2hop"]
SEARCHES = ("search_user_100", "search_user_10", "search_unfiltered")
# What a full page holds, per metric of the small run: min(80 or 100, the user's memories),
# averaged over the queries (the ~100 class's users take turns: 130, 66, 44, 33).
EXPECTED_ROWS = {"search_user_100": (80 + 66 + 44 + 33) / 4, "search_user_10": 27.0,
                 "search_unfiltered": 80.0, "list_user_100": (100 + 66 + 44 + 33) / 4,
                 "list_user_10": 27.0, "get_by_id": 1.0}


def small_run(dsn: str, *extra: str, project: Path = REPO) -> list[str]:
    return ["bench", "--stack", "dev", "--project-dir", str(project), "--dsn", dsn,
            "--rows", "300", "--users", "5", "--dims", "16", "--samples", str(SAMPLES), *extra]


def project(tmp_path: Path, **settings: object) -> Path:
    """A project directory: the repository's Pulumi.yaml and its dev stack file plus
    `settings` (the roomy limits unless they say otherwise)."""
    directory = tmp_path / "project"
    directory.mkdir(exist_ok=True)
    shutil.copy(REPO / "Pulumi.yaml", directory / "Pulumi.yaml")
    document = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    document["config"].update({f"mem0infra:{key}": value
                               for key, value in {**ROOMY, **settings}.items()})
    (directory / "Pulumi.dev.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return directory


def assert_thresholds_consistent(report: dict[str, Any]) -> None:
    thresholds = report["thresholds"]
    limited = [name for name in report["metrics"]
               if any(limit.covers(name) for limit in LIMITS)]
    assert list(thresholds) == limited
    assert {"insert", "get_by_id", "traverse_1hop", "traverse_2hop"} <= set(limited)
    assert any(name.startswith("search_user_") for name in limited)
    for name, verdict in thresholds.items():
        assert verdict["p95_ms"] == report["metrics"][name]["p95_ms"], name
        assert verdict["passed"] == (verdict["p95_ms"] <= verdict["limit_ms"]), name
        assert verdict["setting"].startswith("bench"), name
    assert report["passed"] == all(v["passed"] for v in thresholds.values())


def run_json(dsn: str, capsys: pytest.CaptureFixture[str], *extra: str,
             project: Path) -> dict[str, Any]:
    code = main(small_run(dsn, "--json", *extra, project=project))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report: dict[str, Any] = json.loads(captured.out)
    return report


@pytest.fixture
def with_pgvector(database: TestDatabase) -> TestDatabase:
    # The bench creates no extension: it is installed by whoever deploys the stack.
    with database.connect() as conn:
        conn.execute("CREATE EXTENSION vector")
    return database


def test_bench_reports_every_metric_and_leaves_nothing_behind(
        with_pgvector: TestDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    public_before = with_pgvector.scalar(PUBLIC_RELATIONS)
    output = tmp_path / "bench.json"

    code = main(small_run(with_pgvector.dsn, "--json", "--output", str(output),
                          project=project(tmp_path)))

    assert code == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert captured.err == ""  # stderr is no terminal here: no progress either
    printed = json.loads(captured.out)
    report: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    assert printed == report
    metrics = report["metrics"]
    assert list(metrics) == SMALL_RUN_METRICS
    assert {measure.family_of(name) for name in metrics} == set(bench.MEASUREMENTS)
    for name, metric in metrics.items():
        assert metric["count"] == SAMPLES, name
        assert 0 < metric["p50_ms"] <= metric["p95_ms"] <= metric["p99_ms"], name
    assert (metrics["search_user_100"]["class"], metrics["search_user_10"]["class"]) == \
        ("~100", "~10")
    assert metrics["list_user_10"]["class"] == "~10"
    for name in SEARCHES:
        m = metrics[name]
        assert m["limit"] == 80
        for k in (10, 80):
            assert 0.0 <= m[f"recall_at_{k}_min"] <= m[f"recall_at_{k}_mean"] <= 1.0, name
        assert m["full_pages"] + m["short_results"] == SAMPLES, name
        assert m["rows_returned_mean"] <= m["rows_expected_mean"], name
    # The expected rows come from the exact search in the database, so they show the rows
    # each user really has: the zipf counts, loaded as computed.
    for name, rows in EXPECTED_ROWS.items():
        assert metrics[name]["rows_expected_mean"] == pytest.approx(rows), name
    for name in ("list_user_100", "list_user_10", "get_by_id"):
        assert metrics[name]["rows_returned_mean"] == metrics[name]["rows_expected_mean"]
        assert metrics[name]["full_pages"] == SAMPLES, name
    assert metrics["search_user_10"]["users"] == 1 and metrics["search_user_100"]["users"] == 4
    # 2-3 edges out of every memory: one hop reaches them, two hops reach more.
    assert 2.0 <= metrics["traverse_1hop"]["neighbours_mean"] <= 3.0
    assert metrics["traverse_2hop"]["neighbours_mean"] > metrics["traverse_1hop"][
        "neighbours_mean"]
    assert_thresholds_consistent(report)
    assert list(report["thresholds"]) == ["insert", "search_user_100", "search_user_10",
                                          "get_by_id", "traverse_1hop", "traverse_2hop"]
    assert report["passed"] is True
    assert {v["limit_ms"] for v in report["thresholds"].values()} == {60_000}
    # The raw latencies stay out of the document (--plot keeps them in the run only).
    assert "latencies" not in json.dumps(report)
    assert list(report["plans"]) == ["search_user_100", "search_user_10", "search_unfiltered"]
    for name, plan in report["plans"].items():
        assert plan["exact_plan_indexes"] == [], name  # the ground truth used no index
        assert plan["custom"] and plan["generic"] and plan["used"] in ("custom", "generic")
        if "memories_vector_idx" not in plan["custom_plan_indexes"] + \
                plan["generic_plan_indexes"]:
            # Neither plan the timed runs can get touches the ANN index: they find the
            # rows by btree or sequential scan and sort all their exact distances.
            assert metrics[name]["recall_at_80_mean"] == 1.0, name
            assert metrics[name]["full_pages"] == SAMPLES, name
    parameters = report["parameters"]
    assert (parameters["rows"], parameters["users"], parameters["dims"]) == (300, 5, 16)
    assert parameters["users_distribution"] == "zipf"
    assert (parameters["limit"], parameters["list_limit"]) == (80, 100)
    assert parameters["index"]["method"] == "hnsw"
    assert parameters["ef_search"] == 200  # hnswEfSearch's default
    assert parameters["pgvector_version"] and parameters["server_version"]
    assert parameters["compare"] is None and "compare" not in report
    assert [c["class"] for c in report["users"]["classes"]] == ["~100", "~10"]
    assert report["users"]["top_user_memories"] == 130
    assert report["load"]["relationships"] > 300  # 2-3 edges per memory
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0
    assert with_pgvector.scalar(ROLES_LEFT) == 0
    assert with_pgvector.scalar(PUBLIC_RELATIONS) == public_before


def test_bench_text_report(with_pgvector: TestDatabase, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(small_run(with_pgvector.dsn, "--samples", "3", project=project(tmp_path)))

    out = capsys.readouterr().out
    assert code == 0
    for name in SMALL_RUN_METRICS:
        assert any(line.startswith(name + " ") for line in out.splitlines()), name
    assert "recall@10" in out and "recall@80" in out and "full 3/3" in out
    assert "rows/s" in out and "EXPLAIN ANALYZE" in out
    assert "measured as: --as app, throwaway role mem0_bench_" in out
    assert "class ~100" in out and "class ~10 " in out
    assert "threshold (p95)" in out and "all thresholds passed" in out
    for setting in ("benchInsertMs", "benchSearchMs", "benchGetMs", "benchTraverseMs"):
        assert setting in out


def test_bench_sizes_from_the_stack_with_markdown_and_plot(
        with_pgvector: TestDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # No --rows or --users: the stack's benchRows and benchUsers.
    directory = project(tmp_path, benchRows=200, benchUsers=4, dimensions=16)
    markdown, plot = tmp_path / "bench.md", tmp_path / "bench.png"

    code = main(["bench", "--stack", "dev", "--project-dir", str(directory), "--dsn",
                 with_pgvector.dsn, "--samples", str(SAMPLES), "--json", "--compare",
                 "mem0-default", "--markdown", str(markdown), "--plot", str(plot)])

    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    parameters = report["parameters"]
    assert (parameters["rows"], parameters["users"], parameters["dims"]) == (200, 4, 16)
    text = markdown.read_text(encoding="utf-8")
    assert "| metric | p50 | p95 | p99 | recall@10 | recall@80 | rows / expected | limit " \
           "| result |" in text
    lines = text.splitlines()
    for name, metric in report["metrics"].items():
        row = next(line for line in lines if line.startswith(f"| {name} |"))
        assert f"| {metric['p95_ms']:.3f} |" in row, row
        assert ("| pass |" in row) == (name in report["thresholds"]), row
    # The comparison: one row per metric mem0's table has, both p95s and their ratio.
    compare = report["compare"]
    heading = lines.index("## Stack vs mem0-default (same rows, same queries, interleaved)")
    for name, theirs in compare["metrics"].items():
        row = next(line for line in lines[heading:] if line.startswith(f"| {name} |"))
        assert f"| {report['metrics'][name]['p95_ms']:.3f} | {theirs['p95_ms']:.3f} " \
               f"| {compare['p95_ratio'][name]:.2f}x |" in row, row
    assert "200 memories over 4 users (zipf), 16 dimensions" in text
    assert "**Measured as**: throwaway role `mem0_bench_" in text
    assert "## Plans (one query per size class)" in text
    assert "every threshold passed" in text and "| memories |" in text
    assert "| mem0-default memories |" in text
    image = plot.read_bytes()
    assert image[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", image[16:24])  # the IHDR chunk follows the signature
    assert image[12:16] == b"IHDR" and width >= 600 and height >= 400
    assert 10_000 < len(image) < 2_000_000


class FakeClock:
    """measure's `time`: perf_counter advances 5 ms a call, so every timed run takes 5 ms."""

    def __init__(self) -> None:
        self.calls = 0

    def perf_counter(self) -> float:
        self.calls += 1
        return self.calls * 0.005


def test_bench_exits_1_and_names_the_limit_a_p95_exceeds(
        with_pgvector: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Timing cannot be relied on to breach a limit (a get by id takes microseconds here): every
    # run takes 5 ms by the clock instead. benchGetMs 1 fails; benchTraverseMs 5 is exactly met.
    monkeypatch.setattr(measure, "time", FakeClock())
    directory = project(tmp_path, benchGetMs=1, benchTraverseMs=5)
    markdown = tmp_path / "bench.md"
    public_before = with_pgvector.scalar(PUBLIC_RELATIONS)

    code = main(small_run(with_pgvector.dsn, "--json", "--markdown", str(markdown),
                          project=directory))

    captured = capsys.readouterr()
    assert code == bench.EXIT_THRESHOLD == 1
    report = json.loads(captured.out)
    assert {name: m["p95_ms"] for name, m in report["metrics"].items()} == \
        dict.fromkeys(SMALL_RUN_METRICS, 5.0)
    assert_thresholds_consistent(report)
    assert report["passed"] is False
    assert [n for n, v in report["thresholds"].items() if not v["passed"]] == ["get_by_id"]
    assert report["thresholds"]["traverse_2hop"] == {
        "limit_ms": 5, "p95_ms": 5.0, "passed": True, "setting": "benchTraverseMs"}
    assert "get_by_id: p95 5.000 ms is over the limit of 1 ms (stack setting benchGetMs)" \
        in captured.err
    assert "benchTraverseMs" not in captured.err and "insert" not in captured.err
    assert "| get_by_id |" in markdown.read_text(encoding="utf-8")
    assert "**FAIL**" in markdown.read_text(encoding="utf-8")
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0
    assert with_pgvector.scalar(PUBLIC_RELATIONS) == public_before


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bench_draws_progress_bars_on_a_terminal(
        with_pgvector: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)

    assert main(small_run(with_pgvector.dsn, "--samples", "3", "--json",
                          project=project(tmp_path))) == 0

    shown = terminal.getvalue()
    assert "\r[bench " in shown  # redrawn in place
    for step in ("loading memories", "building indexes", "creating role mem0_bench_",
                 *(f"measuring {name}" for name in bench.MEASUREMENTS),
                 "exact search_user (2 size classes) (ground truth)"):
        assert f"{step}" in shown, step
    assert "] 100% 300/300" in shown  # the load's bar, complete
    assert "] 100% 8/8" in shown  # a measurement's: 3 timed runs after 5 untimed
    assert "] 100% 11/11" in shown  # the user searches': 3 per class after 5 untimed
    assert "dropping schema mem0_bench_" in shown and "dropping role mem0_bench_" in shown
    json.loads(capsys.readouterr().out)  # stdout holds the document alone


def test_bench_drops_its_schema_when_interrupted(
        with_pgvector: TestDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "build_indexes", interrupt)  # after the load, mid-run

    assert main(small_run(with_pgvector.dsn)) == bench.EXIT_INTERRUPTED
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0
    assert with_pgvector.scalar(ROLES_LEFT) == 0


def test_bench_without_pgvector_cannot_run(database: TestDatabase,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(small_run(database.dsn)) == 2
    assert "CREATE EXTENSION vector" in capsys.readouterr().err
    assert database.scalar(SCRATCH_LEFT) == 0


def test_bench_without_a_database_names_both_ways_to_give_one(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(bench.DSN_ENV, raising=False)

    code = main(["bench", "--stack", "dev", "--project-dir", str(REPO)])

    err = capsys.readouterr().err
    assert code == 2
    assert "--dsn" in err and "MEM0_DATABASE_URL" in err


@pytest.mark.parametrize(("arguments", "named"), [
    (["--rows", "10", "--users", "20"], "--users"),
    (["--rows", "50"], "--users: 100 (the stack's benchUsers) is not allowed with --rows 50"),
    (["--dims", "5000"], "--dims"),  # over halfvec's 4000
    (["--plot", "/nonexistent-dir/bench.png"], "--plot"),
    (["--markdown", "/nonexistent-dir/bench.md"], "--markdown"),
    (["--embedder", "minilm", "--dims", "64"],
     "--dims: 64 is not allowed with --embedder minilm; allowed: 384"),
])
def test_bench_refuses_bad_arguments_before_connecting(
        arguments: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on port 1: a connection attempt would fail differently.
    dsn = "postgresql://nobody@127.0.0.1:1/none"

    code = main(["bench", "--stack", "dev", "--project-dir", str(REPO), "--dsn", dsn,
                 *arguments])

    err = capsys.readouterr().err
    assert code == 2
    assert named in err and "allowed" in err


def test_bench_argument_ranges_name_the_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--stack", "dev", "--rows", "0"])

    assert exit_.value.code == 2
    assert "--rows" in capsys.readouterr().err


@pytest.mark.parametrize(("arguments", "allowed"), [
    (["--as", "superuser"], "allowed: app, owner"),
    (["--users-distribution", "pareto"], "allowed: uniform, zipf"),
    (["--compare", "mem0"], "allowed: mem0-default"),
    (["--embedder", "bert"], "allowed: synthetic, minilm"),
])
def test_bench_choices_name_the_argument_and_the_allowed_values(
        arguments: list[str], allowed: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--stack", "dev", "--project-dir", str(REPO), *arguments])

    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert f"argument {arguments[0]}: {arguments[1]!r} is not allowed; {allowed}" in err


def test_bench_compare_refuses_what_mem0_cannot_index_before_connecting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A stack without an ANN index may have 3000 dimensions; mem0's own table cannot.
    directory = project(tmp_path, vectorIndexMethod="none", dimensions=3000)

    code = main(["bench", "--stack", "dev", "--project-dir", str(directory), "--dsn",
                 "postgresql://nobody@127.0.0.1:1/none", "--compare", "mem0-default"])

    err = capsys.readouterr().err
    assert code == 2
    assert "--compare: mem0-default is not allowed with 3000 dimensions; allowed: 1 to 2000" \
        in err


def test_bench_refuses_the_bound_app_role_of_an_org_stack_before_connecting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Its policies admit writes only into the user's organisations; the synthetic memories
    # belong to none, so the load would fail half-way on a row-level security error.
    directory = project(tmp_path, tenancy="org", appRoleIdentity="required")

    code = main(["bench", "--stack", "dev", "--project-dir", str(directory), "--dsn",
                 "postgresql://nobody@127.0.0.1:1/none"])

    err = capsys.readouterr().err
    assert code == 2
    assert "--as app: stack 'dev' has tenancy 'org' with appRoleIdentity 'required'" in err
    assert "allowed: --as owner" in err


# --- as the app role ------------------------------------------------------------------------

def hiding_access(hidden: str) -> Any:
    """role.table_access with the app role's SELECT rule replaced by one that shows only the
    rows of user `hidden` (nobody's): what the measured statements see must follow it."""
    original = role.table_access

    def patched(settings: Any, *args: Any) -> Any:
        accesses = original(settings, *args)
        for access in accesses:
            rules = access.rules[settings.app_role]
            rules["SELECT"] = replace(rules["SELECT"], using=f"(user_id = '{hidden}'::text)")
        return accesses

    return patched


@pytest.mark.parametrize("as_role", ["app", "owner"])
def test_the_measured_statements_run_under_the_app_roles_row_level_security(
        as_role: str, with_pgvector: TestDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # The app role's policy, from the model's single source, now hides every row: as the
    # app role every read finds nothing; as the owner (no row-level security) nothing
    # changes. mem0's own table, beside it, is not the app role's and shows every row.
    monkeypatch.setattr(role, "table_access", hiding_access("nobody"))

    report = run_json(with_pgvector.dsn, capsys, "--as", as_role, "--compare", "mem0-default",
                      project=project(tmp_path))

    metrics, theirs = report["metrics"], report["compare"]["metrics"]
    who = report["parameters"]["measured_as"]
    if as_role == "app":
        assert who["mode"] == "app"
        assert who["current_user"] == who["role"] == report["parameters"]["scratch_schema"]
        assert who["policies"]["memories"]["SELECT"]["using"] == "(user_id = 'nobody'::text)"
        for name in (*SEARCHES, "get_by_id", "list_user_100", "list_user_10"):
            assert metrics[name]["rows_returned_mean"] == 0.0, name
        # The exact search is the app role's too: it sees as little.
        assert metrics["search_user_100"]["rows_expected_mean"] == 0.0
        assert metrics["get_by_id"]["short_results"] == SAMPLES
        assert metrics["list_user_10"]["short_results"] == SAMPLES
        # The relationships' SELECT rule was replaced too: the walk finds no edge.
        assert metrics["traverse_1hop"]["neighbours_mean"] == 0.0
    else:
        assert who["mode"] == "owner" and who["role"] != report["parameters"]["scratch_schema"]
        assert "policies" not in who
        for name, rows in EXPECTED_ROWS.items():
            assert metrics[name]["rows_expected_mean"] == pytest.approx(rows), name
        assert metrics["get_by_id"]["full_pages"] == SAMPLES
    for name in ("search_user_100", "get_by_id", "list_user_10"):
        assert theirs[name]["rows_returned_mean"] > 0, name
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0
    assert with_pgvector.scalar(ROLES_LEFT) == 0


def test_as_the_app_role_the_plans_apply_its_policy_and_its_settings_are_set(
        with_pgvector: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # appRoleIdentity optional: a policy the plans show (the default, trusted, is `true`,
    # which the planner drops: the next test).
    app = run_json(with_pgvector.dsn, capsys, "--samples", "5", "--compare", "mem0-default",
                   project=project(tmp_path, appRoleIdentity="optional"))
    owner = run_json(with_pgvector.dsn, capsys, "--samples", "5", "--as", "owner",
                     project=project(tmp_path))

    # The app role's optional-identity policy: an initplan reads the identity once, and the
    # filter lets every row through while it is unset.
    for name, plan in app["plans"].items():
        assert any("InitPlan" in line for line in plan["custom_plan"]), name
        assert any("IS NULL" in line and "Filter:" in line for line in plan["custom_plan"]), \
            name
        assert "InitPlan" in plan["custom"]
    for name, plan in owner["plans"].items():
        assert not any("InitPlan" in line for line in plan["custom_plan"]), name
    # Set after SET ROLE and read back from the app role's session: the stack's ef_search;
    # mem0's table is searched with pgvector's own default.
    assert app["parameters"]["session_settings"]["hnsw.ef_search"] == "200"
    assert app["compare"]["session_settings"]["hnsw.ef_search"] == "40"
    assert app["compare"]["session_settings"]["hnsw.iterative_scan"] == "off"
    who = app["parameters"]["measured_as"]
    assert who["stands_for"] == "mem0_app"
    assert set(who["policies"]) == {"memories", "memory_relationships"}
    assert who["grants"]["memories"] == ["SELECT", "INSERT", "UPDATE", "DELETE"]
    assert who["identity"].startswith("not set (appRoleIdentity optional")



def test_as_the_trusted_app_role_mem0s_filter_is_an_index_condition(
        with_pgvector: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The default appRoleIdentity trusted: the app role's policy is `true`, no plan
    carries a policy, and the small users' search is planned on mem0's own expression
    index, as on a table without row-level security."""
    app = run_json(with_pgvector.dsn, capsys, "--samples", "5", project=project(tmp_path))
    who = app["parameters"]["measured_as"]
    assert who["policies"]["memories"]["SELECT"]["using"] == "true"
    for name, plan in app["plans"].items():
        assert not any("InitPlan" in line for line in plan["custom_plan"]), name
    # Either index that leads with mem0's user expression (the pair index does too).
    assert {"memories_user_id_idx", "memories_user_agent_idx"} & set(
        app["plans"]["search_user_10"]["custom_plan_indexes"])


def test_with_required_identity_each_statement_names_its_user(
        with_pgvector: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # appRoleIdentity required: the app role sees only the rows of the user its session
    # names. Every search, list and get still finds the user's rows, so the bench named the
    # user before each; the unfiltered search, too, sees that user's rows only.
    directory = project(tmp_path, appRoleIdentity="required")

    report = run_json(with_pgvector.dsn, capsys, "--compare", "mem0-default",
                      project=directory)

    metrics, theirs = report["metrics"], report["compare"]["metrics"]
    assert report["parameters"]["measured_as"]["identity"].startswith("mem0.user_id set")
    for name in ("search_user_100", "search_user_10", "list_user_100", "list_user_10",
                 "get_by_id"):
        assert metrics[name]["rows_expected_mean"] == pytest.approx(EXPECTED_ROWS[name]), name
        assert metrics[name]["rows_returned_mean"] == metrics[name]["rows_expected_mean"]
    assert metrics["insert"]["count"] == SAMPLES  # its WITH CHECK passed for every row
    # No user holds 80 memories but the first: the unfiltered page is the user's own.
    assert metrics["search_unfiltered"]["rows_expected_mean"] < 80
    assert theirs["search_unfiltered"]["rows_expected_mean"] == 80.0  # mem0's own truth
    assert with_pgvector.scalar(ROLES_LEFT) == 0


def test_a_role_that_cannot_create_roles_is_refused_before_the_load_unless_as_owner(
        with_pgvector: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    name = f"plain_{with_pgvector.name}"  # named after the database: its teardown drops it
    with with_pgvector.connect() as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'bench'")
        conn.execute(f"GRANT CREATE ON DATABASE {with_pgvector.name} TO {name}")
    dsn = with_pgvector.server.dsn_for(with_pgvector.name, user=name, password="bench")
    directory = project(tmp_path)

    assert main(small_run(dsn, project=directory)) == 2
    err = capsys.readouterr().err
    assert "CREATEROLE" in err and "--as owner" in err
    assert "loading" not in err and with_pgvector.scalar(SCRATCH_LEFT) == 0

    report = run_json(dsn, capsys, "--as", "owner", "--samples", "3", project=directory)
    assert report["parameters"]["measured_as"] == {
        "mode": "owner", "role": name,
        "row_level_security": "none: the connecting role owns the scratch tables, which have "
                              "no row-level security", "identity": "not set"}


def test_compare_builds_mem0s_own_table_and_reports_both_sides(
        with_pgvector: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, Any] = {}
    build = run.build_mem0_table

    def inspect(conn: psycopg.Connection[Any], n: Any, progress: Any) -> dict[str, Any]:
        built = build(conn, n, progress)
        table = built["table"]
        seen["columns"] = conn.execute(
            "SELECT attname::text, pg_catalog.format_type(atttypid, atttypmod), attnotnull"
            " FROM pg_catalog.pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum", (table,)).fetchall()
        seen["indexes"] = [row[0] for row in conn.execute(
            "SELECT pg_catalog.pg_get_indexdef(indexrelid) FROM pg_catalog.pg_index"
            " WHERE indrelid = %s::regclass ORDER BY 1", (table,)).fetchall()]
        seen["rows"] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        seen["triggers"] = conn.execute("SELECT count(*) FROM pg_catalog.pg_trigger"
                                        " WHERE tgrelid = %s::regclass", (table,)).fetchone()
        return built

    monkeypatch.setattr(run, "build_mem0_table", inspect)
    public_before = with_pgvector.scalar(PUBLIC_RELATIONS)

    report = run_json(with_pgvector.dsn, capsys, "--compare", "mem0-default",
                      project=project(tmp_path))

    # Exactly mem0 2.2.1's create_col: three columns, a primary key, its hnsw (pgvector's
    # defaults, cosine) and its GIN keyword index; no trigger.
    assert seen["columns"] == [("id", "uuid", True), ("vector", "public.vector(16)", False),
                               ("payload", "jsonb", False)]
    schema = report["compare"]["schema"]
    assert schema == report["parameters"]["scratch_schema"] + "_mem0"
    # (The catalog qualifies what the bench's empty search_path cannot see unqualified.)
    assert seen["indexes"] == sorted([
        f"CREATE INDEX memories_hnsw_idx ON {schema}.memories USING hnsw "
        "(vector public.vector_cosine_ops)",
        f"CREATE INDEX memories_text_lemmatized_idx ON {schema}.memories USING gin "
        "(to_tsvector('simple'::regconfig, (payload ->> 'text_lemmatized'::text)))",
        f"CREATE UNIQUE INDEX memories_pkey ON {schema}.memories USING btree (id)"])
    assert seen["rows"] == (300,) and seen["triggers"] == (0,)
    compare = report["compare"]
    assert compare["rows_copied"] == 300
    stack_only = {"traverse_1hop", "traverse_2hop"}
    assert list(compare["metrics"]) == [m for m in SMALL_RUN_METRICS if m not in stack_only]
    assert list(compare["p95_ratio"]) == list(compare["metrics"])
    for name, theirs in compare["metrics"].items():
        assert theirs["count"] == SAMPLES, name
        ours = report["metrics"][name]
        assert compare["p95_ratio"][name] == round(theirs["p95_ms"] / ours["p95_ms"], 3)
        # The same queries on the same rows: the same exact answers.
        if "rows_expected_mean" in ours:
            assert theirs["rows_expected_mean"] == ours["rows_expected_mean"], name
    assert list(compare["plans"]) == list(report["plans"])
    assert compare["measured_as"] != report["parameters"]["measured_as"]["role"]
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0  # both schemas
    assert with_pgvector.scalar(ROLES_LEFT) == 0
    assert with_pgvector.scalar(PUBLIC_RELATIONS) == public_before


def test_the_text_report_puts_mem0s_figures_under_the_stacks(
        with_pgvector: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(small_run(with_pgvector.dsn, "--samples", "3", "--compare", "mem0-default",
                          project=project(tmp_path)))

    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert "compare: mem0-default" in out and "hnsw.ef_search=40" in out
    for name in SMALL_RUN_METRICS:
        row = next(i for i, line in enumerate(lines) if line.startswith(name + " "))
        assert " stack " in lines[row], lines[row]
        if name.startswith("traverse"):
            continue
        assert lines[row + 1].lstrip().startswith("mem0 "), lines[row + 1]
        assert "p95 mem0/stack " in lines[row + 1] and lines[row + 1].endswith("x")
    assert "  mem0-default: custom plan " in out


@pytest.mark.parametrize("failure", [KeyboardInterrupt, psycopg.errors.QueryCanceled])
def test_the_role_and_both_schemas_are_dropped_when_a_measurement_fails(
        failure: type[BaseException], with_pgvector: TestDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []

    def fail(sides: Any, *args: Any) -> Any:
        # Mid-run: the role exists and holds policies, the sessions are open as it.
        seen.append(sides[0].conn.execute("SELECT current_user::text").fetchone())
        raise failure("stop")

    monkeypatch.setattr(run, "run_measurements", fail)
    public_before = with_pgvector.scalar(PUBLIC_RELATIONS)

    code = main(small_run(with_pgvector.dsn, "--compare", "mem0-default",
                          project=project(tmp_path)))

    assert code == (bench.EXIT_INTERRUPTED if failure is KeyboardInterrupt else 2)
    assert seen and seen[0][0].startswith("mem0_bench_")
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0
    assert with_pgvector.scalar(ROLES_LEFT) == 0
    assert with_pgvector.scalar(PUBLIC_RELATIONS) == public_before


# --- the stack's real tables ----------------------------------------------------------------

TABLES = ("SELECT c.relname::text FROM pg_catalog.pg_class c WHERE c.relnamespace ="
          " 'public'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1")


def public_snapshot(database: TestDatabase) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of the content of every table in schema public (as the
    superuser, so row-level security hides nothing)."""
    snapshot: dict[str, tuple[int, str]] = {}
    with database.connect() as conn:
        for (table,) in conn.execute(TABLES).fetchall():
            row = conn.execute(psycopg.sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
                " FROM public.{} AS t").format(psycopg.sql.Identifier(table))).fetchone()
            assert row is not None
            snapshot[table] = (row[0], row[1])
    return snapshot


def test_bench_and_the_stack_benchmark_leave_the_real_tables_as_they_were(
        make_stack, database: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The stack's real tables, deployed on the test database (target postgres), with rows.
    make_stack("dev", dimensions=16).up().raise_for_error()
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with database.connect() as conn:
        for number, memory_id in enumerate(ids):
            conn.execute("INSERT INTO public.memories (id, vector, payload) VALUES (%s, %s, %s)",
                         (memory_id, "[" + ",".join(["0.25"] * 16) + "]",
                          json.dumps({"data": f"real memory {number}", "user_id": "alice"})))
        conn.execute("INSERT INTO public.memory_relationships (source_memory_id,"
                     " target_memory_id, relationship_type, strength, user_id)"
                     " VALUES (%s, %s, 'follows', 0.5, 'alice')", (ids[0], ids[1]))
    before = public_snapshot(database)
    relations = database.scalar(PUBLIC_RELATIONS)
    assert before["memories"][0] == 3 and before["memory_history"][0] == 3
    assert before["memory_relationships"][0] == 1

    code = main(small_run(database.dsn, "--json", project=project(tmp_path)))
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    # What the post-deploy checks call, with the deployed stack's own settings.
    settings = stack_settings(database, "dev", dimensions=16, benchRows=200, benchUsers=4,
                              **ROOMY)
    report = bench.run_stack_benchmark(database.dsn, settings)

    assert public_snapshot(database) == before
    assert database.scalar(PUBLIC_RELATIONS) == relations
    assert database.scalar(SCRATCH_LEFT) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # no output of its own
    parameters = report["parameters"]
    assert (parameters["rows"], parameters["users"], parameters["dims"]) == (200, 4, 16)
    assert parameters["samples"] == bench.STACK_SAMPLES
    assert parameters["target"] == "postgres"
    assert_stack_benchmark(report)
    assert database.scalar(ROLES_LEFT) == 0


def assert_stack_benchmark(report: dict[str, Any]) -> None:
    """The post-deploy check's run: uniform users (one class: 50 memories each), as the
    app role, thresholds judged."""
    assert report["parameters"]["users_distribution"] == bench.STACK_DISTRIBUTION == "uniform"
    who = report["parameters"]["measured_as"]
    assert who["mode"] == "app" and who["current_user"] == who["role"]
    assert list(report["metrics"]) == ["insert", "search_user_100", "search_unfiltered",
                                       "get_by_id", "list_user_100", "traverse_1hop",
                                       "traverse_2hop"]
    # The trusted app role's policy is `true`: the planner drops it, no plan reads an
    # identity.
    assert who["policies"]["memories"]["SELECT"]["using"] == "true"
    assert not any(any("InitPlan" in line for line in plan["custom_plan"])
                   for plan in report["plans"].values())
    assert_thresholds_consistent(report)
    assert report["passed"] is True


def test_the_stack_benchmark_measures_as_the_app_role(
        with_pgvector: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    settings = stack_settings(with_pgvector, "dev", dimensions=16, benchRows=200,
                              benchUsers=4, **ROOMY)

    report = bench.run_stack_benchmark(with_pgvector.dsn, settings)

    assert_stack_benchmark(report)
    assert report["parameters"]["samples"] == bench.STACK_SAMPLES
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0
    assert with_pgvector.scalar(ROLES_LEFT) == 0


def test_the_stack_benchmark_raises_bench_error_when_it_cannot_run(
        database: TestDatabase) -> None:
    settings = stack_settings(database, "dev", dimensions=16, benchRows=200, benchUsers=4)

    with pytest.raises(bench.BenchError, match="CREATE EXTENSION vector"):
        bench.run_stack_benchmark(database.dsn, settings)  # no pgvector in this database
    with pytest.raises(bench.BenchError, match="could not connect"):
        bench.run_stack_benchmark("postgresql://nobody@127.0.0.1:1/none", settings)
    typescript = stack_settings(database, "dev", clientProfile="typescript")
    with pytest.raises(bench.BenchError, match="clientProfile"):
        bench.run_stack_benchmark(database.dsn, typescript)
    with database.connect() as conn:
        conn.execute("CREATE EXTENSION vector")
        name = f"plain_{database.name}"  # named after the database: its teardown drops it
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'bench'")
        conn.execute(f"GRANT CREATE ON DATABASE {database.name} TO {name}")
    plain = database.server.dsn_for(database.name, user=name, password="bench")
    with pytest.raises(bench.BenchError, match="CREATEROLE"):
        bench.run_stack_benchmark(plain, settings)
    assert database.scalar(SCRATCH_LEFT) == 0


def test_real_text_memories_and_queries_through_minilm(
        with_pgvector: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """--embedder minilm: persona texts embedded by all-MiniLM-L6-v2 (384 dimensions)
    and copied in; the queries are texts the users never stored, and mem0's searches
    find full pages among each user's real memories."""
    code = main(["bench", "--stack", "dev", "--project-dir", str(project(tmp_path)),
                 "--dsn", with_pgvector.dsn, "--rows", "300", "--users", "5",
                 "--samples", str(SAMPLES), "--embedder", "minilm", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    parameters, load, metrics = report["parameters"], report["load"], report["metrics"]
    assert (parameters["embedder"], parameters["dims"]) == ("minilm", 384)
    assert parameters["data_model"].startswith("real text")
    assert load["rows"] == 300 and load["held_out_queries"] == 5 * 3
    assert 0 < load["embedding_seconds"] <= load["seconds"]
    for name, rows in EXPECTED_ROWS.items():
        assert metrics[name]["rows_returned_mean"] == pytest.approx(rows), name
    # Real neighbours, exact enough: the stack's plans are exact for these small users.
    assert metrics["search_user_10"]["recall_at_10_mean"] == 1.0
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0


def test_pgvector_adapters_find_the_type_in_extensions_with_an_empty_search_path(
        database: TestDatabase) -> None:
    """Supabase's layout: pgvector in schema `extensions`, which the project's sessions
    (search_path '') cannot see by name; `vectors.register` finds it qualified, so a
    pgvector.Vector binds as the type and a vector column loads as one."""
    with database.connect() as conn:
        conn.execute("CREATE SCHEMA extensions")
        conn.execute("CREATE EXTENSION vector WITH SCHEMA extensions")
    with connect(database.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.ProgrammingError):
            register_vector(conn)  # the package's own lookup by the bare name
        oid = vectors.register(conn, "extensions")
        row = conn.execute("SELECT %s::extensions.vector, pg_catalog.pg_typeof(%s)::oid",
                           (Vector([1.5, -2.0]), Vector([0.25]))).fetchone()
        assert row is not None and row[0].to_list() == [1.5, -2.0] and row[1] == oid
        with pytest.raises(vectors.VectorTypeMissing, match="WITH SCHEMA public"):
            vectors.register(conn, "public")
