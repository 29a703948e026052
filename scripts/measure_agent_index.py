"""Measure mem0's agent-scoped queries (user_id + agent_id) at 100K memories, with and without
a btree (user_id, agent_id) index (prints figures; no asserts).

    .venv/bin/python scripts/measure_agent_index.py [--rows 100000] [--users 1000]
        [--dims 384] [--queries 200] [--rounds 3] [--json]

Uses the test bed's server (MEM0_TEST_DSN or a temporary local cluster). Deploys a stack
through the real Pulumi CLI (appRoleIdentity trusted, the default), loads --rows memories
as mem0 writes them: --users users with zipf-skewed counts (components/bench/users.py), each
with 2 to 6 agents named from one pool of agent names (an application's agents are shared
by its users), a quarter of each user's memories at user level (no agent_id) and the rest
split 1/rank among its agents; vectors near a per-user centre, texts of random words.

Then, as the app role, it sends the three statements `Memory.search` and `Memory.get_all`
send with filters={"user_id": U, "agent_id": A} (their WHERE built by mem0's own
`_build_filter_conditions`, so `payload->>%s = %s` with the key bound): the semantic search
(LIMIT 80), the keyword search (LIMIT 80) and the list (LIMIT 80). Each type runs
--queries times over users drawn uniformly and --queries times over the 20 largest users
(an agent of the user drawn uniformly), without a (user_id, agent_id) index, with the
model's btree on mem0's expressions ((payload->>'user_id'), (payload->>'agent_id')) and
with a btree on the
generated columns (user_id, agent_id); then again after `pulumi up` switches the app role to
appRoleIdentity required (each query's connection names its user in mem0.user_id). Prints
p50/p95 per cell and EXPLAIN (ANALYZE, BUFFERS) of the largest user's largest agent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="mem0-dir-"))

from mem0.vector_stores.pgvector import _build_filter_conditions  # type: ignore[import-untyped]

from components.bench.data import WORDS
from components.bench.explain import explain_analyze
from components.bench.measure import percentiles
from components.bench.users import user_counts
from components.connection import role_url
from components.mem0 import DEFAULT_SEARCH_LIMIT, Statements
from tests.conftest import APP_PASSWORD, TestDatabase, project_roles_for, stack_config
from tests.support.engine import PulumiStack
from tests.support.testbed import PgServer, create_database, drop_database, start_server

AGENTS = ("support", "travel", "coder", "planner", "tutor", "shopper", "health", "finance",
          "writer", "research", "calendar", "music")
USER_LEVEL_SHARE = 0.25  # memories of a user with no agent_id
TOP_USERS = 20
# The variants: "expr" is the model's own index (components/model.py), on mem0's
# expressions; "column" the same pair on the generated columns. Each variant drops the
# others' indexes first, so "none" is the model without its (user_id, agent_id) index.
INDEXES = {
    "none": None,
    "expr": "CREATE INDEX memories_user_agent_idx ON public.memories "
            "(((payload ->> 'user_id'::text)), ((payload ->> 'agent_id'::text)))",
    "column": "CREATE INDEX bench_user_agent_col_idx ON public.memories (user_id, agent_id)",
}
INDEX_NAMES = {"expr": "memories_user_agent_idx", "column": "bench_user_agent_col_idx"}
TYPES = ("search", "keyword", "list")
PLAN_WORDS = ("Scan", "Index Cond", "Filter", "Rows Removed", "Sort", "Limit", "Buffers",
              "Execution Time", "Planning", "BitmapAnd", "Recheck")

Say = Callable[[str], None]


# --- mem0's statements with two filters ---------------------------------------------------------

def statements(user: str, agent: str) -> tuple[dict[str, str], list[Any]]:
    """The three statements with mem0's WHERE for filters={"user_id", "agent_id"}, and the
    filter parameters (mem0 binds the key too)."""
    conditions, params = _build_filter_conditions({"user_id": user, "agent_id": agent})
    where = " AND ".join(conditions)
    table = Statements.verbatim("memories").table
    document = "to_tsvector('simple', payload->>'text_lemmatized')"
    query = "plainto_tsquery('simple', %s)"
    return {
        "search": f"SELECT id, vector <=> %s::vector AS distance, payload FROM {table} "
                  f"WHERE {where} ORDER BY distance LIMIT %s",
        "keyword": f"SELECT id, ts_rank_cd({document}, {query}) AS score, payload FROM "
                   f"{table} WHERE {document} @@ {query} AND {where} "
                   "ORDER BY score DESC LIMIT %s",
        "list": f"SELECT id, payload FROM {table} WHERE {where} LIMIT %s",
    }, params


def parameters(kind: str, filters: list[Any], vector: list[float], word: str) -> list[Any]:
    if kind == "search":
        return [vector, *filters, DEFAULT_SEARCH_LIMIT]
    if kind == "keyword":
        return [word, word, *filters, DEFAULT_SEARCH_LIMIT]
    return [*filters, DEFAULT_SEARCH_LIMIT]


# --- data ---------------------------------------------------------------------------------------

def layout(rows: int, users: int, seed: int) -> list[tuple[str, str | None, int]]:
    """(user id, agent or None, memories) segments: zipf users, 2-6 agents each."""
    rng = random.Random(seed)
    segments: list[tuple[str, str | None, int]] = []
    for rank, count in enumerate(user_counts(rows, users, "zipf")):
        user = f"user_{rank + 1}"
        start = rng.randrange(len(AGENTS))
        agents = [AGENTS[(start + 5 * j) % len(AGENTS)] for j in range(rng.randint(2, 6))]
        user_level = round(count * USER_LEVEL_SHARE) if count > 1 else 0
        rest = count - user_level
        weights = [1 / r for r in range(1, len(agents) + 1)]
        shares = [int(rest * w / sum(weights)) for w in weights]
        shares[0] += rest - sum(shares)
        if user_level:
            segments.append((user, None, user_level))
        segments += [(user, a, n) for a, n in zip(agents, shares, strict=True) if n]
    return segments


def load(dsn: str, segments: list[tuple[str, str | None, int]], dims: int, say: Say) -> None:
    """The memories as mem0 writes them, in random order; indexes rebuilt after the rows
    (as a superuser, triggers off: the load is not what is measured)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = 'public.memories'::regclass AND NOT indisprimary").fetchall()
        for name, _definition in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("CREATE TEMP TABLE segments (user_id text, agent_id text, n integer)")
        with conn.cursor().copy("COPY segments FROM STDIN") as copy:
            for segment in segments:
                copy.write_row(segment)
        conn.execute("CREATE TEMP TABLE centres AS SELECT user_id, ARRAY(SELECT "
                     "pg_catalog.random() - 0.5 FROM generate_series(1, %s) WHERE "
                     "user_id IS NOT NULL) AS c FROM (SELECT DISTINCT user_id FROM segments) u",
                     (dims,))
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        started = time.monotonic()
        words = list(WORDS)
        # Each subquery names a column of its row, so it runs per row (not once).
        conn.execute(
            "INSERT INTO public.memories (id, vector, payload) "
            "SELECT gen_random_uuid(), ARRAY(SELECT r.c[i] + 0.6 * (pg_catalog.random() - 0.5)"
            "   FROM generate_series(1, %(dims)s) i WHERE r.k > 0)::public.vector, "
            " jsonb_strip_nulls(jsonb_build_object('data', r.text, 'hash', md5(r.text), "
            "  'role', 'user', 'user_id', r.user_id, 'agent_id', r.agent_id, "
            "  'created_at', now()::text, 'updated_at', now()::text, "
            "  'text_lemmatized', r.text)) "
            "FROM (SELECT s.user_id, s.agent_id, c.c, g.k, (SELECT string_agg("
            "   (%(words)s::text[])[1 + floor(pg_catalog.random() * %(nwords)s)::int], ' ')"
            "   FROM generate_series(1, 6) w WHERE g.k > 0) AS text "
            "  FROM segments s JOIN centres c ON c.user_id = s.user_id, "
            "  generate_series(1, s.n) g(k) ORDER BY pg_catalog.random()) r",
            {"dims": dims, "words": words, "nwords": len(words)})
        say(f"loaded {sum(s[2] for s in segments)} memories in "
            f"{time.monotonic() - started:.0f} s; rebuilding {len(indexes)} indexes")
        started = time.monotonic()
        for _name, definition in indexes:
            conn.execute(definition)
        conn.execute("ANALYZE public.memories")
        say(f"indexes rebuilt in {time.monotonic() - started:.0f} s")


