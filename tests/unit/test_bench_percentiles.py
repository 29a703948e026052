"""The bench's percentiles: statistics.quantiles gives the figures the hand-written
interpolation gave (the inclusive definition), also for one and two runs."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest

from components.bench.measure import latency_summary, percentile


def interpolated(ordered: Sequence[float], p: float) -> float:
    """The bench's earlier definition, kept here as the reference."""
    position = (len(ordered) - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@pytest.mark.parametrize("seed", range(50))
def test_the_summary_matches_the_interpolated_definition(seed: int) -> None:
    rng = random.Random(seed)
    latencies = [rng.lognormvariate(0, 1) * 10 for _ in range(rng.randint(2, 400))]
    ordered = sorted(latencies)
    summary = latency_summary(latencies)
    for p in (50, 95, 99):
        assert summary[f"p{p}_ms"] == round(interpolated(ordered, p), 3)
    assert (summary["min_ms"], summary["max_ms"]) == (round(ordered[0], 3),
                                                       round(ordered[-1], 3))
    assert summary["count"] == len(latencies)


def test_one_run_is_every_percentile() -> None:
    assert latency_summary([4.25])["p50_ms"] == latency_summary([4.25])["p99_ms"] == 4.25


def test_the_median_of_an_even_count_interpolates() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0], 95) == pytest.approx(1.95)
