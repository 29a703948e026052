"""The vector index and column type a stack declares, decided from its parsed settings.

`size_vector_index` resolves `vectorIndexMethod: auto` with the seed's sizing guide (hnsw
below pgvector's dimension limits, m and ef_construction by `expectedRows`, ivfflat's
lists by pgvector's guidance), keeps explicit parameters, and reports the rules pgvector
imposes on them; `vector_column_type` says whether the embedding columns are `vector` or
`halfvec`. settings' parser calls both to fill `Settings.vector_index`; the model reads
the result. Nothing here reads config keys by itself: every value comes in as an argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.choice import Choice

__all__ = [
    "HALFVEC_PGVECTOR",
    "MAX_DIMENSIONS",
    "MAX_HALFVEC_INDEXED_DIMENSIONS",
    "MAX_INDEXED_DIMENSIONS",
    "MAX_LISTS",
    "IndexMeasure",
    "IndexMethod",
    "VectorIndex",
    "dimension_problems",
    "index_warnings",
    "size_vector_index",
    "vector_column_type",
]

# pgvector limits: vector columns accept up to 16000 dimensions; hnsw and ivfflat index
# at most 2000 of type vector (32-bit floats) and 4000 of type halfvec (16-bit floats,
# pgvector 0.7.0). An indexed stack with more than 2000 dimensions stores halfvec(N):
# mem0's `vector <=> %s::vector` then resolves to halfvec's operator through pgvector's
# implicit vector -> halfvec cast, and its searches use the halfvec index.
MAX_DIMENSIONS = 16000
MAX_INDEXED_DIMENSIONS = 2000
MAX_HALFVEC_INDEXED_DIMENSIONS = 4000
HALFVEC_PGVECTOR = "0.7.0"
MAX_LISTS = 32768  # pgvector's most ivfflat lists


class IndexMethod(Choice):
    """`vectorIndexMethod`: `auto` is resolved to one of the others before the model sees it."""

    AUTO = "auto"
    HNSW = "hnsw"
    IVFFLAT = "ivfflat"
    NONE = "none"


class IndexMeasure(Choice):
    """`vectorIndexMeasure`: the distance the index serves (mem0 searches with cosine)."""

    COSINE = "cosine"
    L2 = "l2"
    IP = "ip"
    L1 = "l1"


# The methods that build an approximate-nearest-neighbour index.
ANN_METHODS = (IndexMethod.HNSW, IndexMethod.IVFFLAT)


@dataclass(frozen=True)
class VectorIndex:
    """The vector index after `auto` is resolved; `declared_method` keeps what was asked."""

    declared_method: IndexMethod
    method: IndexMethod  # hnsw | ivfflat | none
    measure: IndexMeasure
    m: int
    ef_construction: int
    lists: int
    expected_rows: int
    reason: str  # one line saying why this method and these parameters

    @property
    def opclass(self) -> str:
        return self.opclass_for("vector")

    def opclass_for(self, column_type: str) -> str:
        """pgvector's operator class of the measure for `vector` or `halfvec` columns."""
        return f"{column_type}_{self.measure}_ops"


def vector_column_type(dimensions: int, method: str) -> str:
    """pgvector's type of the embedding columns: halfvec when an hnsw or ivfflat index must
    cover more than MAX_INDEXED_DIMENSIONS (pgvector indexes no more of type vector), else
    vector. A stack without an index keeps full precision at any size."""
    return "halfvec" if method in ANN_METHODS and dimensions > MAX_INDEXED_DIMENSIONS \
        else "vector"


def _auto_hnsw(rows: int) -> tuple[int, int, str]:
    """The seed's sizing guide for hnsw: m, ef_construction and why, by expected rows."""
    if rows < 100_000:
        return 16, 64, "under 100K rows: hnsw m=16, ef_construction=64"
    if rows <= 1_000_000:
        return 16, 64, "100K to 1M rows: hnsw m=16, ef_construction=64"
    return 32, 128, "over 1M rows: hnsw m=32, ef_construction=128"


