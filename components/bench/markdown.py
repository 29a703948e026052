"""`--markdown FILE`: the report as Markdown, for an issue, a pull request or a CI summary.

Rendered from the JSON document alone, so it says nothing the JSON does not.
"""

from __future__ import annotations

from typing import Any

from components.bench.report import _mb

NONE = "-"  # an empty cell: no recall (not a search), no limit (no setting for it)


def _parameters(report: dict[str, Any]) -> list[str]:
    p = report["parameters"]
    index = p["index"]
    shape = f"m={index['m']}, ef_construction={index['ef_construction']}" \
        if index["method"] == "hnsw" else f"lists={index['lists']}"
    return [
        f"# mem0 bench: stack `{p['stack']}`",
        "",
        f"- **Run**: {p['rows']} memories over {p['users']} users, {p['dims']} dimensions, "
        f"{p['samples']} timed runs per measurement (after {p['warmup_runs']} untimed), "
        f"seed {p['seed']}",
        f"- **Server**: PostgreSQL {p['server_version']}, pgvector {p['pgvector_version']}",
        f"- **Index**: {index['method']} ({shape}, {index['measure']}); search session "
        f"hnsw.ef_search={p['ef_search']}, iterative_scan={p['iterative_scan']}",
        "- **Latency**: client-observed on one psycopg connection (parameter adaptation, "
        "round trip, fetch), in ms; limits are the stack's p95 settings",
        "",
    ]


def _recall(metric: dict[str, Any]) -> str:
    if "recall_at_10_mean" not in metric:
        return NONE
    return f"{metric['recall_at_10_mean']:.4f} (min {metric['recall_at_10_min']:.2f})"


def _table(report: dict[str, Any]) -> list[str]:
    lines = ["## Latency", "",
             "| metric | p50 | p95 | p99 | recall@10 | limit | result |",
             "|---|---:|---:|---:|---|---:|---|"]
    for name, m in report["metrics"].items():
        verdict = report["thresholds"].get(name)
        limit = f"{verdict['limit_ms']} (`{verdict['setting']}`)" if verdict else NONE
        result = NONE if verdict is None else "pass" if verdict["passed"] else "**FAIL**"
        lines.append(f"| {name} | {m['p50_ms']:.3f} | {m['p95_ms']:.3f} | {m['p99_ms']:.3f} "
                     f"| {_recall(m)} | {limit} | {result} |")
    failed = [name for name, v in report["thresholds"].items() if not v["passed"]]
    lines += ["", "**Result: every threshold passed.**" if report["passed"] else
              f"**Result: {len(failed)} threshold(s) exceeded: {', '.join(failed)}.**", ""]
    return lines


def _load_and_sizes(report: dict[str, Any]) -> list[str]:
    load, build = report["load"], report["index_build"]
    lines = [
        "## Load and sizes", "",
        f"- **Load**: {load['rows']} memories in {load['seconds']:.1f} s "
        f"({load['rows_per_second']:.0f} rows/s; {load['includes']}); "
        f"{load['relationships']} relationships in {load['relationships_seconds']:.1f} s",
        f"- **Index build**: {len(build['per_index_s'])} indexes in {build['seconds']:.1f} s; "
        f"vacuum analyze {build['vacuum_analyze_s']:.1f} s",
        "",
        "| table | total | table + toast | indexes |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {table} | {_mb(s['total_bytes'])} | {_mb(s['table_bytes'])} "
              f"| {_mb(s['indexes_bytes'])} |" for table, s in report["sizes"].items()]
    return [*lines, ""]


def _rls(report: dict[str, Any]) -> list[str]:
    rls = report["rls"]
    queries = list(next(iter(rls["variants"].values()))["queries"])
    lines = ["## Row-level security (p50, ratio to no RLS)", "",
             "| variant | " + " | ".join(queries) + " |",
             "|---|" + "---:|" * len(queries)]
    for name, variant in rls["variants"].items():
        cells = [f"{c['p50_ms']:.3f} ({c['p50_ratio_to_none']:.2f}x)"
                 for c in variant["queries"].values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    check = rls["check"]
    lines += ["", f"Result check: {'passed' if check['passed'] else '**FAILED**'} "
                  f"({check['rule']})", ""]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    lines = [*_parameters(report), *_table(report), *_load_and_sizes(report)]
    if "rls" in report:
        lines += _rls(report)
    return "\n".join(lines).rstrip("\n") + "\n"
