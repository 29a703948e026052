"""`python -m components bench`, run in-process on a small data set against a real PostgreSQL.

Only the shape of the report and the clean-up are asserted: timings are for issue notes,
never for tests. Runs that must pass use a copy of the dev stack whose limits are the largest
allowed (60 s), so a slow machine cannot fail them; the run that must fail a limit replaces
the measurements' clock instead of hoping for a slow query.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from components import bench
from components.bench import measure
from components.cli import main
from tests.conftest import TestDatabase, stack_settings

REPO = Path(__file__).resolve().parents[2]
SAMPLES = 20
SCRATCH_LEFT = r"SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname LIKE 'mem0\_bench\_%'"
PUBLIC_RELATIONS = ("SELECT coalesce(string_agg(relname, ',' ORDER BY relname), '')"
                    " FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOMY = {"benchInsertMs": 60_000, "benchSearchMs": 60_000, "benchGetMs": 60_000,
         "benchTraverseMs": 60_000}


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
    assert list(thresholds) == ["insert", "search_user_top10", "get_by_id", "traverse_1hop",
                                "traverse_2hop"]
    for name, verdict in thresholds.items():
        assert verdict["p95_ms"] == report["metrics"][name]["p95_ms"], name
        assert verdict["passed"] == (verdict["p95_ms"] <= verdict["limit_ms"]), name
        assert verdict["setting"].startswith("bench"), name
    assert report["passed"] == all(v["passed"] for v in thresholds.values())


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
    assert list(metrics) == list(bench.MEASUREMENTS)
    assert list(metrics) == ["insert", "search_user_top10", "search_unfiltered_top10",
                             "get_by_id", "traverse_1hop", "traverse_2hop"]
    for name, metric in metrics.items():
        assert metric["count"] == SAMPLES, name
        assert 0 < metric["p50_ms"] <= metric["p95_ms"] <= metric["p99_ms"], name
    for name in ("search_user_top10", "search_unfiltered_top10"):
        assert 0.0 <= metrics[name]["recall_at_10_mean"] <= 1.0
        assert 0.0 <= metrics[name]["recall_at_10_min"] <= metrics[name]["recall_at_10_mean"]
        assert metrics[name]["rows_returned_mean"] == 10.0  # 60 memories per user
    # 2-3 edges out of every memory: one hop reaches them, two hops reach more.
    assert 2.0 <= metrics["traverse_1hop"]["neighbours_mean"] <= 3.0
    assert metrics["traverse_2hop"]["neighbours_mean"] > metrics["traverse_1hop"][
        "neighbours_mean"]
    assert_thresholds_consistent(report)
    assert report["passed"] is True
    assert {v["limit_ms"] for v in report["thresholds"].values()} == {60_000}
    # The raw latencies stay out of the document (--plot keeps them in the run only).
    assert "latencies" not in json.dumps(report)
    user_plan = report["plans"]["search_user_top10"]
    assert user_plan["exact_plan_indexes"] == []  # the ground truth never used an index
    vector_index = "memories_vector_idx"
    if vector_index not in user_plan["custom_plan_indexes"] + user_plan["generic_plan_indexes"]:
        # Neither plan the timed runs can get touches the ANN index: they find the user's
        # rows by btree or sequential scan and sort all their exact distances.
        assert metrics["search_user_top10"]["recall_at_10_mean"] == 1.0
    else:
        assert metrics["search_user_top10"]["recall_at_10_mean"] >= 0.8
    parameters = report["parameters"]
    assert (parameters["rows"], parameters["users"], parameters["dims"]) == (300, 5, 16)
    assert parameters["index"]["method"] == "hnsw"
    assert parameters["ef_search"] == 100
    assert parameters["pgvector_version"] and parameters["server_version"]
    assert report["load"]["relationships"] > 300  # 2-3 edges per memory
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0
    assert with_pgvector.scalar(PUBLIC_RELATIONS) == public_before


def test_bench_text_report(with_pgvector: TestDatabase, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(small_run(with_pgvector.dsn, "--samples", "3", project=project(tmp_path)))

    out = capsys.readouterr().out
    assert code == 0
    for name in bench.MEASUREMENTS:
        assert name in out
    assert "recall@10" in out and "rows/s" in out and "EXPLAIN ANALYZE" in out
    assert "threshold (p95)" in out and "all thresholds passed" in out
    for setting in ("benchInsertMs", "benchSearchMs", "benchGetMs", "benchTraverseMs"):
        assert setting in out


def test_bench_sizes_from_the_stack_with_markdown_and_plot(
        with_pgvector: TestDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # No --rows or --users: the stack's benchRows and benchUsers.
    directory = project(tmp_path, benchRows=200, benchUsers=4, dimensions=16)
    markdown, plot = tmp_path / "bench.md", tmp_path / "bench.png"

    code = main(["bench", "--stack", "dev", "--project-dir", str(directory), "--dsn",
                 with_pgvector.dsn, "--samples", str(SAMPLES), "--json",
                 "--markdown", str(markdown), "--plot", str(plot)])

    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    parameters = report["parameters"]
    assert (parameters["rows"], parameters["users"], parameters["dims"]) == (200, 4, 16)
    text = markdown.read_text(encoding="utf-8")
    assert "| metric | p50 | p95 | p99 | recall@10 | limit | result |" in text
    for name, metric in report["metrics"].items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        assert f"| {metric['p95_ms']:.3f} |" in row, row
        assert ("| pass |" in row) == (name in report["thresholds"]), row
    assert "200 memories over 4 users, 16 dimensions" in text
    assert "every threshold passed" in text and "| memories |" in text
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
        dict.fromkeys(bench.MEASUREMENTS, 5.0)
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
    for step in ("loading memories", "building indexes", *(f"measuring {name}" for name in
                                                         bench.MEASUREMENTS)):
        assert f"{step}" in shown, step
    assert "] 100% 300/300" in shown  # the load's bar, complete
    assert "] 100% 8/8" in shown  # a measurement's: 3 timed runs after 5 untimed
    assert "dropping schema mem0_bench_" in shown
    json.loads(capsys.readouterr().out)  # stdout holds the document alone


def test_bench_drops_its_schema_when_interrupted(
        with_pgvector: TestDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "_build_indexes", interrupt)  # after the load, mid-run

    assert main(small_run(with_pgvector.dsn)) == bench.EXIT_INTERRUPTED
    assert with_pgvector.scalar(SCRATCH_LEFT) == 0


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
    (["--dims", "3000"], "--dims"),
    (["--plot", "/nonexistent-dir/bench.png"], "--plot"),
    (["--markdown", "/nonexistent-dir/bench.md"], "--markdown"),
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
    assert list(report["metrics"]) == list(bench.MEASUREMENTS)
    assert_thresholds_consistent(report)
    assert report["passed"] is True


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
    assert database.scalar(SCRATCH_LEFT) == 0