def _auto_lists(rows: int) -> int:
    """pgvector's guidance for ivfflat: rows / 1000 up to 1M rows, sqrt(rows) above."""
    lists = max(1, rows // 1000) if rows <= 1_000_000 else max(1, math.isqrt(rows))
    return min(lists, MAX_LISTS)


def size_vector_index(declared: IndexMethod | None, measure: IndexMeasure | None,
                      expected_rows: int | None, dimensions: int | None, m: int | None,
                      ef_construction: int | None, lists: int | None,
                      problems: list[str]) -> VectorIndex | None:
    """Resolve `auto` with the sizing guide; explicit parameters (non-zero) always win.

    A None argument is a setting already reported invalid: the index is then None when it
    cannot be decided, and rules that build on the missing value are skipped. Problems
    with the parameters (pgvector's bounds) are appended to `problems`.
    """
    if declared is None or measure is None or expected_rows is None:
        return None
    rows = expected_rows
    if declared == IndexMethod.AUTO:
        method = IndexMethod.HNSW
        auto_m, auto_efc, why = _auto_hnsw(rows)
        reason = f"vectorIndexMethod=auto with expectedRows={rows} ({why})"
    else:
        method, auto_m, auto_efc = declared, 16, 64
        reason = f"vectorIndexMethod={declared}"
    if m is None or ef_construction is None:
        return None  # already reported
    m = m or auto_m
    efc = ef_construction or auto_efc
    lists = lists or _auto_lists(rows)  # None was reported
    if (declared == IndexMethod.AUTO and dimensions is not None
            and dimensions > MAX_HALFVEC_INDEXED_DIMENSIONS):
        method = IndexMethod.NONE
        reason = (f"vectorIndexMethod=auto with dimensions={dimensions}: no index, since "
                  f"pgvector's hnsw and ivfflat index at most {MAX_HALFVEC_INDEXED_DIMENSIONS} "
                  "dimensions (as halfvec)")
    if method == IndexMethod.HNSW:
        if m < 2:
            problems.append(f"vectorIndexM: {m} is not allowed; allowed: 2 to 100 (0 = auto)")
        if efc < 4:
            problems.append(
                f"vectorIndexEfConstruction: {efc} is not allowed; allowed: 4 to 1000 (0 = auto)")
        elif efc < 2 * m:
            problems.append(
                f"vectorIndexEfConstruction: {efc} is not allowed; allowed: at least "
                f"2 * vectorIndexM = {2 * m} (pgvector's rule)")
    if method == IndexMethod.IVFFLAT and measure == IndexMeasure.L1:
        problems.append(
            "vectorIndexMeasure: 'l1' is not allowed with vectorIndexMethod 'ivfflat'; "
            "allowed: cosine, l2, ip (pgvector's ivfflat has no l1 operator class)")
    return VectorIndex(declared, method, measure, m, efc, lists, rows, reason)


def dimension_problems(index: VectorIndex, dimensions: int, embedded: bool) -> list[str]:
    """What pgvector cannot index: more than 4000 dimensions (as halfvec) at all, or more
    than 2000 on the embedded server, whose pgvector 0.6 has no halfvec."""
    if index.method not in ANN_METHODS or dimensions <= MAX_INDEXED_DIMENSIONS:
        return []
    if dimensions > MAX_HALFVEC_INDEXED_DIMENSIONS:
        return [f"dimensions: {dimensions} is not allowed with a {index.method} index "
                f"({index.reason}); allowed: 1 to {MAX_HALFVEC_INDEXED_DIMENSIONS} (pgvector "
                f"indexes at most {MAX_INDEXED_DIMENSIONS} dimensions of type vector and "
                f"{MAX_HALFVEC_INDEXED_DIMENSIONS} of type halfvec, which the stack stores "
                f"above {MAX_INDEXED_DIMENSIONS}), or set vectorIndexMethod to none"]
    if embedded:
        return [f"dimensions: {dimensions} is not allowed with a {index.method} index "
                f"({index.reason}) on target 'embedded'; allowed: 1 to "
                f"{MAX_INDEXED_DIMENSIONS}, or set vectorIndexMethod to none (above "
                f"{MAX_INDEXED_DIMENSIONS} dimensions the stack indexes halfvec columns, which "
                f"need pgvector {HALFVEC_PGVECTOR} or later; the embedded server bundles "
                "pgvector 0.6)"]
    return []


def index_warnings(index: VectorIndex, dimensions: int) -> list[str]:
    """What is allowed but costs mem0's searches their index."""
    warnings: list[str] = []
    if index.declared_method == IndexMethod.AUTO and index.method == IndexMethod.NONE:
        warnings.append(
            f"dimensions is {dimensions}: more than pgvector can index (at most "
            f"{MAX_HALFVEC_INDEXED_DIMENSIONS}, as halfvec), so the stack builds no vector "
            "index and every mem0 search reads all rows; set vectorIndexMethod to none to "
            "say so, or use an embedder with fewer dimensions (text-embedding-3 models "
            "take a `dimensions` parameter)")
    if index.method != IndexMethod.NONE and index.measure != IndexMeasure.COSINE:
        warnings.append(
            f"vectorIndexMeasure is {index.measure!r}, but mem0 always searches with cosine "
            "distance (<=>): mem0's searches will not use this index")
    return warnings