def centres(dsn: str) -> dict[str, list[float]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT payload ->> 'user_id', avg(vector)::text FROM "
                            "public.memories GROUP BY 1").fetchall()
    return {u: [float(x) for x in v.strip("[]").split(",")] for u, v in rows}


# --- measuring ----------------------------------------------------------------------------------

def workload(segments: list[tuple[str, str | None, int]], queries: int, seed: int
             ) -> dict[str, list[tuple[str, str]]]:
    """(user, agent) pairs: users drawn uniformly, and the TOP_USERS largest users."""
    rng = random.Random(seed)
    agents: dict[str, list[str]] = {}
    for user, agent, _n in segments:
        if agent is not None:
            agents.setdefault(user, []).append(agent)
    users = list(agents)  # in rank order: the largest first
    top = users[:TOP_USERS]
    return {"all users": [(u, rng.choice(agents[u])) for u in rng.choices(users, k=queries)],
            f"top {TOP_USERS} users": [(u, rng.choice(agents[u]))
                                       for u in rng.choices(top, k=queries)]}


def measure(app_dsn: str, bound: bool, pairs: list[tuple[str, str]], kind: str,
            vectors: dict[str, list[float]], rng: random.Random) -> dict[str, float]:
    """Milliseconds per statement (execute + fetch), as mem0's pool runs it (psycopg's
    default prepare threshold), after 10 warm-up statements; then, untimed, the same
    statement under EXPLAIN (ANALYZE, BUFFERS): the server's execution time and the
    buffers it touched, which a busy machine's scheduling does not blur."""
    timings: list[float] = []
    server: list[float] = []
    buffers: list[int] = []
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        for number, (user, agent) in enumerate([*pairs[:10], *pairs]):
            if bound:
                conn.execute("SELECT pg_catalog.set_config('mem0.user_id', %s, false)",
                             (user,))
            sql, filters = statements(user, agent)
            noisy = [x + rng.gauss(0, 0.05) for x in vectors[user]]
            params = parameters(kind, filters, noisy, rng.choice(WORDS))
            started = time.perf_counter()
            conn.execute(sql[kind], params).fetchall()
            if number < 10:
                continue
            timings.append((time.perf_counter() - started) * 1000)
            row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql[kind]}", params,
                               prepare=False).fetchone()
            assert row is not None
            [plan] = row[0]
            server.append(plan["Execution Time"])
            top = plan["Plan"]
            buffers.append(top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0))
    p50, p95 = percentiles(timings, (50, 95))
    s50, s95 = percentiles(server, (50, 95))
    return {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "queries": len(timings),
            "server_p50_ms": round(s50, 2), "server_p95_ms": round(s95, 2),
            "buffers_mean": round(statistics.mean(buffers), 1)}


