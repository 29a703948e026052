"""`--plot FILE.png`: every measurement's latency distribution, with the stack's limit.

One horizontal box per measurement on one logarithmic axis (an insert and a get by id differ
by orders of magnitude, and a limit may sit far above its distribution), whiskers at p1 and
p99, the p95 as a dot and the limit as a red line across the box. matplotlib is imported only
here, only when --plot is given, with the Agg backend (no display needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from components.bench.common import BenchError

WIDTH_IN, ROW_IN, DPI = 9.0, 0.75, 120


def check_available() -> None:
    """Before the run: a missing matplotlib should not waste a load and an index build."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise BenchError("--plot needs matplotlib; install it with .venv/bin/pip install -r "
                         "requirements.txt") from exc


def write_plot(report: Mapping[str, Any], latencies: Mapping[str, Sequence[float]],
               path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in report["metrics"] if latencies.get(name)]
    # Top to bottom in the report's order: boxes are drawn from y=1 upwards.
    rows = list(reversed(names))
    figure, axes = plt.subplots(figsize=(WIDTH_IN, 1.6 + ROW_IN * len(rows)), dpi=DPI)
    try:
        axes.boxplot([latencies[name] for name in rows], orientation="horizontal", whis=(1, 99),
                     widths=0.5, showfliers=True, flierprops={"markersize": 2, "alpha": 0.4})
        axes.set_yticks(range(1, len(rows) + 1), rows)
        axes.set_xscale("log")
        limit_labelled = False  # one legend entry for all the limit lines
        for y, name in enumerate(rows, start=1):
            axes.plot(report["metrics"][name]["p95_ms"], y, "o", color="tab:blue",
                      markersize=4, label="p95" if y == 1 else None)
            verdict = report["thresholds"].get(name)
            if verdict:
                color = "tab:red" if verdict["passed"] else "darkred"
                axes.vlines(verdict["limit_ms"], y - 0.4, y + 0.4, colors=color, linewidth=2,
                            label=None if limit_labelled else "limit (p95)")
                limit_labelled = True
                axes.annotate(f"{verdict['limit_ms']} ms ({verdict['setting']})"
                              + ("" if verdict["passed"] else " FAIL"),
                              (verdict["limit_ms"], y), xytext=(4, 0),
                              textcoords="offset points", fontsize=7, ha="left",
                              va="center", color=color)
        # Room on the right for the limits' labels: a decade past the largest value drawn.
        largest = max([max(latencies[name]) for name in rows]
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
