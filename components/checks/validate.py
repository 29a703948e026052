"""Validation of a deployed stack: does the database do its job for mem0?

Two sorts of checks. Catalog checks compare every object the model declares with the
live catalog, kind by kind, through the same introspection the provider uses for drift
(`introspect.live_ddl`), so "validate passes" and "refresh shows no drift" mean the same
thing. Behaviour checks then prove what the catalog cannot show: the planner uses the
indexes for mem0's own statements, two throwaway identities cannot reach each other's rows,
and mem0's statements (insert, get, update, search, traversal, delete) work as the app
role and leave history behind. They write only inside the check's transaction, which is
rolled back (components.checks.core), and run only when the catalog checks they build on
passed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import psycopg
from pgvector import Vector

from components import cron, mem0
from components.access import MEMBERSHIP_TABLE
from components.checks.core import (
    Check,
    Context,
    Outcome,
    failed,
    not_applicable,
    passed,
)
from components.checks.freshness import (
    declared_jobs,
    job_states,
    snapshot_job,
    snapshot_state,
    snapshot_verdict,
)
from components.checks.pooler import check_pooler
from components.checks.tls import check_tls_sessions
from components.identifiers import qualified, quote_ident
from components.introspect import INVALID_INDEX_NOTE, live_ddl_or_none, short_diff
from components.kinds import Kind, kind_spec
from components.model import (
    HISTORY_TABLE,
    NEIGHBOURS_FUNCTION,
    RELATIONSHIPS_TABLE,
    ObjectSpec,
    app_role_search_settings,
)
from components.plans import indexes_in
from components.settings import SUPABASE_END_USER_ROLES
from components.vectors import probe_vector, register

PULUMI_UP = "run `pulumi up`: it restores what the stack declares (`pulumi refresh " \
    "--preview-only` shows the drift first)"
MAX_LISTED = 8  # objects named in one check's detail


# --- catalog checks --------------------------------------------------------------------------


def _label(spec: ObjectSpec) -> str:
    return kind_spec(spec.kind).label(asdict(spec))


def _compare(ctx: Context, specs: Sequence[ObjectSpec]) -> tuple[list[str], list[str]]:
    """(problems, fix hints) of the specs whose live definition is missing or differs."""
    problems: list[str] = []
    fixes: list[str] = []
    for spec in specs:
        live = live_ddl_or_none(ctx.conn.cursor(), asdict(spec))
        if live is None:
            problems.append(f"missing: {_label(spec)}")
        elif live != spec.ddl:
            if live == f"{spec.ddl}\n{INVALID_INDEX_NOTE}":
                problems.append(f"INVALID: index {spec.qualified_name} (a failed or "
                                "interrupted build; the planner never uses it)")
                fixes.append(f"REINDEX INDEX CONCURRENTLY {spec.qualified_name};")
                continue
            problems.append(f"differs: {_label(spec)}\n"
                            f"{short_diff(spec.ddl, live, 12)}")
    return problems, fixes


def _catalog_check(kinds: tuple[Kind, ...], what: str) -> Callable[[Context], Outcome]:
    def run(ctx: Context) -> Outcome:
        specs = ctx.of_kind(*kinds)
        if not specs:
            return not_applicable(f"the stack declares no {what}")
        problems, fixes = _compare(ctx, specs)
        if not problems:
            return passed(f"{len(specs)} {what} exist as declared")
        shown = problems[:MAX_LISTED]
        if len(problems) > MAX_LISTED:
            shown.append(f"... and {len(problems) - MAX_LISTED} more")
        hint = " ".join([*fixes, ("or " if fixes else "") + PULUMI_UP])
        return failed(f"{len(problems)} of {len(specs)} {what} are not as declared:\n"
                      + "\n".join(shown), hint)

    return run


def check_extension(ctx: Context) -> Outcome:
    """pgvector installed where the stack declares it, at a version its objects need."""
    problems, _ = _compare(ctx, ctx.of_kind(Kind.EXTENSION))
    if problems:
        return failed("\n".join(problems),
                      "CREATE EXTENSION vector (on Supabase: Database > Extensions), or "
                      + PULUMI_UP)
    installed = dict(ctx.rows("SELECT extname::text, extversion FROM pg_catalog.pg_extension"))
    unmet = [r for s in ctx.specs for r in s.requires if not r.met_by(installed.get(r.extension))]
    if unmet:
        return failed("; ".join(f"{r.extension} {installed.get(r.extension)} is older than "
                                f"{r.min_version}" for r in unmet),
                      "; ".join(sorted({r.hint for r in unmet})))
    return passed("pgvector " + installed.get("vector", "?") + " in schema "
                  + ctx.settings.extension_schema)


def _role_config(ctx: Context, role: str, this_database: bool) -> dict[str, str]:
    """The role's settings: cluster-wide (ALTER ROLE ... SET, what the stack declares), or
    for this database only (ALTER ROLE ... IN DATABASE ... SET), which win over those."""
    database = "d.datname = pg_catalog.current_database()" if this_database else \
        "s.setdatabase = 0"
    row = ctx.value(
        "SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s"
        " JOIN pg_catalog.pg_roles r ON r.oid = s.setrole"
        " LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase"
        f" WHERE r.rolname = %s AND {database}", (role,))
    return dict(item.split("=", 1) for item in (row or []))


def check_search_settings(ctx: Context) -> Outcome:
    """The app role logs in with the search settings the stack declares, and nothing in
    this database overrides them."""
    declared, _ = app_role_search_settings(ctx.settings)
    if not declared:
        return not_applicable("the stack declares no search settings for the app role")
    role = ctx.settings.app_role
    cluster = _role_config(ctx, role, this_database=False)
    here = _role_config(ctx, role, this_database=True)
    problems = []
    for name, value in declared.items():
        effective = here.get(name, cluster.get(name))
        if effective != value:
            where = " in this database (ALTER ROLE ... IN DATABASE)" if name in here else ""
            shown = "not set" if effective is None else f"{effective!r}"
            problems.append(f"{name} is {shown} for {role}{where}; declared {value!r}")
    if problems:
        hint = PULUMI_UP
        if here:
            hint = (f"ALTER ROLE {quote_ident(role)} IN DATABASE <this database> RESET "
                    "<setting>; then " + PULUMI_UP)
        return failed("\n".join(problems), hint)
    shown = ", ".join(f"{k}={v}" for k, v in declared.items())
    return passed(f"{role} logs in with {shown}")


def check_cron_jobs(ctx: Context) -> Outcome:
    if not ctx.of_kind(Kind.CRON_JOB):
        return not_applicable("the stack schedules no pg_cron jobs")
    return _catalog_check((Kind.CRON_JOB,), "pg_cron jobs")(ctx)


def check_job_runs(ctx: Context) -> Outcome:
    """The last finished run of each declared job succeeded (freshness.job_states); a job
    with no run yet is named, not failed."""
    if not declared_jobs(ctx.settings):
        return not_applicable("the stack schedules no pg_cron jobs")
    try:
        states = job_states(ctx)
    except cron.CronUnavailable as exc:
        return failed(f"pg_cron's runs cannot be read: {exc}", PULUMI_UP)
    failures = [j for j in states if j.last is not None and not j.last.succeeded]
    waiting = [j.name for j in states if j.scheduled and j.last is None]
    unscheduled = [j.name for j in states if not j.scheduled]
    succeeded = [f"{j.name} (at {j.last.started:%Y-%m-%d %H:%M:%S %Z})" for j in states
                 if j.last is not None and j.last.succeeded]
    lines = [j.describe_failure() for j in failures]
    lines += [f"not scheduled in cron.job: {', '.join(unscheduled)}"] if unscheduled else []
    lines += [f"last run succeeded: {', '.join(succeeded)}"] if succeeded else []
    lines += [f"not run yet since scheduled: {', '.join(waiting)}"] if waiting else []
    if failures or unscheduled:
        return failed(f"{len(failures) + len(unscheduled)} of {len(states)} jobs did not "
                      "succeed:\n" + "\n".join(lines),
                      "fix the cause the error names; pg_cron retries at the next scheduled "
                      "time (runs: SELECT status, start_time, return_message FROM "
                      "cron.job_run_details WHERE jobid = <jobid> ORDER BY runid DESC)"
                      + ("; " + PULUMI_UP + " for the unscheduled" if unscheduled else ""))
    return passed("\n".join(lines))


def check_snapshot_fresh(ctx: Context) -> Outcome:
    """The newest snapshot is younger than twice the snapshot schedule's longest interval
    (the rule and its exemption: components.checks.freshness)."""
    state = snapshot_state(ctx)
    if state is None:
        return not_applicable("the stack schedules no snapshot job (snapshotSchedule is "
                              "empty)")
    if not state.exists:
        return failed(f"{state.table} does not exist", PULUMI_UP)
    if not state.visible:
        return failed(f"{state.role} does not bypass row-level security (or may not read "
                      f"{state.table}), so it sees no snapshot",
                      "run validate as the deploying role, which the snapshot job runs as")
    try:
        job = snapshot_job(job_states(ctx))
    except cron.CronUnavailable:
        job = None
    verdict = snapshot_verdict(state, job)
    return passed(verdict.detail) if verdict.fresh else failed(verdict.detail, verdict.hint)


# --- behaviour checks: the planner ---------------------------------------------------------

def _plan_indexes(ctx: Context, statement: str, params: Sequence[Any],
                  seqscan: bool = True) -> set[str]:
    with ctx.conn.transaction():
        if not seqscan:
            ctx.conn.execute("SELECT pg_catalog.set_config('enable_seqscan', 'off', true)")
        rows = ctx.conn.execute(f"EXPLAIN {statement}", params, prepare=False).fetchall()
        ctx.conn.execute("SELECT pg_catalog.set_config('enable_seqscan', 'on', true)")
    return set(indexes_in(line for (line,) in rows))


def _python_profile(ctx: Context) -> bool:
    return ctx.settings.client_profile == "python"


def _statements(ctx: Context) -> mem0.Statements:
    """mem0's statements on the stack's memories table, qualified for an empty search_path;
    pgvector's adapters registered on the check's session, so vectors bind as its type."""
    s = ctx.settings
    register(ctx.conn, s.extension_schema)
    return mem0.Statements.qualified_names(qualified("public", s.collection),
                                           s.extension_schema)


def _vector(ctx: Context, seed: int = 1) -> Vector:
    return Vector(probe_vector(ctx.settings.dimensions, seed))


def check_planner(ctx: Context) -> Outcome:
    """mem0's own statements can use the stack's indexes (chosen, or at least usable where
    the planner prefers a sequential scan over few rows)."""
    if not _python_profile(ctx):
        return not_applicable("planner checks cover clientProfile python")
    s = ctx.settings
    statements = _statements(ctx)
    query = _vector(ctx)
    index_names = {spec.name for spec in ctx.of_kind(Kind.INDEX) if spec.table == s.collection}
    vector_idx = f"{s.collection}_vector_idx"
    cases: list[tuple[str, str, list[Any], set[str]]] = [
        ("get by id", statements.get(), [str(uuid.uuid4())], {f"{s.collection}_pkey"}),
        # The (user_id, agent_id) index leads with mem0's user expression: it serves too.
        ("user-filtered search", statements.search(),
         [*mem0.search_params(query, "validate-user")],
         {f"{s.collection}_user_id_idx", f"{s.collection}_user_agent_idx", vector_idx}
         & index_names),
        # Unfiltered: with mem0's user filter the planner may rightly take the user index.
        ("keyword search", statements.keyword_search(filtered=False),
         ["coffee", "coffee", mem0.DEFAULT_SEARCH_LIMIT],
         {f"{s.collection}_text_lemmatized_idx"} & index_names),
    ]
    if vector_idx in index_names:
        cases.append(("unfiltered search", statements.search(filtered=False),
                      [*mem0.search_params(query, None)], {vector_idx}))
    chosen, usable, unusable = [], [], []
    for label, statement, params, expected in cases:
        if not expected:
            continue
        if _plan_indexes(ctx, statement, params) & expected:
            chosen.append(label)
        elif _plan_indexes(ctx, statement, params, seqscan=False) & expected:
            usable.append(label)
        else:
            unusable.append(f"{label} (expected {' or '.join(sorted(expected))})")
    if unusable:
        return failed("no plan of mem0's statement uses the index: " + "; ".join(unusable),
                      "the index no longer matches mem0's query (operator class, expression); "
                      "compare it with `python -m components render`, or " + PULUMI_UP)
    detail = f"chosen: {', '.join(chosen) or 'none'}"
    if usable:
        detail += (f"; usable, but a sequential scan is cheaper at this table's size: "
                   f"{', '.join(usable)}")
    return passed(detail)


# --- behaviour checks: identities -----------------------------------------------------------


def _as(ctx: Context, role: str, user_id: str | None) -> None:
    """Become `role` for the rest of the transaction, with mem0.user_id set (or empty).

    SET ROLE does not apply a role's login settings, so the app role's declared search
    settings are set here as its sessions get them (search_path stays empty: every name
    below is qualified)."""
    ctx.conn.execute("RESET ROLE")
    ctx.conn.execute(f"SET LOCAL ROLE {quote_ident(role)}")
    ctx.conn.execute("SELECT pg_catalog.set_config('mem0.user_id', %s, true)",
                     (user_id or "",))
    if user_id and role != ctx.settings.app_role:
        # End users (Supabase's authenticated) are named by a verified JWT's sub; the app
        # role by mem0.user_id alone, whose values need not be uuids.
        ctx.conn.execute("SELECT pg_catalog.set_config('request.jwt.claims', %s, true)",
                         (json.dumps({"sub": user_id, "role": role}),))
    if role == ctx.settings.app_role:
        declared, _ = app_role_search_settings(ctx.settings)
        for name, value in declared.items():
            if name != "search_path":
                ctx.conn.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))


def _payload(user_id: str, org_id: str | None, text: str) -> str:
    # mem0's keys that the policies and indexes read; no role or timestamps.
    org = {} if org_id is None else {"org_id": org_id}
    return mem0.payload_json(text, user_id=user_id, digest=uuid.uuid4().hex, role=None,
                             **org)


class _Probe:
    """mem0's statements on the stack's memories table, qualified for an empty search_path."""

    def __init__(self, ctx: Context) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.sql = _statements(ctx)
        self.table = self.sql.table
        self.org = f"validate-org-{uuid.uuid4().hex[:8]}" if s.tenancy == "org" else None

    def run(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.ctx.conn.execute(statement, params, prepare=False)
        return cur.fetchall() if cur.description else []

    def count(self, statement: str, params: Sequence[Any] = ()) -> int:
        cur = self.ctx.conn.execute(statement, params, prepare=False)
        return cur.rowcount

    def insert(self, memory_id: str, user_id: str, text: str, seed: int = 1) -> None:
        self.run(self.sql.insert(),
                 (memory_id, _vector(self.ctx, seed), _payload(user_id, self.org, text)))

    def get(self, memory_id: str) -> list[tuple[Any, ...]]:
        return self.run(self.sql.get(), (memory_id,))

    def join_org(self, user: str, org: str | None = None) -> None:
        """Org tenancy: the user becomes a member of the probe's organisation, or of
        `org` (as the service role, which bypasses row-level security; the deployer need
        not)."""
        if self.org is None:
            return
        _as(self.ctx, self.ctx.settings.service_role, None)
        self.run(f"INSERT INTO {qualified('public', MEMBERSHIP_TABLE)} (org_id, user_id)"
                 " VALUES (%s, %s)", (org or self.org, user))


def _undeclared_policies(ctx: Context) -> list[str]:
    declared = {(s.table, s.name) for s in ctx.of_kind(Kind.POLICY)}
    tables = sorted({t for t, _ in declared})
    return [f"{table}.{name}" for table, name in ctx.rows(
        "SELECT c.relname::text, p.polname::text FROM pg_catalog.pg_policy p"
        " JOIN pg_catalog.pg_class c ON c.oid = p.polrelid"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relname = ANY(%s) ORDER BY 1, 2", (tables,))
        if (table, name) not in declared]


def _bound_role(ctx: Context) -> str | None:
    """The role whose rows row-level security limits to one user: the app role unless it
    is trusted with every row, then the end users' role (none in tenancy service)."""
    s = ctx.settings
    if s.app_role_identity != "trusted":
        return s.app_role
    if s.tenancy == "service":
        return None
    return SUPABASE_END_USER_ROLES[1] if s.target == "supabase" else s.readonly_role


