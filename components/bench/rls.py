"""`bench --rls`: what row-level security costs mem0's reads, on the scratch copy.

After the ordinary measurements, in the same session and on the same rows, three statements
mem0 sends are timed for one user at a time (users rotate across samples): the user-scoped
search (mem0's LIMIT 80), get by id, and list (mem0-contract.md 3). Each runs under these
variants of the scratch memories table's row-level security (the app role's own policies,
which the ordinary measurements ran under, are lifted first):

- `none`: row-level security disabled (the baseline);
- `project`: the end users' SELECT rule that `components.access` declares for the stack
  (the policy the stack deploys for `authenticated` / the readonly role), rendered by
  `components.model.policy_ddl`; identity from `mem0.user_id`, read through the scratch
  copy of the stack's identity function `mem0_user_id()` in an InitPlan;
- `project-app`: the app role's rule with appRoleIdentity optional (every row until the
  connection names a user), with the identity set;
- `seed`: the seed's form `USING (auth.uid()::text = user_id)`: a scratch `uid()` that
  reads the JWT's `sub` from `request.jwt.claims` and is called for each row.

Every variant queries as the run's throwaway NOLOGIN role `mem0_bench_<hex>`
(`components.bench.role`; the scratch schema's own random name; the policies name it),
holding SELECT on the scratch table, in one transaction per cell (SET LOCAL ROLE). The role
is dropped when the run ends, whatever happens, after the scratch schema, because the
schema's policies and grants name the role.

Identity: the project variants use the identity function of a postgres-target stack
(`COALESCE(the JWT's sub, mem0.user_id)`), because on target supabase the model's function
calls `auth.uid()`, which a plain PostgreSQL has not: on a supabase stack the scratch
function is replaced by the postgres-target rendering of the same template. The seed's
`uid()` returns uuid, so `--rls` makes the synthetic user ids uuid-shaped text
(`components.bench.users.user_id`); the JWT's `sub` is then the user id itself.

Results must not depend on the variant: for every sample's user, the rows each RLS variant
lets the user's own query see must be the rows `none` sees (exit 1 otherwise). The timed
results are compared too, but a different plan may legitimately return a different
approximate top 80 or a different 100 of a user's rows (mem0's list has no ORDER BY), so
for those the check is that every row is one of the user's visible rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from pgvector import Vector

from components.access import MEMORY, USER_ID_FUNCTION, table_access
from components.bench.common import LIMIT, LIST_LIMIT, WARMUP, BenchError, Names, Options
from components.bench.data import QUERY_NOISE_SHARE
from components.bench.explain import explain_analyze, explain_generic, prepared_plans, used_plan
from components.bench.measure import (
    Params,
    Rows,
    latency_summary,
    percentile,
    search_params,
)
from components.bench.role import grant_functions, role_name
from components.bench.server import Server
from components.errors import ExitCode
from components.identifiers import quote_ident
from components.kinds import Kind
from components.model import build_model, policy_ddl
from components.settings import SUPABASE_END_USER_ROLES, AppRoleIdentity, Settings, Target

__all__ = ["BASELINE", "EXIT_RESULTS_DIFFER", "IDENTITY_SQL", "MAX_MISMATCHES",
           "POLICY_PREFIX", "QUERIES", "SEED_FUNCTION", "VARIANTS", "Cell", "Digest", "Sample",
           "Variant", "measure_rls", "rls_role"]

QUERIES = ("search_user", "get_by_id", "list_user")
VARIANTS = ("none", "project", "project-app", "seed")
BASELINE = "none"
SEED_FUNCTION = "uid"  # the seed's auth.uid(), in the scratch schema
POLICY_PREFIX = "bench_rls_"
EXIT_RESULTS_DIFFER = ExitCode.FAILED  # a variant changed what a user's query returns
# Both identity sources, set for every sample in every variant (untimed): a variant reads
# the one it needs, and the other is empty, as the identity functions expect when unset.
IDENTITY_SQL = ("SELECT pg_catalog.set_config('mem0.user_id', %s, true),"
                " pg_catalog.set_config('request.jwt.claims', %s, true)")
MAX_MISMATCHES = 20  # listed in the report; the count covers them all


@dataclass(frozen=True)
class Variant:
    name: str
    words: str  # what it is, for the report
    using: str | None  # the SELECT policy's USING; None: row-level security disabled
    function: str | None  # the identity function its policy calls, for the plan's shape
    claims: bool = False  # identity from request.jwt.claims (the seed) or mem0.user_id


@dataclass(frozen=True)
class Sample:
    user: str
    memory_id: str  # one of the user's memories: get by id must find it under every variant
    vector: list[float]  # a query near one of the user's memories


Digest = tuple[Any, ...]  # a row with its payload as a digest: (id, [distance,] digest)


@dataclass
class Cell:
    """One variant's runs of one query: latencies and rows of the timed runs."""

    latencies: list[float]
    results: list[list[Digest]]
    plan: dict[str, Any]


