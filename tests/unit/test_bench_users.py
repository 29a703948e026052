"""The bench's users: memories per user (uniform, zipf) and size classes, without a database."""

from __future__ import annotations

import itertools
import math

import pytest

from components.bench.users import (
    SizeClass,
    classes,
    describe,
    pick,
    size_class,
    stride,
    user_counts,
    user_id,
)


@pytest.mark.parametrize(("rows", "users"), [(100_000, 1000), (10_000, 100), (300, 5),
                                             (7, 7), (1, 1), (5, 1), (1000, 999)])
@pytest.mark.parametrize("distribution", ["uniform", "zipf"])
def test_counts_sum_to_rows_and_give_every_user_a_memory(rows: int, users: int,
                                                         distribution: str) -> None:
    counts = user_counts(rows, users, distribution)

    assert len(counts) == users
    assert sum(counts) == rows
    assert min(counts) >= 1
    assert all(a >= b for a, b in itertools.pairwise(counts))  # never grows with rank
    assert user_counts(rows, users, distribution) == counts  # deterministic


def test_zipf_is_skewed_as_one_over_rank() -> None:
    counts = user_counts(100_000, 1000, "zipf")

    # The brief's figures: ~13K for the top user, ~1.3K around rank 10, tens in the tail.
    assert 13_000 <= counts[0] <= 13_500
    assert 1_250 <= counts[9] <= 1_400
    assert 10 <= counts[-1] <= 99
    # 1/r: rank r has about 1/r of the top user's share (the one memory each aside).
    for rank in (2, 10, 100, 1000):
        assert (counts[rank - 1] - 1) == pytest.approx((counts[0] - 1) / rank, abs=1)
    assert counts[0] > 100 * counts[-1] / 2


def test_uniform_spreads_the_remainder_over_the_first_users() -> None:
    assert user_counts(10, 3, "uniform") == [4, 3, 3]
    assert user_counts(100_000, 1000, "uniform") == [100] * 1000


@pytest.mark.parametrize(("rows", "users", "distribution"), [
    (10, 11, "zipf"), (10, 0, "uniform"), (10, 2, "pareto")])
def test_counts_refuse_what_cannot_be(rows: int, users: int, distribution: str) -> None:
    with pytest.raises(ValueError):
        user_counts(rows, users, distribution)


@pytest.mark.parametrize(("count", "label", "key"), [
    (1, "~1", "1"), (3, "~1", "1"), (4, "~10", "10"), (31, "~10", "10"), (32, "~100", "100"),
    (316, "~100", "100"), (317, "~1K", "1k"), (3162, "~1K", "1k"), (3163, "~10K", "10k"),
    (31622, "~10K", "10k"), (31623, "~100K", "100k"), (10**6, "~1M", "1m")])
def test_size_classes_are_decades_split_at_the_half_decade(count: int, label: str,
                                                           key: str) -> None:
    size = size_class(count)

    assert (size.label, size.key) == (label, key)
    assert size.low <= count <= size.high
    assert size.low == 1 or size.low >= math.sqrt(10) ** (2 * size.exponent - 1)
    assert size.high < math.sqrt(10) ** (2 * size.exponent + 1)


def test_classes_of_a_zipf_run_largest_first() -> None:
    counts = user_counts(100_000, 1000, "zipf")

    found = classes(counts)

    assert [c.label for c in found] == ["~10K", "~1K", "~100", "~10"]
    assert sum(len(users) for users in found.values()) == 1000
    for size, users in found.items():
        assert all(size.low <= counts[u] <= size.high for u in users), size
    assert found[SizeClass(4)] == [0, 1, 2, 3]  # 13.2K, 6.6K, 4.4K, 3.3K
    summary = describe(counts, "zipf")
    assert [c["class"] for c in summary["classes"]] == ["~10K", "~1K", "~100", "~10"]
    assert summary["top_user_memories"] == counts[0]
    assert sum(c["memories"] for c in summary["classes"]) == 100_000


def test_pick_spreads_evenly_and_rotates_when_short() -> None:
    assert pick(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert pick([7, 8], 5) == [7, 8, 7, 8, 7]


@pytest.mark.parametrize("rows", [1, 2, 10, 300, 1000, 100_000])
def test_stride_permutes_the_rows(rows: int) -> None:
    step = stride(rows)

    assert sorted((k * step) % rows for k in range(rows)) == list(range(rows))


def test_user_ids() -> None:
    assert user_id(12, uuid_form=False) == "user_12"
    assert user_id(12, uuid_form=True) == "00000000-0000-4000-8000-000000000012"