def _refused(ctx: Context, probe: _Probe, statement: str, params: Sequence[Any]) -> bool:
    """The statement reached no row, or was refused outright (no privilege, WITH CHECK)."""
    try:
        with ctx.conn.transaction():
            return probe.count(statement, params) == 0
    except psycopg.errors.InsufficientPrivilege:
        return True


def check_rls_enforced(ctx: Context) -> Outcome:
    """Two throwaway identities of the role row-level security binds: each reaches only
    its own memory. With appRoleIdentity trusted that role is the end users' (the app role
    is declared to see every row); the memory is then written by the service role."""
    if not _python_profile(ctx):
        return not_applicable("the enforcement test covers clientProfile python")
    s = ctx.settings
    role = _bound_role(ctx)
    if role is None:
        return not_applicable(f"tenancy service with appRoleIdentity trusted: no role is "
                              f"limited to one user's rows ({s.app_role} reads every row)")
    probe = _Probe(ctx)
    # uuids: Supabase's auth.uid() reads the JWT's sub as one.
    owner, other = (str(uuid.uuid4()) for _ in range(2))
    memory_id = str(uuid.uuid4())
    probe.join_org(owner)
    probe.join_org(other, f"{probe.org}-other")  # org tenancy: a member of another org
    _as(ctx, role if role == s.app_role else s.service_role, owner)
    probe.insert(memory_id, owner, "validate rls probe")
    _as(ctx, role, owner)
    if len(probe.get(memory_id)) != 1:
        return failed(f"as {role} with the owner's identity, the owner's memory is not "
                      "readable", "the SELECT policy does not match the INSERT policy; "
                      + PULUMI_UP)
    leaks: list[str] = []
    _as(ctx, role, other)
    if probe.get(memory_id):
        leaks.append("read it")
    if not _refused(ctx, probe, f"UPDATE {probe.table} SET payload = payload WHERE id = %s",
                    (memory_id,)):
        leaks.append("updated it")
    history = qualified("public", HISTORY_TABLE)
    if not _refused(ctx, probe, f"SELECT 1 FROM {history} WHERE memory_id = %s", (memory_id,)):
        leaks.append(f"read its history in {HISTORY_TABLE}")
    if not _refused(ctx, probe, probe.sql.insert(), (str(uuid.uuid4()), _vector(ctx),
                                                     _payload(owner, probe.org, "forged"))):
        leaks.append("wrote a memory in its name")
    if not _refused(ctx, probe, probe.sql.delete(), (memory_id,)):
        leaks.append("deleted it")
    if leaks:
        extra = _undeclared_policies(ctx)
        why = (f"policies the stack does not declare grant it: {', '.join(extra)}; drop them"
               if extra else "the declared policies let another user in; check the "
               "tenancy settings and `python -m components render`")
        return failed(f"as {role}, one user {', '.join(leaks)} of another user's "
                      f"memory (tenancy {s.tenancy})", why)
    _as(ctx, role, owner)
    if len(probe.get(memory_id)) != 1:
        return failed("the owner's memory was gone after another user's attempts",
                      "another user's DELETE reached it: " + PULUMI_UP)
    stranger = "a user of another organisation" if probe.org else "a second user"
    trusted = (f"; {s.app_role} is trusted with every row (appRoleIdentity trusted)"
               if role != s.app_role else "")
    return passed(f"as {role}, {stranger} could not read, change, delete or forge a "
                  f"user's memory, nor read its history (tenancy {s.tenancy}){trusted}")


