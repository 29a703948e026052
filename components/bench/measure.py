"""The measurements: mem0's statements timed on the stack's copy, and on mem0's own table.

Every statement is timed on each side in turn, query by query (stack, mem0, stack, mem0 ...
with `--compare`; the stack alone without), on the sides' own connections, so noise on the
machine hits both alike and each connection keeps its own prepared statements, as two mem0
processes would. Latency is client-observed: execute and fetch, one statement per run.

Searches send mem0's LIMIT (80) and are checked against an exact search of the same
statement (no index, in a transaction of its own, on the stack's session, so under its
row-level security): recall@10 (the exact 10 nearest among the 10 nearest returned) and
recall@80 (of the whole page), and rows returned against rows expected, min(80, the rows the
query can see): a search that returns fewer is a short page, which is what mem0 then shows.

Each summary goes to the report; the raw latencies stay out of the JSON document (a run of
200 samples would add a thousand numbers to it) and are kept only for `--plot`.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg

from components import mem0
from components.bench.common import LIMIT, LIST_LIMIT, RECALL_AT, WARMUP, Names
from components.bench.data import Mem0Row
from components.bench.explain import (
    describe,
    exact_plan,
    explain_analyze,
    explain_generic,
    index_methods,
    prepared_plans,
    used_plan,
)
from components.bench.progress import Progress
from components.bench.role import Session
from components.bench.samples import Draw
from components.bench.server import Server
from components.bench.users import SizeClass
from components.model import NEIGHBOURS_FUNCTION
from components.plans import indexes_in

__all__ = ["HOPS", "MEASUREMENTS", "MEM0", "PER_CLASS", "STACK", "STACK_ONLY", "Latencies",
           "Measured", "Params", "Probe", "Rows", "Runs", "Side", "Tick", "family_of",
           "get_sql", "insert_sql", "latency_summary", "list_sql", "metric_name", "percentile",
           "percentiles", "run_measurements", "search_params", "search_sql", "traverse_sql"]

# Measurement families, in the report's order; those in PER_CLASS have one metric per size
# class, named <family>_<class key> (search_user_10k, list_user_10 ...).
MEASUREMENTS = ("insert", "search_user", "search_unfiltered", "get_by_id", "list_user",
                "traverse_1hop", "traverse_2hop")
PER_CLASS = ("search_user", "list_user")
STACK_ONLY = ("traverse_1hop", "traverse_2hop")  # mem0's own table has no relationships
HOPS = (1, 2)  # memory_neighbours(id, max_depth) allows 1 or 2
STACK, MEM0 = "stack", "mem0"

Params = Sequence[Any]
Rows = list[tuple[Any, ...]]
Latencies = list[float]  # ms, one per timed run, in run order
Tick = Callable[[], None]  # called after each run: a progress bar's step


def metric_name(family: str, size: SizeClass | None = None) -> str:
    return f"{family}_{size.key}" if size is not None else family


def family_of(metric: str) -> str:
    """The measurement family a metric belongs to (search_user_10k -> search_user)."""
    return next((f for f in PER_CLASS if metric.startswith(f + "_")), metric)


def _no_tick() -> None:
    pass


@dataclass(frozen=True)
class Side:
    """Where a statement is timed: the session and the table it reads."""

    name: str  # STACK or MEM0
    session: Session
    names: Names  # its .memories is this side's table

    @property
    def conn(self) -> psycopg.Connection[Any]:
        return self.session.conn


@dataclass(frozen=True)
class Probe:
    """One run of a statement: the metric it counts towards, whom it acts for, its values."""

    metric: str
    user: str | None
    params: Params
    expected: int | None = None  # rows a full answer has, where known before the run


@dataclass
class Runs:
    """A side's timed runs of one statement, in run order."""

    probes: list[Probe] = field(default_factory=list)
    latencies: Latencies = field(default_factory=list)
    results: list[Rows] = field(default_factory=list)


# --- timed runs -----------------------------------------------------------------------------

def _timed(sides: Sequence[Side], statement_of: Callable[[Names], str],
           probes: Sequence[Probe], tick: Tick = _no_tick,
           write: bool = False) -> dict[str, Runs]:
    """Each probe on every side in turn; the first WARMUP untimed (psycopg prepares a
    statement on its 6th execution, so the timed runs see what a long-lived mem0 pool
    connection sees). A write runs in a transaction of its own, as mem0's do."""
    runs = {side.name: Runs() for side in sides}
    statements = {side.name: statement_of(side.names) for side in sides}
    cursors = {side.name: side.conn.cursor() for side in sides}
    try:
        for number, probe in enumerate(probes):
            for side in sides:
                side.session.act_for(probe.user)
                cur = cursors[side.name]
                started = time.perf_counter()
                if write:
                    with side.conn.transaction():
                        cur.execute(statements[side.name], probe.params)
                    rows: Rows = []
                else:
                    cur.execute(statements[side.name], probe.params)
                    rows = cur.fetchall()
                elapsed = (time.perf_counter() - started) * 1000
                if number >= WARMUP:
                    runs[side.name].probes.append(probe)
                    runs[side.name].latencies.append(elapsed)
                    runs[side.name].results.append(rows)
            tick()  # outside the timed span
    finally:
        for cur in cursors.values():
            cur.close()
    return runs