# --- the throwaway role --------------------------------------------------------------------

def rls_role(names: Names) -> str:
    """The run's throwaway role (components.bench.role), which --rls queries as too."""
    return role_name(names)


def _grant_reads(conn: psycopg.Connection[Any], n: Names, role: str) -> None:
    # The role exists (the run creates it); the variants read the table and call the
    # identity functions, uid() among them, created just now.
    conn.execute(f"GRANT SELECT ON TABLE {n.memories} TO {quote_ident(role)}")
    grant_functions(conn, n, role)


# --- identity functions and variants --------------------------------------------------------

def _postgres_target(settings: Settings) -> Settings:
    """The same stack with a plain PostgreSQL's identity: the JWT's sub, else mem0.user_id."""
    if settings.target != "supabase":
        return settings
    return replace(settings, target=Target.POSTGRES,
                   readonly_role=settings.readonly_role or "mem0_readonly")


def _identity_function_ddl(settings: Settings, scratch: str) -> str:
    """The model's own rendering of the identity function, for a postgres-target stack."""
    for spec in build_model(_postgres_target(settings), schema=scratch, owned=False):
        if spec.kind == Kind.FUNCTION and spec.name == USER_ID_FUNCTION:
            return spec.ddl
    raise BenchError(f"the model declares no {USER_ID_FUNCTION}() function")


def _seed_function_ddl(n: Names) -> str:
    # auth.uid()-like: the JWT's sub as uuid. The SET clause keeps the planner from inlining
    # it, so each call is a function call, as the seed's policy makes one per row; the
    # project's identity function has the same clause, so only the call form differs.
    return (f"CREATE FUNCTION {n.obj(SEED_FUNCTION)}() RETURNS uuid LANGUAGE sql STABLE"
            " SET search_path TO ''"
            " AS $$ SELECT (NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')"
            "::jsonb ->> 'sub')::uuid $$")


def _prepare_functions(conn: psycopg.Connection[Any], n: Names) -> str:
    """Check the scratch build created the identity function (on supabase: replace it),
    and create the seed's uid(); returns how the project variants read identity."""
    function = f"{n.obj(USER_ID_FUNCTION)}()"
    found = conn.execute("SELECT pg_catalog.to_regprocedure(%s) IS NOT NULL",
                         (function,)).fetchone()
    if not (found and found[0]):
        raise BenchError(f"the scratch build created no {function}; the project variants "
                         "need the stack's identity function")
    how = f"{function} as build_model created it (target {n.settings.target})"
    if n.settings.target == "supabase":
        conn.execute(_identity_function_ddl(n.settings, n.scratch))
        how = (f"{function} replaced by the postgres-target rendering of the model's "
               "template (COALESCE(JWT sub, mem0.user_id)): the supabase one calls auth.uid()")
    conn.execute(_seed_function_ddl(n))
    return how


def _end_user_role(settings: Settings) -> str:
    if settings.target == "supabase":
        return SUPABASE_END_USER_ROLES[1]  # authenticated
    assert settings.readonly_role is not None
    return settings.readonly_role


