"""The bench's report: the run's parameters for the JSON document, and the text rendering."""

from __future__ import annotations

from typing import Any

from components.bench import realdata
from components.bench.common import LIMIT, LIST_LIMIT, RECALL_AT, WARMUP, Names, Options
from components.bench.data import DATA_MODEL
from components.bench.server import Server

__all__ = ["megabytes", "render_text", "run_parameters"]


def run_parameters(n: Names, server: Server, options: Options, session: dict[str, Any],
                skipped: list[str], measured_as: dict[str, Any]) -> dict[str, Any]:
    s, index = n.settings, n.settings.vector_index
    settings = session["settings"]
    scan = settings.get(f"{index.method}.iterative_scan", "off")
    why = "" if scan != "off" or s.iterative_scan == "off" else \
        f" (the stack asks {s.iterative_scan}; pgvector {server.pgvector} has no iterative scans)"
    return {
        "stack": s.stack, "target": s.target, "collection": s.collection,
        "rows": options.rows, "users": options.users, "dims": s.dimensions,
        "users_distribution": options.distribution,
        "samples": options.samples, "warmup_runs": WARMUP, "limit": LIMIT,
        "list_limit": LIST_LIMIT, "recall_at": list(RECALL_AT), "seed": options.seed,
        "index": {"method": index.method, "measure": index.measure, "m": index.m,
                  "ef_construction": index.ef_construction, "lists": index.lists,
                  "reason": index.reason},
        "ef_search": s.hnsw_ef_search if index.method == "hnsw" else None,
        "iterative_scan": scan + why, "session_settings": settings,
        "measured_as": measured_as, "compare": options.compare,
        "pgvector_version": server.pgvector, "server_version": server.version,
        "server_settings": server.settings, "embedder": options.embedder,
        "data_model": realdata.DATA_MODEL if options.embedder == "minilm" else DATA_MODEL,
        "scratch_schema": n.scratch, "model_kinds_skipped": skipped,
        "user_ids": "uuid-shaped (--rls)" if options.uuid_user_ids else "user_<n>",
        "ground_truth": "the same statement on the measured session (so under its row-level "
                        "security), in a transaction with enable_indexscan, "
                        "enable_bitmapscan, enable_indexonlyscan and jit off (not prepared)",
        "rows_expected": f"searches: min({LIMIT}, the rows the exact search finds); lists: "
                         f"min({LIST_LIMIT}, the user's memories); get by id: 1",
    }


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _text_header(report: dict[str, Any]) -> list[str]:
    p = report["parameters"]
    index = p["index"]
    params = f"m={index['m']} ef_construction={index['ef_construction']}" \
        if index["method"] == "hnsw" else f"lists={index['lists']}"
    server = ", ".join(f"{k}={v}" for k, v in p["server_settings"].items())
    return [
        f"mem0 bench: stack {p['stack']}, {p['rows']} memories over {p['users']} users "
        f"({p['users_distribution']}), {p['dims']} dims, {p['samples']} timed runs per "
        f"measurement (after {p['warmup_runs']} untimed); searches LIMIT {p['limit']}, "
        f"lists LIMIT {p['list_limit']}",
        f"server: PostgreSQL {p['server_version']}, pgvector {p['pgvector_version']}",
        f"  {server}",
        f"index: {index['method']} {params} ({index['measure']}); search session: "
        f"hnsw.ef_search={p['ef_search']}, iterative_scan={p['iterative_scan']}",
        *_text_measured_as(p["measured_as"]),
        *(_text_compare_header(report["compare"]) if "compare" in report else []),
        f"data: {p['data_model']}",
        "latency: client-observed on one psycopg connection per side (parameter "
        "adaptation, round trip, fetch); the statement is prepared from its 6th run, as "
        "psycopg does for mem0",
        "",
    ]


def _text_measured_as(who: dict[str, Any]) -> list[str]:
    if who["mode"] == "owner":
        return [f"measured as: --as owner, the connecting role {who['role']}; "
                f"{who['row_level_security']}"]
    policies = []
    for table, rules in who["policies"].items():
        # Commands with the same rule share a line: most rules read alike for all four.
        same: dict[str, list[str]] = {}
        for command, rule in rules.items():
            same.setdefault(rule["words"], []).append(command)
        policies += [f"  {table} {'/'.join(commands)}: {words}"
                     for words, commands in same.items()]
    return [f"measured as: --as app, throwaway role {who['role']} standing for the app role "
            f"{who['stands_for']} (current_user {who['current_user']}): its grants, row-level "
            f"security enabled and forced on {', '.join(who['policies'])}, and its search "
            "settings set after SET ROLE",
            "  policies:", *(f"  {line}" for line in policies),
            f"  identity: {who['identity']}"]


def _text_compare_header(compare: dict[str, Any]) -> list[str]:
    settings = ", ".join(f"{k}={v}" for k, v in compare["session_settings"].items())
    return [f"compare: mem0-default, {compare['table']} as {compare['made_as']}; "
            f"{compare['rows_copied']} rows copied, indexes built in "
            f"{compare['index_build']['seconds']:.1f} s; as {compare['measured_as']} with "
            f"pgvector's defaults ({settings}); {compare['order']}"]