def percentile(latencies: Sequence[float], p: int) -> float:
    """The p-th percentile (1..99) by linear interpolation between the two nearest ranks,
    the inclusive definition (numpy's default): the median of 1, 2, 3, 4 is 2.5."""
    return percentiles(latencies, (p,))[0]


def percentiles(latencies: Sequence[float], points: Sequence[int]) -> list[float]:
    """`percentile` of each of `points`, from one sort."""
    if len(latencies) == 1:  # statistics.quantiles needs two
        return [latencies[0] for _ in points]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return [cuts[p - 1] for p in points]


def latency_summary(latencies: Sequence[float]) -> dict[str, Any]:
    """Count, mean, p50, p95, p99, min and max, in ms rounded to the microsecond."""
    ordered = sorted(latencies)
    p50, p95, p99 = percentiles(ordered, (50, 95, 99))
    return {"count": len(ordered), "mean_ms": round(sum(ordered) / len(ordered), 3),
            "p50_ms": round(p50, 3), "p95_ms": round(p95, 3), "p99_ms": round(p99, 3),
            "min_ms": round(ordered[0], 3), "max_ms": round(ordered[-1], 3)}


def _by_metric(runs: Runs) -> dict[str, list[int]]:
    """Each metric's run numbers, metrics in the order they first ran."""
    groups: dict[str, list[int]] = {}
    for number, probe in enumerate(runs.probes):
        groups.setdefault(probe.metric, []).append(number)
    return groups


def _pages(found: Sequence[Rows], expected: Sequence[int]) -> dict[str, Any]:
    return {"rows_returned_mean": round(sum(map(len, found)) / len(found), 2),
            "rows_expected_mean": round(sum(expected) / len(expected), 2),
            "full_pages": sum(len(f) >= e for f, e in zip(found, expected, strict=True)),
            "short_results": sum(len(f) < e for f, e in zip(found, expected, strict=True))}


# --- searches -------------------------------------------------------------------------------

def search_sql(n: Names, user_scoped: bool) -> str:
    """mem0's search (components.mem0): by the user's key, or over every row."""
    return n.statements.search(filtered=user_scoped)


def search_params(user: str | None, vector: list[float], user_scoped: bool) -> Params:
    """The search's parameters, in mem0's order; the vector a list, bound as mem0 binds it
    (psycopg sends float8[] and `%s::vector` converts it): the bench times mem0's own."""
    return mem0.search_params(vector, user if user_scoped else None)


def _exact(conn: psycopg.Connection[Any], statement: str, params: Params) -> Rows:
    with exact_plan(conn):
        # Not prepared: a cached generic plan ignores planner settings changed after it.
        return conn.execute(statement, params, prepare=False).fetchall()


def _truths(side: Side, statement: str, probes: Sequence[Probe], tick: Tick) -> list[Rows]:
    truths: list[Rows] = []
    for probe in probes:
        side.session.act_for(probe.user)
        truths.append(_exact(side.conn, statement, probe.params))
        tick()
    return truths


def _nearest_ids(rows: Rows, k: int) -> set[Any]:
    # mem0 ranks what it gets; a relaxed-order iterative scan may return it out of order.
    return {row[0] for row in sorted(rows, key=lambda row: row[1])[:k]}


def _recall(found: Rows, exact: Rows, k: int) -> float:
    truth = _nearest_ids(exact, k)
    return len(truth & _nearest_ids(found, k)) / len(truth) if truth else 1.0


def _search_summary(latencies: Sequence[float], found: Sequence[Rows],
                    exact: Sequence[Rows], users: set[str | None]) -> dict[str, Any]:
    out = {**latency_summary(latencies), "limit": LIMIT}
    for k in RECALL_AT:
        recalls = [_recall(f, e, k) for f, e in zip(found, exact, strict=True)]
        out[f"recall_at_{k}_mean"] = round(sum(recalls) / len(recalls), 4)
        out[f"recall_at_{k}_min"] = round(min(recalls), 4)
        if k == RECALL_AT[0]:
            out[f"queries_recall_at_{k}_below_half"] = sum(r < 0.5 for r in recalls)
    return {**out, **_pages(found, [len(e) for e in exact]), "users": len(users)}


