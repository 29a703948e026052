"""`--plot FILE.png`: every measurement's latency distribution, with the stack's limit.

One horizontal box per measurement on one logarithmic axis (an insert and a get by id differ
by orders of magnitude, and a limit may sit far above its distribution), whiskers at p1 and
p99, the p95 as a dot and the limit as a red line across the box. With --compare, mem0's
own table's box follows each of the stack's, labelled "(mem0)", its p95 dot in purple.
matplotlib is imported only here, only when --plot is given, with the Agg backend (no
display needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from components.bench.common import BenchError

__all__ = ["DPI", "MEM0_LABEL", "ROW_IN", "WIDTH_IN", "check_available", "write_plot"]

WIDTH_IN, ROW_IN, DPI = 9.0, 0.75, 120


def check_available() -> None:
    """Before the run: a missing matplotlib should not waste a load and an index build."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise BenchError("--plot needs matplotlib; install it with .venv/bin/pip install -r "
                         "requirements.txt") from exc


MEM0_LABEL = " (mem0)"


def write_plot(report: Mapping[str, Any], latencies: Mapping[str, Sequence[float]],
               path: Path, compare: Mapping[str, Sequence[float]] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compare = compare or {}
    drawn: dict[str, Sequence[float]] = {}
    p95s: dict[str, float] = {}
    for name in report["metrics"]:
        if latencies.get(name):
            drawn[name], p95s[name] = latencies[name], report["metrics"][name]["p95_ms"]
        if compare.get(name):
            drawn[name + MEM0_LABEL] = compare[name]
            p95s[name + MEM0_LABEL] = report["compare"]["metrics"][name]["p95_ms"]
    # Top to bottom in the report's order: boxes are drawn from y=1 upwards.
    rows = list(reversed(drawn))
    figure, axes = plt.subplots(figsize=(WIDTH_IN, 1.6 + ROW_IN * len(rows)), dpi=DPI)
    try:
        axes.boxplot([drawn[name] for name in rows], orientation="horizontal", whis=(1, 99),
                     widths=0.5, showfliers=True, flierprops={"markersize": 2, "alpha": 0.4})
        axes.set_yticks(range(1, len(rows) + 1), rows)
        axes.set_xscale("log")
        limit_labelled = False  # one legend entry for all the limit lines
        labelled: set[str] = set()  # one legend entry per kind of dot
        for y, name in enumerate(rows, start=1):
            mem0 = name.endswith(MEM0_LABEL)
            label = "p95 (mem0's table)" if mem0 else "p95"
            axes.plot(p95s[name], y, "o", color="tab:purple" if mem0 else "tab:blue",
                      markersize=4, label=None if label in labelled else label)
            labelled.add(label)
            verdict = None if mem0 else report["thresholds"].get(name)
            if verdict:
                color = "tab:red" if verdict["passed"] else "darkred"
                axes.vlines(verdict["limit_ms"], y - 0.4, y + 0.4, colors=color, linewidth=2,
                            label="_nolegend_" if limit_labelled else "limit (p95)")
                limit_labelled = True
                axes.annotate(f"{verdict['limit_ms']} ms ({verdict['setting']})"
                              + ("" if verdict["passed"] else " FAIL"),
                              (verdict["limit_ms"], y), xytext=(4, 0),
                              textcoords="offset points", fontsize=7, ha="left",
                              va="center", color=color)
        # Room on the right for the limits' labels: a decade past the largest value drawn.
        largest = max([max(drawn[name]) for name in rows]
                      + [v["limit_ms"] for v in report["thresholds"].values()])
        axes.set_xlim(right=largest * 10)
        p = report["parameters"]
        axes.set_title(f"mem0 bench, stack {p['stack']}: {p['rows']} memories, {p['users']} "
                       f"users, {p['dims']} dims, {p['samples']} runs each "
                       f"({'passed' if report['passed'] else 'threshold exceeded'})",
                       fontsize=10)
        axes.set_xlabel("latency, ms (log scale); box p25-p75, whiskers p1-p99")
        axes.grid(axis="x", which="both", alpha=0.3)
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8,
                    frameon=False)
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
