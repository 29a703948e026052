"""The bench's verdict against the stack's p95 limits, without a database."""

from __future__ import annotations

from typing import Any

import pytest

from components import bench
from components.bench import run
from components.bench.measure import MEASUREMENTS
from components.bench.thresholds import LIMITS, Limit, all_passed, evaluate, failures
from components.settings import BenchThresholds, parse_settings

LIMITS_MS = BenchThresholds(rows=10_000, users=100, insert_ms=50, search_ms=100, get_ms=10,
                            traverse_ms=150)


# A zipf run's metrics: searches and lists once per size class.
METRICS = ("insert", "search_user_10k", "search_user_100", "search_unfiltered", "get_by_id",
           "list_user_10k", "list_user_100", "traverse_1hop", "traverse_2hop")
LIMITED = ("insert", "search_user_10k", "search_user_100", "get_by_id", "traverse_1hop",
           "traverse_2hop")


def metrics_with(p95: dict[str, float], default: float = 0.5) -> dict[str, dict[str, Any]]:
    """Every metric's summary, with the p95s given (the rest `default`)."""
    return {name: {"p50_ms": 0.1, "p95_ms": p95.get(name, default), "p99_ms": 1000.0}
            for name in METRICS}


def limit_of(limit: Limit) -> int:
    return getattr(LIMITS_MS, limit.field)


def test_the_limited_metrics_are_the_seeds_four_limits_over_the_measurements() -> None:
    assert [limit.metric for limit in LIMITS] == [
        "insert", "search_user", "get_by_id", "traverse_1hop", "traverse_2hop"]
    assert {limit.metric for limit in LIMITS} <= set(MEASUREMENTS)
    assert {limit.setting: limit.field for limit in LIMITS} == {
        "benchInsertMs": "insert_ms", "benchSearchMs": "search_ms", "benchGetMs": "get_ms",
        "benchTraverseMs": "traverse_ms"}


def test_settings_keys_reach_the_limits() -> None:
    settings = parse_settings({"benchInsertMs": 7, "benchSearchMs": 8, "benchGetMs": 9,
                               "benchTraverseMs": 11}, "t")

    verdicts = evaluate(metrics_with({}), settings.bench)

    assert {m: v["limit_ms"] for m, v in verdicts.items()} == {
        "insert": 7, "search_user_10k": 8, "search_user_100": 8, "get_by_id": 9,
        "traverse_1hop": 11, "traverse_2hop": 11}
    assert list(verdicts) == list(LIMITED)  # in the metrics' order


@pytest.mark.parametrize("metric", LIMITED)
@pytest.mark.parametrize(("offset", "passed"), [(-0.001, True), (0.0, True), (0.001, False)],
                         ids=["under", "exactly-at", "over"])
def test_each_metric_against_its_limit(metric: str, offset: float, passed: bool) -> None:
    limit = next(lim for lim in LIMITS if lim.covers(metric))
    p95 = limit_of(limit) + offset

    verdicts = evaluate(metrics_with({metric: p95}), LIMITS_MS)

    assert verdicts[metric] == {"limit_ms": limit_of(limit), "p95_ms": p95,
                                "passed": passed, "setting": limit.setting}
    # Only that metric is near its limit: every other one passes (each size class is held
    # to benchSearchMs on its own).
    assert all(v["passed"] for m, v in verdicts.items() if m != metric)
    assert all_passed(verdicts) is passed
    messages = failures(verdicts)
    if passed:
        assert messages == []
    else:
        assert len(messages) == 1
        assert messages[0].startswith(f"{metric}: p95 {p95:.3f} ms")
        assert f"limit of {limit_of(limit)} ms" in messages[0]
        assert limit.setting in messages[0]


@pytest.mark.parametrize("metric", ["search_unfiltered", "list_user_10k", "list_user_100"])
def test_the_unfiltered_search_and_the_lists_have_no_limit(metric: str) -> None:
    verdicts = evaluate(metrics_with({metric: 1e6}), LIMITS_MS)

    assert metric not in verdicts
    assert all_passed(verdicts)


def test_a_family_covers_its_classes_only() -> None:
    search = next(lim for lim in LIMITS if lim.metric == "search_user")

    assert search.covers("search_user") and search.covers("search_user_1k")
    assert not search.covers("search_unfiltered") and not search.covers("search_users")


def test_missing_metrics_are_not_judged() -> None:
    verdicts = evaluate({"get_by_id": {"p95_ms": 11.0}}, LIMITS_MS)

    assert list(verdicts) == ["get_by_id"]
    assert not all_passed(verdicts)


def test_every_failure_has_its_line_and_the_shared_setting_is_named_for_both_hops() -> None:
    verdicts = evaluate(metrics_with({}, default=1e4), LIMITS_MS)

    messages = failures(verdicts)

    assert [m.split(":")[0] for m in messages] == list(LIMITED)
    assert sum("benchTraverseMs" in m for m in messages) == 2


def report_with(verdicts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"thresholds": verdicts, "passed": all_passed(verdicts)}


def test_the_command_exits_1_and_names_each_exceeded_limit(
        capsys: pytest.CaptureFixture[str]) -> None:
    verdicts = evaluate(metrics_with({"get_by_id": 12.5, "traverse_2hop": 150.0}), LIMITS_MS)

    code = run.exit_code(report_with(verdicts))

    err = capsys.readouterr().err
    assert code == bench.EXIT_THRESHOLD == 1
    assert "get_by_id: p95 12.500 ms is over the limit of 10 ms" in err
    assert "benchGetMs" in err
    assert "traverse_2hop" not in err  # exactly at its limit: passed


def test_the_command_exits_0_when_every_limit_holds(capsys: pytest.CaptureFixture[str]) -> None:
    code = run.exit_code(report_with(evaluate(metrics_with({}), LIMITS_MS)))

    assert code == 0
    assert capsys.readouterr().err == ""
