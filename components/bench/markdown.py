"""`--markdown FILE`: the report as Markdown, for an issue, a pull request or a CI summary.

Rendered from the JSON document alone, so it says nothing the JSON does not.
"""

from __future__ import annotations

from typing import Any

from components.bench.report import megabytes

__all__ = ["NONE", "render_markdown"]

NONE = "-"  # an empty cell: no recall (not a search), no limit (no setting for it)


def _parameters(report: dict[str, Any]) -> list[str]:
    p = report["parameters"]
    index = p["index"]
    shape = f"m={index['m']}, ef_construction={index['ef_construction']}" \
        if index["method"] == "hnsw" else f"lists={index['lists']}"
    who = p["measured_as"]
    measured = (f"the connecting role `{who['role']}`, without row-level security (`--as "
                "owner`)" if who["mode"] == "owner" else
                f"throwaway role `{who['role']}` with the app role's grants, row-level "
                f"security policies and search settings (`--as app`); identity "
                f"{who['identity']}")
    lines = [
        f"# mem0 bench: stack `{p['stack']}`",
        "",
        f"- **Run**: {p['rows']} memories over {p['users']} users "
        f"({p['users_distribution']}), {p['dims']} dimensions, {p['samples']} timed runs per "
        f"measurement (after {p['warmup_runs']} untimed), seed {p['seed']}; searches "
        f"`LIMIT {p['limit']}`, lists `LIMIT {p['list_limit']}` (mem0's)",
        f"- **Server**: PostgreSQL {p['server_version']}, pgvector {p['pgvector_version']}",
        f"- **Index**: {index['method']} ({shape}, {index['measure']}); search session "
        f"hnsw.ef_search={p['ef_search']}, iterative_scan={p['iterative_scan']}",
        f"- **Measured as**: {measured}",
    ]
    if "compare" in report:
        c = report["compare"]
        settings = ", ".join(f"{k}={v}" for k, v in c["session_settings"].items())
        lines.append(f"- **Compared with**: mem0-default, `{c['table']}` as {c['made_as']}; "
                     f"as `{c['measured_as']}` with pgvector's defaults ({settings}); "
                     f"{c['order']}")
    classes = ", ".join(f"{c['class']} ({c['memories_per_user'][0]}-"
                        f"{c['memories_per_user'][1]} memories): {c['users']} "
                        f"user{'' if c['users'] == 1 else 's'}"
                        for c in report["users"]["classes"])
    lines += [
        f"- **Size classes**: {classes}",
        "- **Latency**: client-observed on one psycopg connection per side (parameter "
        "adaptation, round trip, fetch), in ms; limits are the stack's p95 settings",
        "",
    ]
    return lines


def _recall(metric: dict[str, Any], k: int) -> str:
    if f"recall_at_{k}_mean" not in metric:
        return NONE
    return f"{metric[f'recall_at_{k}_mean']:.4f} (min {metric[f'recall_at_{k}_min']:.2f})"


def _pages(metric: dict[str, Any]) -> str:
    if "full_pages" not in metric:
        return NONE
    return (f"{metric['rows_returned_mean']:.1f} / {metric['rows_expected_mean']:.1f}, "
            f"{metric['full_pages']}/{metric['count']} full")


def _table(report: dict[str, Any]) -> list[str]:
    lines = ["## Latency", "",
             "| metric | p50 | p95 | p99 | recall@10 | recall@80 | rows / expected | limit "
             "| result |",
             "|---|---:|---:|---:|---|---|---|---:|---|"]
    for name, m in report["metrics"].items():
        verdict = report["thresholds"].get(name)
        limit = f"{verdict['limit_ms']} (`{verdict['setting']}`)" if verdict else NONE
        result = NONE if verdict is None else "pass" if verdict["passed"] else "**FAIL**"
        lines.append(f"| {name} | {m['p50_ms']:.3f} | {m['p95_ms']:.3f} | {m['p99_ms']:.3f} "
                     f"| {_recall(m, 10)} | {_recall(m, 80)} | {_pages(m)} | {limit} "
                     f"| {result} |")
    failed = [name for name, v in report["thresholds"].items() if not v["passed"]]
    lines += ["", "**Result: every threshold passed.**" if report["passed"] else
              f"**Result: {len(failed)} threshold(s) exceeded: {', '.join(failed)}.**", ""]
    return lines


def _compare(report: dict[str, Any]) -> list[str]:
    c = report["compare"]
    lines = ["## Stack vs mem0-default (same rows, same queries, interleaved)", "",
             "| metric | stack p50 | mem0 p50 | stack p95 | mem0 p95 | mem0 / stack p95 "
             "| stack recall@10 | mem0 recall@10 | stack recall@80 | mem0 recall@80 "
             "| stack rows / expected | mem0 rows / expected |",
             "|---|---:|---:|---:|---:|---:|---|---|---|---|---|---|"]
    for name, theirs in c["metrics"].items():
        ours = report["metrics"][name]
        ratio = c["p95_ratio"][name]
        lines.append(f"| {name} | {ours['p50_ms']:.3f} | {theirs['p50_ms']:.3f} "
                     f"| {ours['p95_ms']:.3f} | {theirs['p95_ms']:.3f} "
                     f"| {NONE if ratio is None else f'{ratio:.2f}x'} "
                     f"| {_recall(ours, 10)} | {_recall(theirs, 10)} "
                     f"| {_recall(ours, 80)} | {_recall(theirs, 80)} "
                     f"| {_pages(ours)} | {_pages(theirs)} |")
    return [*lines, "", f"Ratio: {c['ratio']}.", ""]


def _plans(report: dict[str, Any]) -> list[str]:
    mem0 = report.get("compare", {}).get("plans", {})
    head = "| search | stack custom plan | stack generic plan | stack timed runs |"
    rule = "|---|---|---|---|"
    if mem0:
        head += " mem0 custom plan | mem0 generic plan | mem0 timed runs |"
        rule += "---|---|---|"
    lines = ["## Plans (one query per size class)", "", head, rule]
    for name, plan in report["plans"].items():
        row = f"| {name} | {plan['custom']} | {plan['generic']} | {plan['used']} |"
        if mem0:
            theirs = mem0.get(name)
            row += (f" {theirs['custom']} | {theirs['generic']} | {theirs['used']} |"
                    if theirs else f" {NONE} | {NONE} | {NONE} |")
        lines.append(row)
    return [*lines, ""]


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
    sizes = dict(report["sizes"])
    if "compare" in report:
        sizes.update({f"mem0-default {table}": size
                      for table, size in report["compare"]["sizes"].items()})
    lines += [f"| {table} | {megabytes(s['total_bytes'])} | {megabytes(s['table_bytes'])} "
              f"| {megabytes(s['indexes_bytes'])} |" for table, s in sizes.items()]
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
    lines = [*_parameters(report), *_table(report)]
    if "compare" in report:
        lines += _compare(report)
    lines += [*_plans(report), *_load_and_sizes(report)]
    if "rls" in report:
        lines += _rls(report)
    return "\n".join(lines).rstrip("\n") + "\n"