def _variants(n: Names) -> list[Variant]:
    s = n.settings
    table = [(s.collection, MEMORY)]
    [users] = table_access(s, n.scratch, table, n.memories)
    optional = replace(s, app_role_identity=AppRoleIdentity.OPTIONAL)
    [app] = table_access(optional, n.scratch, table, n.memories)
    user_rule = users.rules[_end_user_role(s)]["SELECT"]
    app_rule = app.rules[s.app_role]["SELECT"]
    if not user_rule.policy or user_rule.using is None:
        raise BenchError(f"stack {s.stack!r} declares no end-user SELECT policy "
                         f"(tenancy {s.tenancy}); allowed for --rls: tenancy user")
    assert app_rule.using is not None
    return [
        Variant(BASELINE, "row-level security disabled", None, None),
        Variant("project", f"the end users' rule: {user_rule.words}", user_rule.using,
                USER_ID_FUNCTION),
        Variant("project-app", f"the app role's rule (appRoleIdentity optional, identity "
                               f"set): {app_rule.words}", app_rule.using, USER_ID_FUNCTION),
        Variant("seed", "the seed's auth.uid()::text = user_id, called per row",
                f"(({n.obj(SEED_FUNCTION)}())::text = user_id)", SEED_FUNCTION, claims=True),
    ]


def _policy_name(variant: Variant) -> str:
    return POLICY_PREFIX + variant.name.replace("-", "_")


def _apply(conn: psycopg.Connection[Any], n: Names, role: str, variants: Sequence[Variant],
           variant: Variant) -> None:
    """Make `variant` the table's only row-level security (DDL, outside the timed runs)."""
    table = n.memories
    for other in variants:
        conn.execute(f"DROP POLICY IF EXISTS {quote_ident(_policy_name(other))} ON {table}")
    if variant.using is None:
        conn.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        conn.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        return
    conn.execute(policy_ddl(_policy_name(variant), table, "SELECT", [role], variant.using,
                            None))
    conn.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    conn.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


# --- samples and statements -----------------------------------------------------------------

def _samples(conn: psycopg.Connection[Any], n: Names, count: int) -> list[Sample]:
    """`count` samples, users in rotation; each a memory of the user and a query near one."""
    users = [row[0] for row in conn.execute(
        f"SELECT DISTINCT payload ->> 'user_id' FROM {n.memories} ORDER BY 1 LIMIT %s",
        (count,)).fetchall()]
    rotation = [users[i % len(users)] for i in range(count)]
    rows = conn.execute(
        f"SELECT s.u, m.id::text, {n.obj('bench_unit')}(m.vector::{n.vector} {n.op('+')}"
        f" {n.obj('bench_direction')}(%s::integer, %s::double precision))::text"
        " FROM pg_catalog.unnest(%s::text[]) WITH ORDINALITY AS s(u, i)"
        f" CROSS JOIN LATERAL (SELECT id, vector FROM {n.memories}"
        "  WHERE payload ->> 'user_id' = s.u ORDER BY pg_catalog.random() LIMIT 1) AS m"
        " ORDER BY s.i",
        (n.settings.dimensions, math.sqrt(QUERY_NOISE_SHARE), rotation)).fetchall()
    return [Sample(user, memory_id, Vector.from_text(vector).to_list())
            for user, memory_id, vector in rows]


def _statements(n: Names) -> dict[str, str]:
    # mem0's statements (contract 3 and 8; list and get select id and payload only).
    return {"search_user": n.statements.search(), "get_by_id": n.statements.get(),
            "list_user": n.statements.list()}


def _params(query: str, sample: Sample) -> Params:
    if query == "search_user":
        return search_params(sample.user, sample.vector, True)
    if query == "get_by_id":
        return (sample.memory_id,)
    return ("user_id", sample.user, LIST_LIMIT)


def _tagged(statement: str, tag: str) -> str:
    # A comment makes each variant's statement a statement of its own, for psycopg's
    # prepared statements and the server's plan cache, as on separate connections: a plan
    # choice (custom or generic) made under one variant does not carry over to the next.
    return f"{statement} /* mem0 bench rls: {tag} */"


