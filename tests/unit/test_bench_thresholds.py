"""The bench's verdict against the stack's p95 limits, without a database."""

from __future__ import annotations

from typing import Any

import pytest

from components import bench
from components.bench.measure import MEASUREMENTS
from components.bench.thresholds import LIMITS, Limit, all_passed, evaluate, failures
from components.settings import BenchThresholds, parse_settings

LIMITS_MS = BenchThresholds(rows=10_000, users=100, insert_ms=50, search_ms=100, get_ms=10,
                            traverse_ms=150)


def metrics_with(p95: dict[str, float], default: float = 0.5) -> dict[str, dict[str, Any]]:
    """Every measurement's summary, with the p95s given (the rest `default`)."""
    return {name: {"p50_ms": 0.1, "p95_ms": p95.get(name, default), "p99_ms": 1000.0}
            for name in MEASUREMENTS}


def limit_of(limit: Limit) -> int:
    return getattr(LIMITS_MS, limit.field)


def test_the_limited_metrics_are_the_seeds_four_limits_over_the_measurements() -> None:
    assert [limit.metric for limit in LIMITS] == [
        "insert", "search_user_top10", "get_by_id", "traverse_1hop", "traverse_2hop"]
    assert {limit.metric for limit in LIMITS} <= set(MEASUREMENTS)
    assert {limit.setting: limit.field for limit in LIMITS} == {
        "benchInsertMs": "insert_ms", "benchSearchMs": "search_ms", "benchGetMs": "get_ms",
        "benchTraverseMs": "traverse_ms"}


def test_settings_keys_reach_the_limits() -> None:
    settings = parse_settings({"benchInsertMs": 7, "benchSearchMs": 8, "benchGetMs": 9,
                               "benchTraverseMs": 11}, "t")

    verdicts = evaluate(metrics_with({}), settings.bench)

    assert {m: v["limit_ms"] for m, v in verdicts.items()} == {
        "insert": 7, "search_user_top10": 8, "get_by_id": 9, "traverse_1hop": 11,
        "traverse_2hop": 11}


@pytest.mark.parametrize("limit", LIMITS, ids=lambda limit: limit.metric)
@pytest.mark.parametrize(("offset", "passed"), [(-0.001, True), (0.0, True), (0.001, False)],
                         ids=["under", "exactly-at", "over"])
def test_each_metric_against_its_limit(limit: Limit, offset: float, passed: bool) -> None:
    p95 = limit_of(limit) + offset

    verdicts = evaluate(metrics_with({limit.metric: p95}), LIMITS_MS)

    assert verdicts[limit.metric] == {"limit_ms": limit_of(limit), "p95_ms": p95,
                                      "passed": passed, "setting": limit.setting}
    # Only that metric is near its limit: every other one passes.
    assert all(v["passed"] for m, v in verdicts.items() if m != limit.metric)
    assert all_passed(verdicts) is passed
    messages = failures(verdicts)
    if passed:
        assert messages == []
    else:
        assert len(messages) == 1
        assert messages[0].startswith(f"{limit.metric}: p95 {p95:.3f} ms")
        assert f"limit of {limit_of(limit)} ms" in messages[0]
        assert limit.setting in messages[0]


def test_the_unfiltered_search_has_no_limit() -> None:
    verdicts = evaluate(metrics_with({"search_unfiltered_top10": 1e6}), LIMITS_MS)

    assert "search_unfiltered_top10" not in verdicts
    assert all_passed(verdicts)


def test_missing_metrics_are_not_judged() -> None:
    verdicts = evaluate({"get_by_id": {"p95_ms": 11.0}}, LIMITS_MS)

    assert list(verdicts) == ["get_by_id"]
    assert not all_passed(verdicts)


def test_every_failure_has_its_line_and_the_shared_setting_is_named_for_both_hops() -> None:
    verdicts = evaluate(metrics_with({}, default=1e4), LIMITS_MS)

    messages = failures(verdicts)

    assert [m.split(":")[0] for m in messages] == [limit.metric for limit in LIMITS]
    assert sum("benchTraverseMs" in m for m in messages) == 2


def report_with(verdicts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"thresholds": verdicts, "passed": all_passed(verdicts)}


def test_the_command_exits_1_and_names_each_exceeded_limit(
        capsys: pytest.CaptureFixture[str]) -> None:
    verdicts = evaluate(metrics_with({"get_by_id": 12.5, "traverse_2hop": 150.0}), LIMITS_MS)

    code = bench._exit_code(report_with(verdicts))

    err = capsys.readouterr().err
    assert code == bench.EXIT_THRESHOLD == 1
    assert "get_by_id: p95 12.500 ms is over the limit of 10 ms" in err
    assert "benchGetMs" in err
    assert "traverse_2hop" not in err  # exactly at its limit: passed


def test_the_command_exits_0_when_every_limit_holds(capsys: pytest.CaptureFixture[str]) -> None:
    code = bench._exit_code(report_with(evaluate(metrics_with({}), LIMITS_MS)))

    assert code == 0
    assert capsys.readouterr().err == ""
