"""`python -m components bench`, run in-process on a small data set against a real PostgreSQL.

Only the shape of the report and the clean-up are asserted: timings are for issue notes,
never for tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components import bench
from components.cli import main
from tests.conftest import TestDatabase

REPO = Path(__file__).resolve().parents[2]
SAMPLES = 20
SCRATCH_LEFT = r"SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname LIKE 'mem0\_bench\_%'"
PUBLIC_RELATIONS = ("SELECT coalesce(string_agg(relname, ',' ORDER BY relname), '')"
                    " FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace")


def small_run(dsn: str, *extra: str) -> list[str]:
    return ["bench", "--stack", "dev", "--project-dir", str(REPO), "--dsn", dsn,
            "--rows", "300", "--users", "5", "--dims", "16", "--samples", str(SAMPLES), *extra]


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

    code = main(small_run(with_pgvector.dsn, "--json", "--output", str(output)))

    assert code == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    report: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    assert printed == report
    metrics = report["metrics"]
    assert list(metrics) == list(bench.MEASUREMENTS)
    for name, metric in metrics.items():
        assert metric["count"] == SAMPLES, name
        assert 0 < metric["p50_ms"] <= metric["p95_ms"] <= metric["p99_ms"], name
    for name in ("search_user_top10", "search_unfiltered_top10"):
        assert 0.0 <= metrics[name]["recall_at_10_mean"] <= 1.0
        assert metrics[name]["rows_returned_mean"] == 10.0  # 60 memories per user
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


def test_bench_text_report(with_pgvector: TestDatabase,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(small_run(with_pgvector.dsn, "--samples", "3"))

    out = capsys.readouterr().out
    assert code == 0
    for name in bench.MEASUREMENTS:
        assert name in out
    assert "recall@10" in out and "rows/s" in out and "EXPLAIN ANALYZE" in out


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
    (["--dims", "3000"], "--dims"),
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