def _identity(variant: Variant, user: str) -> tuple[str, str]:
    if variant.claims:
        return "", json.dumps({"sub": user, "role": "authenticated"})
    return user, ""


def _identity_source(variant: Variant) -> str:
    if variant.using is None:
        return "not read (mem0.user_id set all the same)"
    return "request.jwt.claims (sub)" if variant.claims else "mem0.user_id"


def _become(conn: psycopg.Connection[Any], role: str) -> None:
    # LOCAL: a rollback (error, Ctrl-C) ends it, and the bench's own role comes back.
    conn.execute(f"SET LOCAL ROLE {quote_ident(role)}")


# --- timed runs, plans and the check --------------------------------------------------------

def _digest(rows: Rows) -> list[Digest]:
    # A list's 100 payloads per sample, kept for every variant, would hold 100K parsed
    # documents at 200 samples: compare digests of them instead.
    return [(str(row[0]), *row[1:-1],
             hashlib.sha256(json.dumps(row[-1], sort_keys=True).encode()).hexdigest())
            for row in rows]


def _timed(conn: psycopg.Connection[Any], statement: str, variant: Variant, query: str,
           samples: Sequence[Sample]) -> tuple[list[float], list[list[Digest]]]:
    """Client-observed latency (ms) of execute + fetch, parsing the payloads as mem0 does;
    the identity is set untimed."""
    latencies: list[float] = []
    results: list[list[Digest]] = []
    with conn.cursor() as cur:
        for number, sample in enumerate(samples):
            cur.execute(IDENTITY_SQL, _identity(variant, sample.user))
            params = _params(query, sample)
            started = time.perf_counter()
            cur.execute(statement, params)
            rows = cur.fetchall()
            elapsed = (time.perf_counter() - started) * 1000
            if number >= WARMUP:
                latencies.append(elapsed)
                results.append(_digest(rows))
    return latencies, results


_SCAN_NODE = re.compile(r"^\s*(?:->\s+)?((?:Parallel )?(?:Seq|Index|Index Only|Bitmap Heap"
                        r"|Bitmap Index) Scan[^(]*?)\s+\(")
_REMOVED = re.compile(r"Rows Removed by Filter: (\d+)")


def _shape(plan: Sequence[str], function: str | None) -> dict[str, Any]:
    """What a plan does with the identity: once (InitPlan, index condition) or per row."""
    call = re.compile(rf"\b{re.escape(function)}\(\)") if function else None

    def calls_in(label: str) -> bool:
        return call is not None and any(label in line and call.search(line) for line in plan)

    return {
        "initplan": any("InitPlan" in line for line in plan),
        "per_row_call": calls_in("Filter:"),  # evaluated for every row the node reads
        "index_cond_call": calls_in("Index Cond:"),  # evaluated once per scan
        "scans": [m.group(1).strip() for line in plan if (m := _SCAN_NODE.match(line))],
        "rows_removed_by_filter": sum(int(x) for line in plan for x in _REMOVED.findall(line)),
    }


def _plan(conn: psycopg.Connection[Any], server: Server, statement: str, variant: Variant,
          query: str, sample: Sample) -> dict[str, Any]:
    """The custom and generic plans (EXPLAIN ANALYZE, as the variant's role and identity),
    and which of them the timed runs used."""
    conn.execute(IDENTITY_SQL, _identity(variant, sample.user))
    params = _params(query, sample)
    custom = explain_analyze(conn, statement, params)
    generic = explain_generic(conn, statement, params)
    counts = prepared_plans(conn, server, statement)
    used = used_plan(counts)
    return {"used": used, "timed_runs": counts,
            **_shape(generic if used == "generic" else custom, variant.function),
            "custom_plan": custom, "custom_shape": _shape(custom, variant.function),
            "generic_plan": generic, "generic_shape": _shape(generic, variant.function)}


