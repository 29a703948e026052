"""The bench's report: the run's parameters for the JSON document, and the text rendering."""

from __future__ import annotations

from typing import Any

from components.bench.common import TOP_K, WARMUP, Names, Options
from components.bench.data import DATA_MODEL
from components.bench.server import Server


def _parameters(n: Names, server: Server, options: Options, session: dict[str, str],
                skipped: list[str]) -> dict[str, Any]:
    s, index = n.settings, n.settings.vector_index
    scan = next((v for k, v in session.items() if k.endswith(".iterative_scan")), "off")
    why = "" if scan != "off" or s.iterative_scan == "off" else \
        f" (the stack asks {s.iterative_scan}; pgvector {server.pgvector} has no iterative scans)"
    return {
        "stack": s.stack, "target": s.target, "collection": s.collection,
        "rows": options.rows, "users": options.users, "dims": s.dimensions,
        "samples": options.samples, "warmup_runs": WARMUP, "top_k": TOP_K, "seed": options.seed,
        "index": {"method": index.method, "measure": index.measure, "m": index.m,
                  "ef_construction": index.ef_construction, "lists": index.lists,
                  "reason": index.reason},
        "ef_search": s.hnsw_ef_search if index.method == "hnsw" else None,
        "iterative_scan": scan + why, "session_settings": session,
        "pgvector_version": server.pgvector, "server_version": server.version,
        "server_settings": server.settings, "data_model": DATA_MODEL,
        "scratch_schema": n.scratch, "model_kinds_skipped": skipped,
        "user_ids": "uuid-shaped (--rls)" if options.uuid_user_ids else "user_<n>",
        "ground_truth": "the same statement in a transaction with enable_indexscan, "
                        "enable_bitmapscan, enable_indexonlyscan and jit off (not prepared)",
    }


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _text_header(report: dict[str, Any]) -> list[str]:
    p = report["parameters"]
    index = p["index"]
    params = f"m={index['m']} ef_construction={index['ef_construction']}" \
        if index["method"] == "hnsw" else f"lists={index['lists']}"
    server = ", ".join(f"{k}={v}" for k, v in p["server_settings"].items())
    return [
        f"mem0 bench: stack {p['stack']}, {p['rows']} memories over {p['users']} users, "
        f"{p['dims']} dims, {p['samples']} timed runs per measurement "
        f"(after {p['warmup_runs']} untimed)",
        f"server: PostgreSQL {p['server_version']}, pgvector {p['pgvector_version']}",
        f"  {server}",
        f"index: {index['method']} {params} ({index['measure']}); search session: "
        f"hnsw.ef_search={p['ef_search']}, iterative_scan={p['iterative_scan']}",
        f"data: {p['data_model']}",
        "latency: client-observed on one psycopg connection (parameter adaptation, round "
        "trip, fetch); the statement is prepared from its 6th run, as psycopg does for mem0",
        "",
    ]


def _text_build(report: dict[str, Any]) -> list[str]:
    load, build = report["load"], report["index_build"]
    slowest = max(build["per_index_s"].items(), key=lambda item: item[1], default=("-", 0))
    lines = [
        f"load:        {load['rows']} memories in {load['seconds']:.1f} s "
        f"({load['rows_per_second']:.0f} rows/s; {load['includes']})",
        f"             {load['relationships']} relationships in "
        f"{load['relationships_seconds']:.1f} s",
        f"index build: {len(build['per_index_s'])} indexes in {build['seconds']:.1f} s "
        f"(slowest {slowest[0]} {slowest[1]:.1f} s; maintenance_work_mem="
        f"{build['maintenance_work_mem']}, max_parallel_maintenance_workers="
        f"{build['max_parallel_maintenance_workers']}); vacuum analyze "
        f"{build['vacuum_analyze_s']:.1f} s",
    ]
    lines += [f"  notice: {notice}" for notice in build["notices"]]
    for table, size in report["sizes"].items():
        top = ", ".join(f"{name} {_mb(b)}" for name, b in list(size["per_index_bytes"].items())[:3])
        lines.append(f"size {table}: {_mb(size['total_bytes'])} total = table+toast "
                     f"{_mb(size['table_bytes'])} + indexes {_mb(size['indexes_bytes'])} "
                     f"({top})")
    return [*lines, ""]


def _text_metrics(report: dict[str, Any]) -> list[str]:
    lines = [f"{'measurement':<26}{'count':>6}{'mean':>9}{'p50':>9}{'p95':>9}{'p99':>9}"
             f"{'max':>9}  (ms)"]
    for name, m in report["metrics"].items():
        extra = ""
        if "recall_at_10_mean" in m:
            extra = (f"  recall@10 {m['recall_at_10_mean']:.4f} (min {m['recall_at_10_min']:.2f},"
                     f" {m['queries_recall_below_half']} below 0.5), rows "
                     f"{m['rows_returned_mean']:.1f}, short {m['short_results']}")
        elif "neighbours_mean" in m:
            extra = f"  neighbours {m['neighbours_mean']:.1f}"
        lines.append(f"{name:<26}{m['count']:>6}{m['mean_ms']:>9.3f}{m['p50_ms']:>9.3f}"
                     f"{m['p95_ms']:>9.3f}{m['p99_ms']:>9.3f}{m['max_ms']:>9.3f}{extra}")
    return [*lines, ""]


