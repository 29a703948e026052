"""The vector index sizing, called directly (test_settings.py covers it through parsing)."""

from __future__ import annotations

import pytest

from components.vectorindex import (
    IndexMeasure,
    IndexMethod,
    VectorIndex,
    dimension_problems,
    index_warnings,
    size_vector_index,
    vector_column_type,
)


def sized(method: IndexMethod = IndexMethod.AUTO, rows: int = 10_000, dims: int = 1536,
          measure: IndexMeasure = IndexMeasure.COSINE, m: int = 0, efc: int = 0,
          lists: int = 0) -> tuple[VectorIndex | None, list[str]]:
    problems: list[str] = []
    return size_vector_index(method, measure, rows, dims, m, efc, lists, problems), problems


def test_auto_is_hnsw_with_the_guides_parameters_and_says_why() -> None:
    index, problems = sized(rows=2_000_000)
    assert problems == [] and index is not None
    assert (index.declared_method, index.method, index.m, index.ef_construction) == (
        "auto", "hnsw", 32, 128)
    assert index.reason == ("vectorIndexMethod=auto with expectedRows=2000000 (over 1M rows: "
                            "hnsw m=32, ef_construction=128)")
    assert (index.opclass, index.opclass_for("halfvec")) == (
        "vector_cosine_ops", "halfvec_cosine_ops")


def test_auto_above_4000_dimensions_builds_none_and_warns() -> None:
    index, problems = sized(dims=4001)
    assert problems == [] and index is not None and index.method == IndexMethod.NONE
    assert dimension_problems(index, 4001, embedded=False) == []
    [warning] = index_warnings(index, 4001)
    assert warning.startswith("dimensions is 4001: more than pgvector can index")


def test_an_invalid_input_leaves_the_index_undecided() -> None:
    problems: list[str] = []
    assert size_vector_index(None, IndexMeasure.COSINE, 1, 1, 0, 0, 0, problems) is None
    assert size_vector_index(IndexMethod.HNSW, IndexMeasure.COSINE, 1, 1, None, 0, 0,
                             problems) is None
    assert problems == []


@pytest.mark.parametrize(("dims", "embedded", "count"), [
    (2000, True, 0), (2001, False, 0), (2001, True, 1), (4001, False, 1)])
def test_dimension_limits_of_an_indexed_stack(dims: int, embedded: bool, count: int) -> None:
    index, _ = sized(IndexMethod.HNSW, dims=dims)
    assert index is not None
    assert len(dimension_problems(index, dims, embedded)) == count


def test_the_column_type_follows_the_method_and_the_dimensions() -> None:
    assert vector_column_type(2001, IndexMethod.HNSW) == "halfvec"
    assert vector_column_type(2001, "ivfflat") == "halfvec"
    assert vector_column_type(2000, IndexMethod.HNSW) == "vector"
    assert vector_column_type(9000, IndexMethod.NONE) == "vector"