def _search(sides: Sequence[Side], probes: Sequence[Probe], user_scoped: bool, label: str,
            progress: Progress) -> tuple[dict[str, Runs], dict[str, list[Rows]]]:
    """Timed runs on every side, then each timed probe's exact answer: the stack side's,
    which the other sides share unless the stack's role sees other rows for it (an identity
    required and no user filter)."""
    with progress.bar(f"measuring {label}", len(probes)) as bar:
        runs = _timed(sides, lambda n: search_sql(n, user_scoped), probes, bar.advance)
    timed = probes[WARMUP:]
    stack = sides[0]
    own = [s for s in sides[1:] if stack.session.identity and not user_scoped]
    with progress.bar(f"exact {label} (ground truth)", len(timed) * (1 + len(own))) as bar:
        shared = _truths(stack, search_sql(stack.names, user_scoped), timed, bar.advance)
        truths = {side.name: shared for side in sides}
        for side in own:
            truths[side.name] = _truths(side, search_sql(side.names, user_scoped), timed,
                                        bar.advance)
    return runs, truths


def _search_metrics(runs: Runs, truths: Sequence[Rows]) -> dict[str, dict[str, Any]]:
    metrics: dict[str, dict[str, Any]] = {}
    for metric, numbers in _by_metric(runs).items():
        metrics[metric] = _search_summary(
            [runs.latencies[i] for i in numbers], [runs.results[i] for i in numbers],
            [truths[i] for i in numbers], {runs.probes[i].user for i in numbers})
    return metrics


# --- get, list, traversal, insert -----------------------------------------------------------

def get_sql(n: Names) -> str:
    return n.statements.get()


def list_sql(n: Names) -> str:
    return n.statements.list()


def insert_sql(n: Names) -> str:
    # The float list reaches vector(N) through pgvector's assignment cast, as mem0's does. On
    # the stack's copy the indexes and the history trigger are in place.
    return n.statements.insert()


def traverse_sql(n: Names, hops: int) -> str:
    return f"SELECT * FROM {n.obj(NEIGHBOURS_FUNCTION)}(%s, {hops:d})"


def _page_metrics(runs: Runs) -> dict[str, dict[str, Any]]:
    """Summaries of a statement whose full answer is known (get, list)."""
    metrics: dict[str, dict[str, Any]] = {}
    for metric, numbers in _by_metric(runs).items():
        found = [runs.results[i] for i in numbers]
        expected = [runs.probes[i].expected or 0 for i in numbers]
        metrics[metric] = {**latency_summary([runs.latencies[i] for i in numbers]),
                           **_pages(found, expected),
                           "users": len({runs.probes[i].user for i in numbers})}
    return metrics


def _side_search_metrics(truths: dict[str, list[Rows]], side: str,
                         runs: Runs) -> dict[str, dict[str, Any]]:
    return _search_metrics(runs, truths[side])


def _named_traverse_summary(metric: str, _side: str, runs: Runs) -> dict[str, Any]:
    return {metric: _traverse_summary(runs)}


def _traverse_summary(runs: Runs) -> dict[str, Any]:
    return {**latency_summary(runs.latencies),
            "neighbours_mean": round(sum(map(len, runs.results)) / len(runs.results), 2)}


# --- plans ----------------------------------------------------------------------------------

def _first_of_each(probes: Sequence[Probe]) -> dict[str, Probe]:
    firsts: dict[str, Probe] = {}
    for probe in probes[WARMUP:]:
        firsts.setdefault(probe.metric, probe)
    return firsts


def _plans(sides: Sequence[Side], server: Server, user: Sequence[Probe],
           unfiltered: Sequence[Probe]) -> dict[str, dict[str, Any]]:
    """side -> metric -> the plans of one query of each class (and the unfiltered search):
    custom and generic, the indexes of the stack's exact plan, and which the timed runs
    used; each in words and by its indexes."""
    methods = index_methods(sides[0].conn, sorted({s.names.scratch for s in sides}))
    out: dict[str, dict[str, Any]] = {side.name: {} for side in sides}
    for scoped, probes in ((True, user), (False, unfiltered)):
        for metric, probe in _first_of_each(probes).items():
            for side in sides:
                statement = search_sql(side.names, scoped)
                side.session.act_for(probe.user)
                custom = explain_analyze(side.conn, statement, probe.params)
                counts = prepared_plans(side.conn, server, statement)
                plan: dict[str, Any] = {
                    "statement": statement, "timed_runs": counts, "used": used_plan(counts),
                    "custom": describe(custom, methods, side.session.settings),
                    "custom_plan_indexes": indexes_in(custom), "custom_plan": custom}
                generic = explain_generic(side.conn, statement, probe.params)
                plan.update(generic=describe(generic, methods, side.session.settings),
                            generic_plan_indexes=indexes_in(generic), generic_plan=generic)
                if side.name == STACK:
                    exact = explain_analyze(side.conn, statement, probe.params, exact=True)
                    plan["exact_plan_indexes"] = indexes_in(exact)
                out[side.name][metric] = plan
    return out


