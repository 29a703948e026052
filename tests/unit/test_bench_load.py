"""The load generator's figures from recorded operations (components/bench/load.py)."""

from __future__ import annotations

from components.bench.load import IndexSample, LoadResult, Op, OpKind


def test_a_window_reports_failures_percentiles_stall_index_and_lock_waits() -> None:
    ops = [Op(OpKind.ADD, "w", 10.0 + i, 0.010, True) for i in range(5)]  # ends 10.01..14.01
    ops.append(Op(OpKind.ADD, "w", 20.0, 0.050, True))  # ends 6.04 s after the one before
    ops.append(Op(OpKind.SEARCH, "s", 12.0, 0.002, False, "OperationalError: boom", True))
    ops += [Op(OpKind.SEARCH, "s", 12.5, 0.004, True, "", True)] * 19
    samples = [IndexSample(11.0, True), IndexSample(12.0, None),
               IndexSample(13.0, True, (("deployer", 0.4, "DROP INDEX"),
                                        ("app", 0.2, "SELECT"))),
               IndexSample(14.0, False, (("deployer", 0.9, "DROP INDEX"),))]
    window = LoadResult(ops, samples).window(10.0, 21.0)
    assert (window["ops"], window["failed"]) == (26, 1)
    assert window["add"] == {"ops": 6, "p50_ms": 10.0, "p95_ms": 50.0, "max_ms": 50.0}
    assert window["search"]["ops"] == 19 and window["search"]["p95_ms"] == 4.0
    assert window["write_stall_ms"] == 6040.0  # from the end of one write to the next
    assert window["samples_without_valid_index"] == 2
    assert window["longest_lock_wait_ms"] == {"app": 200.0, "deployer": 900.0}


def test_a_window_without_writes_has_no_stall() -> None:
    window = LoadResult([Op(OpKind.SEARCH, "s", 1.0, 0.1, True)], []).window(0.0, 2.0)
    assert window["write_stall_ms"] is None and window["add"]["p50_ms"] is None
    summary = LoadResult([Op(OpKind.ADD, "w", 1.0, 0.1, False, "x")], []).summary([])
    assert summary["all"]["failed"] == 1 and summary["errors"] == ["x"]