def check_round_trip(ctx: Context) -> Outcome:
    """mem0's statements as the app role, rolled back: insert, get, update (vector, then
    payload), search, a 2-hop traversal, delete; history records each change."""
    if not _python_profile(ctx):
        return not_applicable("the round trip covers clientProfile python")
    s = ctx.settings
    probe = _Probe(ctx)
    user = f"validate-{uuid.uuid4()}"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    probe.join_org(user)
    _as(ctx, s.app_role, user)
    step = "insert"
    try:
        for number, memory_id in enumerate(ids):
            probe.insert(memory_id, user, f"validate round trip {number}", seed=number + 1)
        step = "get by id"
        if len(probe.get(ids[0])) != 1:
            return failed("a memory just inserted was not found by id", PULUMI_UP)
        step = "update"
        probe.run(probe.sql.update_vector(), (_vector(ctx, 4), ids[0]))
        probe.run(probe.sql.update_payload(),
                  (_payload(user, probe.org, "validate updated"), ids[0]))
        step = "search"
        found = probe.run(probe.sql.search(), mem0.search_params(_vector(ctx, 4), user))
        if not found or str(found[0][0]) != ids[0]:
            return failed(f"mem0's search did not return the nearest memory first "
                          f"({len(found)} rows)", "check the vector index and the app role's "
                          "search settings; " + PULUMI_UP)
        step = "traversal"
        edges = qualified("public", RELATIONSHIPS_TABLE)
        for source, target in ((ids[0], ids[1]), (ids[1], ids[2])):
            probe.run(f"INSERT INTO {edges} (source_memory_id, target_memory_id,"
                      " relationship_type, user_id, org_id) VALUES (%s, %s, %s, %s, %s)",
                      (source, target, "validate", user, probe.org))
        hops = probe.run(f"SELECT neighbour_id, depth FROM "
                         f"{qualified('public', NEIGHBOURS_FUNCTION)}(%s, 2)", (ids[0],))
        if {str(n): d for n, d in hops} != {ids[1]: 1, ids[2]: 2}:
            return failed(f"memory_neighbours(start, 2) returned {hops!r}, not the 1- and "
                          "2-hop memories", PULUMI_UP)
        step = "delete"
        for memory_id in ids:
            probe.run(probe.sql.delete(), (memory_id,))
        step = "history"
        operations = [op for (op,) in probe.run(
            f"SELECT operation FROM {qualified('public', HISTORY_TABLE)}"
            " WHERE memory_id = %s ORDER BY id", (ids[0],))]
    except psycopg.Error as exc:
        return failed(f"mem0's {step} failed as {s.app_role}: {str(exc).strip()}",
                      "a trigger, grant or policy refuses mem0's statement; " + PULUMI_UP)
    expected = ["create", "update", "update", "delete"]
    if operations != expected:
        return failed(f"memory_history recorded {operations}, not {expected}",
                      "the history trigger is missing or altered; " + PULUMI_UP)
    return passed(f"as {s.app_role}: insert, get, update, search, 2-hop traversal and delete "
                  "worked, and history recorded create, update, update, delete (rolled back)")