# --- the run --------------------------------------------------------------------------------

@dataclass
class Measured:
    """Per side: each metric's summary and its latencies; the plans per side."""

    metrics: dict[str, dict[str, dict[str, Any]]]
    latencies: dict[str, dict[str, Latencies]]
    plans: dict[str, dict[str, dict[str, Any]]]


def _ordered(metrics: dict[str, Any], classes: Sequence[SizeClass]) -> dict[str, Any]:
    names = [metric_name(f, c) for f in MEASUREMENTS
             for c in (classes if f in PER_CLASS else [None])]
    return {name: metrics[name] for name in names if name in metrics}


def run_measurements(sides: Sequence[Side], server: Server, drawn: Draw,
                     inserts: Sequence[Mem0Row], progress: Progress) -> Measured:
    """Every measurement on every side (the stack's first), plans, then the inserts (which
    change the table the others read)."""
    classes = list(dict.fromkeys(q.size for q in drawn.user_queries))
    user = [Probe(metric_name("search_user", q.size), q.user,
                  search_params(q.user, q.vector, True)) for q in drawn.user_queries]
    unfiltered = [Probe("search_unfiltered", u, search_params(u, v, False))
                  for u, v in drawn.unfiltered]
    metrics: dict[str, dict[str, dict[str, Any]]] = {side.name: {} for side in sides}
    latencies: dict[str, dict[str, Latencies]] = {side.name: {} for side in sides}

    def keep(runs: dict[str, Runs], summaries: Callable[[str, Runs], dict[str, Any]]) -> None:
        for side_name, side_runs in runs.items():
            metrics[side_name].update(summaries(side_name, side_runs))
            for metric, numbers in _by_metric(side_runs).items():
                latencies[side_name][metric] = [side_runs.latencies[i] for i in numbers]

    for probes, scoped, label in ((user, True, f"search_user ({len(classes)} size classes)"),
                                  (unfiltered, False, "search_unfiltered")):
        runs, truths = _search(sides, probes, scoped, label, progress)
        keep(runs, partial(_side_search_metrics, truths))
    gets = [Probe("get_by_id", u, (i,), expected=1) for i, u in drawn.gets]
    with progress.bar("measuring get_by_id", len(gets)) as bar:
        keep(_timed(sides, get_sql, gets, bar.advance), lambda _n, r: _page_metrics(r))
    lists = [Probe(metric_name("list_user", q.size), q.user, ("user_id", q.user, LIST_LIMIT),
                   expected=min(LIST_LIMIT, q.memories)) for q in drawn.user_queries]
    with progress.bar(f"measuring list_user ({len(classes)} size classes)", len(lists)) as bar:
        keep(_timed(sides, list_sql, lists, bar.advance), lambda _n, r: _page_metrics(r))
    for hops in HOPS:
        name = f"traverse_{hops}hop"
        walks = [Probe(name, u, (i,)) for i, u in drawn.traversals[hops]]
        with progress.bar(f"measuring {name}", len(walks)) as bar:
            keep(_timed(sides[:1], partial(traverse_sql, hops=hops), walks, bar.advance),
                 partial(_named_traverse_summary, name))
    plans = {side: _ordered(p, classes) for side, p in _plans(sides, server, user,
                                                                  unfiltered).items()}
    rows = [Probe("insert", json.loads(row[2]).get("user_id"), row) for row in inserts]
    with progress.bar("measuring insert", len(rows)) as bar:
        keep(_timed(sides, insert_sql, rows, bar.advance, write=True),
             lambda _n, r: {"insert": latency_summary(r.latencies)})
    labels = {metric_name(f, c): c.label for f in PER_CLASS for c in classes}
    for side_metrics in metrics.values():
        for name in side_metrics.keys() & labels.keys():
            side_metrics[name] = {"class": labels[name], **side_metrics[name]}
    return Measured({side: _ordered(m, classes) for side, m in metrics.items()},
                    {side: _ordered(m, classes) for side, m in latencies.items()}, plans)