def _text_users(report: dict[str, Any]) -> list[str]:
    users = report["users"]
    lines = [f"users: {users['distribution']} ({users['rule']}); top user "
             f"{users['top_user_memories']} memories, median {users['median_user_memories']}, "
             f"smallest {users['smallest_user_memories']}"]
    for c in users["classes"]:
        low, high = c["memories_per_user"]
        users = "1 user" if c["users"] == 1 else f"{c['users']} users"
        lines.append(f"  class {c['class']:<6} ({low}-{high} memories per user): {users}, "
                     f"{c['largest']}..{c['smallest']} memories each, {c['memories']} in all")
    return [*lines, ""]


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
    lines += [_size_line(table, size) for table, size in report["sizes"].items()]
    if "compare" in report:
        lines += [_size_line(f"mem0-default {table}", size)
                  for table, size in report["compare"]["sizes"].items()]
    return [*lines, ""]


def _extra(m: dict[str, Any]) -> str:
    """What a metric has beyond its latencies: recall, pages, neighbours."""
    parts: list[str] = []
    for k in RECALL_AT:
        if f"recall_at_{k}_mean" in m:
            parts.append(f"recall@{k} {m[f'recall_at_{k}_mean']:.4f} "
                         f"(min {m[f'recall_at_{k}_min']:.2f})")
    if "full_pages" in m:
        parts.append(f"rows {m['rows_returned_mean']:.1f}/{m['rows_expected_mean']:.1f}, "
                     f"full {m['full_pages']}/{m['count']}")
    if "neighbours_mean" in m:
        parts.append(f"neighbours {m['neighbours_mean']:.1f}")
    return "  ".join(parts)


def _latency_cells(m: dict[str, Any]) -> str:
    return (f"{m['count']:>6}{m['mean_ms']:>9.3f}{m['p50_ms']:>9.3f}{m['p95_ms']:>9.3f}"
            f"{m['p99_ms']:>9.3f}{m['max_ms']:>9.3f}")


def _size_line(label: str, size: dict[str, Any]) -> str:
    top = ", ".join(f"{name} {megabytes(b)}"
                    for name, b in list(size["per_index_bytes"].items())[:3])
    return (f"size {label}: {megabytes(size['total_bytes'])} total = table+toast "
            f"{megabytes(size['table_bytes'])} + indexes "
            f"{megabytes(size['indexes_bytes'])} ({top})")


def _text_metrics(report: dict[str, Any]) -> list[str]:
    compare = report.get("compare")
    side = f"{'side':<6}" if compare else ""
    lines = [f"{'measurement':<24}{side}{'count':>6}{'mean':>9}{'p50':>9}{'p95':>9}{'p99':>9}"
             f"{'max':>9}  (ms)  recall@k (min), rows returned/expected, full pages"]
    for name, m in report["metrics"].items():
        stack = "stack " if compare else ""
        lines.append(f"{name:<24}{stack}{_latency_cells(m)}  {_extra(m)}".rstrip())
        if compare and name in compare["metrics"]:
            other = compare["metrics"][name]
            ratio = compare["p95_ratio"][name]
            shown = "-" if ratio is None else f"{ratio:.2f}x"
            lines.append(f"{'':<24}{'mem0':<6}{_latency_cells(other)}  {_extra(other)}  "
                         f"p95 mem0/stack {shown}")
    return [*lines, ""]


def _text_thresholds(report: dict[str, Any]) -> list[str]:
    lines = [f"{'threshold (p95)':<24}{'p95':>9}{'limit':>9}  {'setting':<17}result"]
    for name, t in report["thresholds"].items():
        lines.append(f"{name:<24}{t['p95_ms']:>9.3f}{t['limit_ms']:>9}  {t['setting']:<17}"
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
    who = report["parameters"]["measured_as"]["role"]
    mem0 = report.get("compare", {}).get("plans", {})
    lines = [f"plans: EXPLAIN ANALYZE of one query per size class, as {who}"]
    for name, plan in report["plans"].items():
        lines += [f"{name}: {plan['statement']}",
                  f"  custom plan: {plan['custom']}",
                  f"  generic plan: {plan['generic']}",
                  f"  timed runs: {_plan_counts(plan['timed_runs'])} (mostly {plan['used']}); "
                  f"indexes: custom {plan['custom_plan_indexes'] or 'none'}, generic "
                  f"{plan['generic_plan_indexes'] or 'none'}, exact (ground truth) "
                  f"{plan['exact_plan_indexes'] or 'none'}"]
        if name in mem0:
            theirs = mem0[name]
            lines.append(f"  mem0-default: custom plan {theirs['custom']}; generic plan "
                         f"{theirs['generic']}; timed runs mostly {theirs['used']}")
        lines.append("  EXPLAIN ANALYZE (custom plan, the parameters folded in):")
        lines += [f"    {line}" for line in plan["custom_plan"]]
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
        f"  user ids: {rls['user_ids']}; search: LIMIT {rls['limit']}; list: LIMIT "
        f"{rls['list_limit']}",
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
    lines = [*_text_header(report), *_text_users(report), *_text_build(report),
             *_text_metrics(report), *_text_thresholds(report), *_text_plans(report)]
    if "rls" in report:
        lines += _text_rls(report)
    return "\n".join(lines) + "\n"