def _text_thresholds(report: dict[str, Any]) -> list[str]:
    lines = [f"{'threshold (p95)':<26}{'p95':>9}{'limit':>9}  {'setting':<17}result"]
    for name, t in report["thresholds"].items():
        lines.append(f"{name:<26}{t['p95_ms']:>9.3f}{t['limit_ms']:>9}  {t['setting']:<17}"
                     f"{'pass' if t['passed'] else 'FAIL'}")
    failed = sum(not t["passed"] for t in report["thresholds"].values())
    lines.append("all thresholds passed" if report["passed"] else
                 f"{failed} of {len(report['thresholds'])} thresholds exceeded (exit code 1)")
    return [*lines, ""]


def _plan_counts(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "plan counts need PostgreSQL 14+"
    return f"{counts['custom_plans']} custom / {counts['generic_plans']} generic plans"


def _text_plans(report: dict[str, Any]) -> list[str]:
    user = report["plans"]["search_user_top10"]
    unfiltered = report["plans"]["search_unfiltered_top10"]
    lines = [f"user-scoped search: {user['statement']}",
             f"  indexes: custom plan {user['custom_plan_indexes'] or 'none'}, generic plan "
             f"{user['generic_plan_indexes'] or 'none'}, exact (ground truth) "
             f"{user['exact_plan_indexes'] or 'none'}; timed runs: "
             f"{_plan_counts(user['timed_runs'])}",
             "  EXPLAIN ANALYZE (custom plan, the parameters folded in):"]
    lines += [f"    {line}" for line in user["custom_plan"]]
    lines.append("  EXPLAIN ANALYZE (generic plan, which a prepared statement may switch to):")
    lines += [f"    {line}" for line in user["generic_plan"]]
    lines.append(f"unfiltered search: indexes: custom plan "
                 f"{unfiltered['custom_plan_indexes'] or 'none'}, exact "
                 f"{unfiltered['exact_plan_indexes'] or 'none'}; timed runs: "
                 f"{_plan_counts(unfiltered['timed_runs'])}")
    return lines


def _rls_plan(plan: dict[str, Any], function: str | None) -> str:
    marks = [plan["used"] + ":"]
    if plan["initplan"]:
        marks.append("InitPlan;")
    if plan["index_cond_call"]:
        marks.append(f"{function}() in an index condition;")
    if plan["per_row_call"]:
        marks.append(f"{function}() per row in a filter;")
    return " ".join([*marks, ", ".join(plan["scans"]) or "no scan"])


def _text_rls(report: dict[str, Any]) -> list[str]:
    rls = report["rls"]
    lines = [
        "",
        f"row-level security: as role {rls['role']} (NOLOGIN, SELECT on the scratch table), "
        f"{rls['samples']} timed runs per cell, {rls['users_rotated']} users in rotation, one "
        f"transaction per cell; order {', '.join(rls['order'])}",
        f"  identity: {rls['identity_function']}; seed: {rls['seed_function']}",
        f"  user ids: {rls['user_ids']}; list: LIMIT {rls['list_limit']}",
    ]
    for name, variant in rls["variants"].items():
        lines.append(f"  {name:<12} {variant['rule']} (identity: {variant['identity_from']})")
        if variant["policy_using"]:
            lines.append(f"  {'':<12} USING ({variant['policy_using']})")
    lines.append(f"{'variant':<13}{'query':<19}{'p50':>8}{'p95':>9}{'p99':>9}{'p50/none':>10}"
                 "  (ms)  plan of the timed runs")
    for name, variant in rls["variants"].items():
        for query, cell in variant["queries"].items():
            lines.append(f"{name:<13}{query:<19}{cell['p50_ms']:>8.3f}{cell['p95_ms']:>9.3f}"
                         f"{cell['p99_ms']:>9.3f}{cell['p50_ratio_to_none']:>9.2f}x"
                         f"        {_rls_plan(cell['plan'], variant['policy_calls'])}")
    drift = ", ".join(f"{q} {r:.2f}x" for q, r in rls["baseline_repeat_p50_ratio"].items())
    lines.append(f"none again at the end (p50 / the first none): {drift}")
    same = ", ".join(
        f"{name} " + "/".join(str(c["timed_results_identical_to_none"])
                              for c in v["queries"].values())
        for name, v in rls["variants"].items() if name != "none")
    lines.append(f"timed results identical to none's (search/get/list of {rls['samples']}): "
                 f"{same}")
    check = rls["check"]
    if check["passed"]:
        lines.append(f"check passed: {check['rule']} ({check['users_checked']} users, "
                     f"{check['samples_checked']} samples)")
    else:
        lines.append(f"check FAILED ({check['mismatch_count']} mismatches): {check['rule']}")
        lines += [f"  {m['variant']} {m['query']} user {m['user']}: {m['problem']}"
                  for m in check["mismatches"]]
    return lines


def render_text(report: dict[str, Any]) -> str:
    lines = [*_text_header(report), *_text_build(report), *_text_metrics(report),
             *_text_thresholds(report), *_text_plans(report)]
    if "rls" in report:
        lines += _text_rls(report)
    return "\n".join(lines) + "\n"