def plans(app_dsn: str, bound: bool, user: str, agent: str,
          vectors: dict[str, list[float]]) -> dict[str, list[str]]:
    found = {}
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        if bound:
            conn.execute("SELECT pg_catalog.set_config('mem0.user_id', %s, false)", (user,))
        sql, filters = statements(user, agent)
        for kind in TYPES:
            lines = explain_analyze(conn, sql[kind],
                                    parameters(kind, filters, vectors[user], "hiking"))
            found[kind] = [line for line in lines if any(w in line for w in PLAN_WORDS)]
    return found


def deploy(server: PgServer, name: str, state: Path, identity: str, dims: int) -> str:
    """`pulumi up` of the bench stack on database `name`; returns the app role's URL."""
    database = TestDatabase(server, name, server.dsn_for(name))
    config = stack_config(database, appRoleIdentity=identity, dimensions=dims)
    PulumiStack("bench", state, config).up().raise_for_error()
    return role_url(database.dsn, project_roles_for(database)["appRole"], APP_PASSWORD)


def switch_index(admin: str, variant: str, ddl: str | None, results: dict[str, Any]) -> None:
    """Only `variant`'s extra index on the table (none for "none"), statistics fresh."""
    with psycopg.connect(admin, autocommit=True) as conn:
        for other in INDEX_NAMES.values():
            conn.execute(f"DROP INDEX IF EXISTS public.{other}")
        if ddl:
            conn.execute(ddl)
            row = conn.execute("SELECT pg_size_pretty(pg_relation_size(%s::regclass))",
                               (f"public.{INDEX_NAMES[variant]}",)).fetchone()
            results["indexes"][variant] = row[0] if row else "?"
        conn.execute("ANALYZE public.memories")


def run(server: PgServer, args: argparse.Namespace, say: Say) -> dict[str, Any]:
    name = create_database(server)
    results: dict[str, Any] = {"cells": [], "plans": {}, "indexes": {}}
    try:
        state = Path(tempfile.mkdtemp(prefix="agent-index-")) / "state.json"
        say("deploying (appRoleIdentity trusted)")
        app_dsn = deploy(server, name, state, "trusted", args.dims)
        segments = layout(args.rows, args.users, args.seed)
        admin = server.dsn_for(name)
        load(admin, segments, args.dims, say)
        vectors = centres(admin)
        pairs = workload(segments, args.queries, args.seed)
        largest = max((s for s in segments if s[1] is not None), key=lambda s: s[2])
        results["largest"] = {"user": largest[0], "agent": largest[1], "rows": largest[2]}
        results["pairs"] = len({(u, a) for u, a, _n in segments if a})
        for identity in ("trusted", "required"):
            if identity == "required":
                say("pulumi up: appRoleIdentity required")
                deploy(server, name, state, identity, args.dims)
            bound = identity == "required"
            # Rounds interleave the variants, so a burst of load on a shared machine
            # lands on all of them; the report takes each cell's median over the rounds.
            for round_ in range(args.rounds):
                for variant, ddl in INDEXES.items():
                    switch_index(admin, variant, ddl, results)
                    for kind in TYPES:
                        for bucket, chosen in pairs.items():
                            say(f"round {round_ + 1}: {identity} / {variant} / {kind} / "
                                f"{bucket}")
                            figures = measure(app_dsn, bound, chosen, kind, vectors,
                                              random.Random(args.seed + round_))
                            results["cells"].append({
                                "identity": identity, "index": variant, "type": kind,
                                "users": bucket, "round": round_ + 1, **figures})
                    if round_ == 0:
                        results["plans"][f"{identity}/{variant}"] = plans(
                            app_dsn, bound, largest[0], largest[1] or "", vectors)
    finally:
        drop_database(server, name)
    return results