def _visible(conn: psycopg.Connection[Any], n: Names, variant: Variant,
             users: Sequence[str]) -> dict[str, dict[str, str]]:
    """Each user's rows the user's own filter sees (id -> payload digest): untimed, for
    the check."""
    statement = f"SELECT id, payload FROM {n.memories} WHERE payload->>%s = %s"
    seen: dict[str, dict[str, str]] = {}
    for user in users:
        conn.execute(IDENTITY_SQL, _identity(variant, user))
        rows = conn.execute(statement, ("user_id", user), prepare=False).fetchall()
        seen[user] = {row[0]: row[-1] for row in _digest(rows)}
    return seen


def _measure_variant(conn: psycopg.Connection[Any], n: Names, server: Server, role: str,
                     variant: Variant, samples: Sequence[Sample], tag: str,
                     progress: Callable[[str], None]
                     ) -> tuple[dict[str, Cell], dict[str, dict[str, str]]]:
    # One transaction each: SET LOCAL ROLE and the identity end with it, and so does the
    # plan_cache_mode that the generic EXPLAIN sets (it would bind the next timed runs).
    cells: dict[str, Cell] = {}
    for query, statement in _statements(n).items():
        progress(f"rls: measuring {query} under {tag}")
        tagged = _tagged(statement, tag)
        with conn.transaction():
            _become(conn, role)
            latencies, results = _timed(conn, tagged, variant, query, samples)
        with conn.transaction():
            _become(conn, role)
            plan = _plan(conn, server, tagged, variant, query, samples[WARMUP])
        cells[query] = Cell(latencies, results, plan)
    with conn.transaction():
        _become(conn, role)
        visible = _visible(conn, n, variant, sorted({s.user for s in samples}))
    return cells, visible


def _warm(conn: psycopg.Connection[Any], n: Names, samples: Sequence[Sample]) -> None:
    """Read every sample once, untimed, so the first variant does not pay a cold cache."""
    for query, statement in _statements(n).items():
        for sample in samples:
            conn.execute(_tagged(statement, "warm"), _params(query, sample)).fetchall()


def _key(row: tuple[Any, ...]) -> str:
    return str(row[0])


def _check(variants: Sequence[Variant], samples: Sequence[Sample],
           cells: dict[str, dict[str, Cell]],
           visible: dict[str, dict[str, dict[str, str]]]) -> dict[str, Any]:
    """Did row-level security change what a user's own queries return?"""
    mismatches: list[dict[str, Any]] = []
    timed = samples[WARMUP:]
    base_visible, base = visible[BASELINE], cells[BASELINE]

    def miss(variant: str, query: str, user: str, problem: str) -> None:
        mismatches.append({"variant": variant, "query": query, "user": user,
                           "problem": problem})

    for user, rows in base_visible.items():
        if not rows:
            miss(BASELINE, "visible", user, "the user's filter finds no row without RLS")
    for number, sample in enumerate(timed):
        if [_key(r) for r in base["get_by_id"].results[number]] != [sample.memory_id]:
            miss(BASELINE, "get_by_id", sample.user, "the user's memory is not found")
    for variant in variants:
        if variant.name == BASELINE:
            continue
        mine = cells[variant.name]
        for user, rows in base_visible.items():
            if visible[variant.name][user] != rows:
                miss(variant.name, "visible", user,
                     f"sees {len(visible[variant.name][user])} of the user's rows, "
                     f"{len(rows)} without RLS (or other payloads)")
        for number, sample in enumerate(timed):
            own = base_visible[sample.user]
            got = mine["get_by_id"].results[number]
            if got != base["get_by_id"].results[number]:
                miss(variant.name, "get_by_id", sample.user, "another row than without RLS")
            for query in ("search_user", "list_user"):
                found = mine[query].results[number]
                foreign = [r for r in found if own.get(_key(r), object()) != r[-1]]
                if foreign:
                    miss(variant.name, query, sample.user,
                         f"{len(foreign)} rows that are not the user's visible rows")
            if len(mine["list_user"].results[number]) != \
                    len(base["list_user"].results[number]):
                miss(variant.name, "list_user", sample.user,
                     f"{len(mine['list_user'].results[number])} rows, "
                     f"{len(base['list_user'].results[number])} without RLS")
    return {"passed": not mismatches, "mismatch_count": len(mismatches),
            "mismatches": mismatches[:MAX_MISMATCHES],
            "users_checked": len(base_visible), "samples_checked": len(timed),
            "rule": "per user: the rows the user's own filter sees are the same under every "
                    "variant; get by id returns the same row; every row a timed search or "
                    "list returns is one of them, and list returns as many rows"}


