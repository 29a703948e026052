"""The index build estimate's arithmetic (components/plan/estimate.py); the measured rates
are in docs/plan.md, the estimate against a real server in tests/integration/test_plan.py."""

from __future__ import annotations

import pytest

from components.plan.estimate import (
    HNSW_RATE,
    HNSW_SPILLED_RATE,
    Load,
    TableSize,
    hnsw_graph_bytes,
    idle_seconds,
    loaded_seconds,
)

HNSW = "CREATE INDEX x ON t\n  USING hnsw (vector public.vector_cosine_ops)\n" \
       "  WITH (m='16', ef_construction='64');"


def test_the_calibration_point_estimates_the_measured_time() -> None:
    # 20,000 rows x 384 dims took 5.62 s on the build machine (docs/plan.md)
    seconds = idle_seconds("hnsw", TableSize(20000, 384), HNSW)
    assert seconds == pytest.approx(5.62, rel=0.05)


def test_a_graph_larger_than_maintenance_work_mem_uses_the_slower_rate() -> None:
    assert hnsw_graph_bytes(50000, 384, 16) > 64 * 1024 * 1024 > hnsw_graph_bytes(20000, 384, 16)
    small = idle_seconds("hnsw", TableSize(50000, 384, 1024 ** 3), HNSW)
    spilled = idle_seconds("hnsw", TableSize(50000, 384, 64 * 1024 * 1024), HNSW)
    assert spilled / small == pytest.approx(HNSW_RATE / HNSW_SPILLED_RATE)


def test_ef_construction_and_lists_scale_the_work() -> None:
    size = TableSize(10000, 768)
    assert idle_seconds("hnsw", size, HNSW.replace("'64'", "'128'")) == \
        pytest.approx(2 * idle_seconds("hnsw", size, HNSW))
    ivf = "  USING ivfflat (vector public.vector_cosine_ops)\n  WITH (lists='{}');"
    assert idle_seconds("ivfflat", size, ivf.format(200)) == \
        pytest.approx(2 * idle_seconds("ivfflat", size, ivf.format(100)))


def test_load_slows_the_build() -> None:
    size = TableSize(10000, 384)
    idle = Load(0, 0.0, 0.0)
    assert loaded_seconds(100.0, size, idle) == 100.0
    assert loaded_seconds(100.0, size, Load(4, 0.0, 0.0)) == pytest.approx(500.0)
    # 25 writes/s: T = 100 / (1 - 25 x 100 / 10,000); the rows written during T add T/4
    assert loaded_seconds(100.0, size, Load(0, 25.0, 0.0)) == pytest.approx(100 / 0.75)
    # writes that would outpace the build: capped, not negative or infinite
    assert loaded_seconds(100.0, size, Load(0, 500.0, 0.0)) == pytest.approx(1000.0)
