"""The stack's p95 limits (benchInsertMs, benchSearchMs, benchGetMs, benchTraverseMs) against a
run's metrics. Pure: no database, so every edge is unit-tested."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.settings import BenchThresholds

__all__ = ["LIMITS", "Limit", "all_passed", "evaluate", "failures"]


@dataclass(frozen=True)
class Limit:
    metric: str  # a name in MEASUREMENTS; a per-class family covers each of its classes
    setting: str  # the stack key that sets it
    field: str  # its attribute of BenchThresholds

    def covers(self, name: str) -> bool:
        """Whether the limit applies to the metric `name` (search_user covers
        search_user_10k, search_user_10 ...: every user is held to it)."""
        return name == self.metric or name.startswith(self.metric + "_")


# The seed's four limits. The unfiltered search has none: mem0 always filters by a user,
# agent or run, so an unscoped search is the bench's reference point, not a mem0 query.
# Nor has a user's list: the stack has no setting for it.
LIMITS = (
    Limit("insert", "benchInsertMs", "insert_ms"),
    Limit("search_user", "benchSearchMs", "search_ms"),
    Limit("get_by_id", "benchGetMs", "get_ms"),
    Limit("traverse_1hop", "benchTraverseMs", "traverse_ms"),
    Limit("traverse_2hop", "benchTraverseMs", "traverse_ms"),
)


def evaluate(metrics: Mapping[str, Mapping[str, Any]],
             thresholds: BenchThresholds) -> dict[str, dict[str, Any]]:
    """{metric: {limit_ms, p95_ms, passed, setting}} for each limited metric in `metrics`,
    in the metrics' order.

    A p95 exactly at its limit passes: the setting reads "p95 at most N ms". The p95 is the
    report's (rounded to the microsecond), so the verdict matches the figure printed.
    """
    verdicts: dict[str, dict[str, Any]] = {}
    for name, metric in metrics.items():
        limit = next((lim for lim in LIMITS if lim.covers(name)), None)
        if limit is None:
            continue
        limit_ms = getattr(thresholds, limit.field)
        p95 = metric["p95_ms"]
        verdicts[name] = {"limit_ms": limit_ms, "p95_ms": p95, "passed": p95 <= limit_ms,
                          "setting": limit.setting}
    return verdicts


def all_passed(verdicts: Mapping[str, Mapping[str, Any]]) -> bool:
    return all(v["passed"] for v in verdicts.values())


def failures(verdicts: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per exceeded limit: the metric, its p95, the limit, and the key to change."""
    return [f"{metric}: p95 {v['p95_ms']:.3f} ms is over the limit of {v['limit_ms']} ms "
            f"(stack setting {v['setting']})"
            for metric, v in verdicts.items() if not v["passed"]]