def _identical(rows: list[Digest], base: list[Digest], ordered: bool) -> bool:
    if ordered:
        return rows == base
    return sorted(rows, key=_key) == sorted(base, key=_key)


# --- the measurement ------------------------------------------------------------------------

def measure_rls(conn: psycopg.Connection[Any], n: Names, server: Server, options: Options,
                progress: Callable[[str], None]) -> dict[str, Any]:
    """Time mem0's reads under each variant; the role is dropped by `drop_role`."""
    role = rls_role(n)
    variants = _variants(n)
    progress(f"rls: granting role {role} reads and creating the identity functions")
    identity = _prepare_functions(conn, n)
    _grant_reads(conn, n, role)
    samples = _samples(conn, n, options.samples + WARMUP)
    _warm(conn, n, samples)
    cells: dict[str, dict[str, Cell]] = {}
    visible: dict[str, dict[str, dict[str, str]]] = {}
    # On an error or Ctrl-C the policies go with the scratch schema: nothing to undo here.
    for variant in variants:
        _apply(conn, n, role, variants, variant)
        cells[variant.name], visible[variant.name] = _measure_variant(
            conn, n, server, role, variant, samples, variant.name, progress)
    # The baseline again, last (row-level security off again): how far the figures drifted
    # while the variants ran.
    _apply(conn, n, role, variants, variants[0])
    repeat, _ = _measure_variant(conn, n, server, role, variants[0], samples,
                                 f"{BASELINE}-repeat", progress)
    return _report(n, role, identity, variants, samples, cells, visible, repeat)


def _ratio(latencies: Sequence[float], baseline: Sequence[float]) -> float:
    # From the unrounded medians: a rounded one could be 0.000.
    return round(percentile(latencies, 50) / percentile(baseline, 50), 3)


def _report(n: Names, role: str, identity: str, variants: Sequence[Variant],
            samples: Sequence[Sample], cells: dict[str, dict[str, Cell]],
            visible: dict[str, dict[str, dict[str, str]]],
            repeat: dict[str, Cell]) -> dict[str, Any]:
    base = cells[BASELINE]
    out: dict[str, Any] = {}
    for variant in variants:
        queries: dict[str, Any] = {}
        for query in QUERIES:
            cell = cells[variant.name][query]
            summary = latency_summary(cell.latencies)
            same = sum(_identical(r, b, query == "search_user")
                       for r, b in zip(cell.results, base[query].results, strict=True))
            queries[query] = {
                **summary,
                "p50_ratio_to_none": _ratio(cell.latencies, base[query].latencies),
                "rows_returned_mean": round(sum(map(len, cell.results)) / len(cell.results), 2),
                "timed_results_identical_to_none": same,
                "plan": cell.plan,
            }
        out[variant.name] = {"rule": variant.words, "policy_using": variant.using,
                             "policy_calls": variant.function,
                             "identity_from": _identity_source(variant), "queries": queries}
    drift = {query: _ratio(repeat[query].latencies, base[query].latencies)
             for query in QUERIES}
    return {
        "role": role,
        "identity_function": identity,
        "seed_function": f"{n.obj(SEED_FUNCTION)}() (STABLE, SET search_path: not inlined)",
        "user_ids": "uuid-shaped text 00000000-0000-4000-8000-<user number, 12 digits>",
        "statements": _statements(n),
        "list_limit": LIST_LIMIT,
        "limit": LIMIT,
        "samples": len(samples) - WARMUP,
        "users_rotated": len({s.user for s in samples}),
        "order": [*VARIANTS, f"{BASELINE}-repeat"],
        "variants": out,
        "baseline_repeat_p50_ratio": drift,
        "check": _check(variants, samples, cells, visible),
    }