CATALOG = ("extension", "roles", "tables", "indexes", "functions", "triggers", "grants",
           "row_security", "policies", "search_settings", "cron_jobs")
CHECKS: tuple[Check, ...] = (
    Check("extension", "pgvector installed in its schema at the version the stack needs",
          check_extension),
    Check("roles", "the stack's roles with their attributes",
          _catalog_check((Kind.ROLE,), "roles")),
    Check("tables", "the memory tables with their columns, types and vector dimensions",
          _catalog_check((Kind.SCHEMA, Kind.TABLE), "tables"), after=("extension",)),
    Check("indexes", "every declared index (and extended statistics) exists, as declared, "
          "and is valid", _catalog_check((Kind.INDEX, Kind.STATISTICS), "indexes"),
          after=("extension",)),
    Check("functions", "the identity, history, search and traversal functions",
          _catalog_check((Kind.FUNCTION,), "functions"), after=("extension",)),
    Check("triggers", "the history and timestamp triggers, enabled",
          _catalog_check((Kind.TRIGGER,), "triggers"), after=("extension",)),
    Check("grants", "each role holds exactly its privileges",
          _catalog_check((Kind.GRANT, Kind.DEFAULT_PRIVILEGES), "grants"), after=("extension",)),
    Check("row_security", "row-level security enabled and forced on every table",
          _catalog_check((Kind.ROW_SECURITY,), "tables' row-security flags"),
          after=("extension",)),
    Check("policies", "every row-level-security policy with its declared expressions",
          _catalog_check((Kind.POLICY,), "policies"), after=("extension",)),
    Check("search_settings", "the app role's search settings (hnsw.ef_search, iterative "
          "scans) in effect", check_search_settings, after=("extension",)),
    Check("tls", "the deployer's and the app role's sessions (a real login over the "
          "exported URL) are encrypted as sslMode asks", check_tls_sessions, after=("roles",)),
    Check("cron_jobs", "the stack's pg_cron jobs scheduled", check_cron_jobs),
    Check("job_runs", "the last run of each of the stack's pg_cron jobs succeeded",
          check_job_runs, after=("cron_jobs",)),
    Check("snapshot_fresh", "the newest snapshot is younger than twice the snapshot "
          "schedule's interval", check_snapshot_fresh, after=("tables", "cron_jobs")),
    Check("planner", "mem0's statements can use the indexes (EXPLAIN)", check_planner,
          after=("extension", "tables", "indexes")),
    Check("rls_enforced", "two throwaway identities reach only their own rows (rolled back)",
          check_rls_enforced, after=CATALOG[:9]),
    Check("round_trip", "mem0's insert, get, update, search, traversal and delete as the app "
          "role, with history (rolled back)", check_round_trip, after=CATALOG[:9]),
    Check("pooler", "mem0's statements through the stack's pooler URL", check_pooler,
          after=("tables", "grants", "policies")),
)