def index_use(plan: list[str], variant: str) -> str:
    """How the plan reads `variant`'s index: "" (not at all), its name, or its name and
    "(user_id only)" when its Index Cond does not reach agent_id."""
    for number, line in enumerate(plan):
        if INDEX_NAMES[variant] in line:
            condition = plan[number + 1] if number + 1 < len(plan) else ""
            return variant + ("" if "agent_id" in condition else " (user_id only)")
    return ""


def markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    largest = results["largest"]
    lines = [f"{args.rows} memories, {args.users} users (zipf), {results['pairs']} "
             f"(user, agent) pairs, {args.dims} dims; {args.queries} queries per cell and "
             f"round, ms, median of {args.rounds} rounds; "
             f"largest pair {largest['user']}/{largest['agent']}: {largest['rows']} rows. "
             "Index sizes: " + ", ".join(f"{k} {v}" for k, v in results["indexes"].items()),
             "", "| identity | query | users | p50 none | p50 expr | p50 column | "
             "p95 none | p95 expr | p95 column | p95 none/expr | p95 none/column | "
             "largest pair's plan uses |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rounds: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for c in results["cells"]:
        rounds.setdefault((c["identity"], c["index"], c["type"], c["users"]), []).append(c)

    def median(identity: str, variant: str, kind: str, bucket: str, key: str) -> float:
        return round(statistics.median(c[key] for c in rounds[(identity, variant, kind,
                                                                  bucket)]), 2)

    for identity in ("trusted", "required"):
        for kind in TYPES:
            used = [use for v in INDEX_NAMES
                    if (use := index_use(results["plans"][f"{identity}/{v}"][kind], v))]
            for bucket in sorted({c["users"] for c in results["cells"]}):
                p50 = {v: median(identity, v, kind, bucket, "p50_ms") for v in INDEXES}
                p95 = {v: median(identity, v, kind, bucket, "p95_ms") for v in INDEXES}
                lines.append(
                    f"| {identity} | {kind} | {bucket} | "
                    + " | ".join(str(p50[v]) for v in INDEXES) + " | "
                    + " | ".join(str(p95[v]) for v in INDEXES) + " | "
                    f"{p95['none'] / p95['expr']:.2f}x | {p95['none'] / p95['column']:.2f}x | "
                    f"{', '.join(used) or 'neither'} |")
    lines += ["", "In the server (EXPLAIN ANALYZE of the same statements, untimed by the "
              "client): execution time p95 in ms and shared buffers touched per statement "
              "(mean), median of the rounds:", "",
              "| identity | query | users | server p95 none | expr | column | "
              "buffers none | expr | column |", "|---|---|---|---|---|---|---|---|---|"]
    for identity in ("trusted", "required"):
        for kind in TYPES:
            for bucket in sorted({c["users"] for c in results["cells"]}):
                lines.append(
                    f"| {identity} | {kind} | {bucket} | "
                    + " | ".join(str(median(identity, v, kind, bucket, "server_p95_ms"))
                                 for v in INDEXES) + " | "
                    + " | ".join(str(median(identity, v, kind, bucket, "buffers_mean"))
                                 for v in INDEXES) + " |")
    lines += ["", "EXPLAIN (ANALYZE, BUFFERS), the largest pair (lines that matter):"]
    for key, found in results["plans"].items():
        for kind, plan in found.items():
            lines += ["", f"{key} {kind}:", "```", *plan, "```"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def say(message: str) -> None:
        print(f"... {message}", file=sys.stderr, flush=True)

    server, stop = start_server()
    try:
        results = run(server, args, say)
    finally:
        stop()
    print(json.dumps(results, indent=2) if args.json else markdown(results, args))


if __name__ == "__main__":
    main()
