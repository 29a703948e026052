"""`python -m components audit`: a read-only security audit of a live database.

The checks are Supabase's database linter checks that apply to a mem0 stack, plus the
project's own rules from shared/DESIGN.md (FORCE ROW LEVEL SECURITY, every policy column
indexed, no DDL privileges but the owner's, every declared object exactly as declared).
Each check reads the catalog with bound parameters and lists `Finding`s. `CHECKS` are checks
of the framework preflight and validate use (`components.checks.core`), which runs them in
order and renders the report (text: one block per finding; or JSON). The scope is every
schema the stack declares objects in (`audited_schemas`: `public`, where mem0's tables live
and what PostgREST/Supabase exposes, and mem0_backup, mem0_erasure, mem0_migration), but
not Supabase's own `extensions` schema, which Supabase manages and its linter skips too;
for extensions, every schema. Objects an extension installed are the extension's business
and are skipped.

Each check runs in a READ ONLY transaction that is rolled back: the audit cannot change
anything. psycopg only: no Pulumi here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from components import cron
from components.checks import backupfiles, hba
from components.checks.core import (
    Check,
    Context,
    Finding,
    Level,
    Outcome,
    Phase,
    Report,
    finding_check,
    found,
    not_applicable,
    passed,
    run_checks,
)
from components.checks.freshness import (
    JobState,
    declared_jobs,
    job_states,
    snapshot_job,
    snapshot_state,
    snapshot_verdict,
    span,
)
from components.connection import (
    command_dsn,
    database_identity,
    open_session,
)
from components.errors import ExitCode, Mem0InfraError
from components.identifiers import qualified, quote_ident
from components.introspect import live_ddl_or_none, short_diff
from components.kinds import Kind
from components.model import build_model
from components.schedule import longest_interval
from components.settings import Settings, Target
from components.stackfile import add_stack_arguments, command_settings

__all__ = ["CHECKS", "AuditError", "add_arguments", "command", "run_audit"]

APPLICATION = "mem0infra-audit"
SCHEMA = "public"  # what PostgREST/Supabase exposes, where mem0's tables live; always audited
EXTENSIONS_SCHEMA = "extensions"  # where Supabase keeps extensions, out of the API's reach
ANON = "anon"  # Supabase's role for unauthenticated API requests
# Roles that need BYPASSRLS to do their job (Supabase's service and admin roles, the usual
# deployer); the stack's own service role is added from its settings.
BYPASS_ROLES = ("service_role", "postgres", "supabase_admin")
PULUMI_UP = "run `pulumi up` (or `python -m components render` and apply the script)"
MAX_DIFF_LINES = 20
ENABLE_RLS = "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;"
SNAPSHOT_STALE = "snapshot_stale"
JOB_FAILED = "job_last_run_failed"


class AuditError(Mem0InfraError):
    """The audit could not run: bad arguments, no database, a failed query."""


def _not_extension_member(catalog: str, oid: str) -> str:
    """SQL: the object is not part of an extension (it comes and goes with the extension,
    so fixing it by hand would not last)."""
    return ("NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = "
            f"'pg_catalog.{catalog}'::pg_catalog.regclass AND e.objid = {oid}"
            " AND e.deptype = 'e')")


def audited_schemas(ctx: Context) -> list[str]:
    """`public`, then every other schema the model declares objects in; on target supabase
    without `extensions` (Supabase's: it holds Supabase's own functions, and splinter skips
    it as well)."""
    declared = {s.schema for s in ctx.specs if s.schema} - {SCHEMA}
    if ctx.settings.target == Target.SUPABASE:
        declared.discard(EXTENSIONS_SCHEMA)
    return [SCHEMA, *sorted(declared)]


def _grantee(name: str | None) -> str:
    return "PUBLIC" if name is None else quote_ident(name)


# Grantee names with PUBLIC (oid 0) as NULL: pg_get_userbyid(0) would print "unknown".
_GRANTEE = "CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END"

# `public` first, then the other schemas by name (the order audited_schemas gives).
_SCHEMA_ORDER = "n.nspname <> 'public', n.nspname"

# Which roles other than the owner hold a privilege on the table without bypassing
# row-level security (superusers and BYPASSRLS roles are not bound by it anyway).
_BOUND_GRANTEES = f"""
ARRAY(SELECT DISTINCT {_GRANTEE}
      FROM pg_catalog.aclexplode(COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner))) a
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
      WHERE a.grantee <> c.relowner
        AND NOT (COALESCE(r.rolsuper, false) OR COALESCE(r.rolbypassrls, false)))
"""

_TABLES = f"""
SELECT n.nspname, c.relname, c.relrowsecurity,
       EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid),
       {_BOUND_GRANTEES}
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY (%s) AND c.relkind IN ('r', 'p')
  AND {_not_extension_member('pg_class', 'c.oid')}
ORDER BY {_SCHEMA_ORDER}, 2
"""


@dataclass(frozen=True)
class _Table:
    schema: str
    name: str
    enabled: bool  # row-level security
    policies: bool
    bound_grantees: tuple[str | None, ...]  # privileged roles RLS binds (None: PUBLIC)

    @property
    def qualified(self) -> str:
        return qualified(self.schema, self.name)


def _tables(ctx: Context) -> list[_Table]:
    """Every table in the audited schemas."""
    return [_Table(str(s), str(n), bool(r), bool(p), tuple(g))
            for s, n, r, p, g in ctx.rows(_TABLES, (audited_schemas(ctx),))]


def _or_redeploy(ctx: Context, kind: Kind, schema: str, name: str, fix: str) -> str:
    """The fix for an object the stack may declare: redeploying restores a declared one."""
    return f"run `pulumi up`: the stack declares it (or by hand: {fix})" \
        if ctx.declares(kind, schema, name) else fix


# --- row-level security ---------------------------------------------------------------------


def _table_findings(ctx: Context, code: str, level: Level, message: str, fix: str,
                    applies: Callable[[_Table], bool]) -> list[Finding]:
    """A finding for each audited table that `applies`; `message` and `fix` name the table
    as {table}, `message` its schema as {schema}."""
    return [Finding(code, level, f"table {t.qualified}",
                    message.format(table=t.qualified, schema=t.schema),
                    _or_redeploy(ctx, Kind.TABLE, t.schema, t.name,
                                 fix.format(table=t.qualified)))
            for t in _tables(ctx) if applies(t)]


def rls_disabled_in_public(ctx: Context) -> list[Finding]:
    # Splinter's code, kept for compatibility; the scope is every audited schema.
    return _table_findings(
        ctx, "rls_disabled_in_public", Level.ERROR,
        "row-level security is disabled on this table in schema {schema}: every role with "
        "a grant on it (in an API-exposed schema, every API caller) reads and writes all of "
        "its rows",
        ENABLE_RLS, lambda t: not t.enabled)


def rls_not_forced(ctx: Context) -> list[Finding]:
    found: list[Finding] = []
    for spec in ctx.specs:
        if spec.kind != Kind.TABLE:
            continue
        rows = ctx.rows(
            "SELECT c.relforcerowsecurity, pg_catalog.pg_get_userbyid(c.relowner)"
            " FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass(%s)",
            (spec.qualified_name,))
        if not rows or rows[0][0]:
            continue  # a missing table is declared_object_missing's finding
        row = rows[0]
        found.append(Finding(
            "rls_not_forced", Level.WARN, f"table {spec.qualified_name}",
            f"row-level security is not forced: the table's owner {quote_ident(row[1])} "
            "and every session running as the owner (SECURITY DEFINER functions, the "
            "deployer) skip its policies",
            _or_redeploy(ctx, Kind.TABLE, spec.schema, spec.name,
                         f"ALTER TABLE {spec.qualified_name} FORCE ROW LEVEL SECURITY;")))
    return found


def policy_exists_rls_disabled(ctx: Context) -> list[Finding]:
    return _table_findings(
        ctx, "policy_exists_rls_disabled", Level.ERROR,
        "the table has policies, but row-level security is disabled, so none of them "
        "applies",
        ENABLE_RLS, lambda t: t.policies and not t.enabled)


NO_POLICY = "rls_enabled_no_policy"


def rls_enabled_no_policy(ctx: Context) -> Outcome:
    # Without a policy, RLS lets only the owner and BYPASSRLS roles in. That is a design
    # where no other role holds a privilege (mem0_migration's tables: the service role's
    # alone), so such tables pass and are named in the detail, as splinter's INFO level
    # would; a table some bound role may use but can never see a row of is a finding.
    tables = [t for t in _tables(ctx) if t.enabled and not t.policies]
    sealed = [t.qualified for t in tables if not t.bound_grantees]
    findings = [Finding(
        NO_POLICY, Level.WARN, f"table {t.qualified}",
        "row-level security is enabled but the table has no policy: it is granted to "
        f"{', '.join(_grantee(g) for g in t.bound_grantees)}, yet only the owner and "
        "BYPASSRLS roles see or write a row of it (probably a mistake)",
        f"CREATE POLICY <name> ON {t.qualified} FOR <command> TO <role> USING (<who may see "
        "a row>) WITH CHECK (<who may write it>);") for t in tables if t.bound_grantees]
    if findings or not sealed:
        return found(findings)
    return passed(f"no findings; without a policy by design, as no role that row-level "
                  f"security binds holds a privilege on them: {', '.join(sealed)}")


_POLICY_COLUMNS = f"""
SELECT n.nspname, c.relname, p.polname, a.attname
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass
     AND d.objid = p.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
     AND d.refobjid = p.polrelid AND d.refobjsubid > 0
JOIN pg_catalog.pg_attribute a ON a.attrelid = p.polrelid AND a.attnum = d.refobjsubid
WHERE n.nspname = ANY (%s) AND {_not_extension_member('pg_class', 'c.oid')}
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = p.polrelid
                  AND i.indisvalid AND i.indkey[0] = d.refobjsubid)
GROUP BY 1, 2, 3, 4 ORDER BY {_SCHEMA_ORDER}, 2, 3, 4
"""


def policy_column_unindexed(ctx: Context) -> list[Finding]:
    # The columns a policy reads are recorded in pg_depend; each one needs an index that
    # leads with it, or every query filtered by the policy scans the table.
    found: list[Finding] = []
    for schema, table, policy, column in ctx.rows(_POLICY_COLUMNS, (audited_schemas(ctx),)):
        name = qualified(schema, table)
        found.append(Finding(
            "policy_column_unindexed", Level.WARN, f"policy {quote_ident(policy)} ON {name}",
            f"policy {quote_ident(policy)} on {name} reads column {quote_ident(column)}, "
            "which leads no valid index: every query the policy filters scans the table",
            f"CREATE INDEX CONCURRENTLY ON {name} ({quote_ident(column)});"))
    return found


# --- functions and views -------------------------------------------------------------------

_MUTABLE_PATH = f"""
SELECT n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = ANY (%s) AND p.prokind = 'f' AND {_not_extension_member('pg_proc', 'p.oid')}
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proconfig) s
                  WHERE pg_catalog.starts_with(s, 'search_path='))
ORDER BY {_SCHEMA_ORDER}, 2, 3
"""


def function_search_path_mutable(ctx: Context) -> list[Finding]:
    found: list[Finding] = []
    for schema, name, arguments in ctx.rows(_MUTABLE_PATH, (audited_schemas(ctx),)):
        signature = f"{qualified(schema, name)}({arguments})"
        found.append(Finding(
            "function_search_path_mutable", Level.WARN, f"function {signature}",
            "the function has no fixed search_path: the caller's search_path decides which "
            "tables, functions and operators its unqualified names resolve to",
            _or_redeploy(ctx, Kind.FUNCTION, schema, name,
                         f"ALTER FUNCTION {signature} SET search_path = ''; then qualify "
                         "every name the function uses")))
    return found


_VIEWS = f"""
SELECT n.nspname, c.relname, pg_catalog.pg_get_userbyid(c.relowner),
       COALESCE((SELECT o.option_value::boolean
                 FROM pg_catalog.pg_options_to_table(c.reloptions) o
                 WHERE o.option_name = 'security_invoker'), false)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY (%s) AND c.relkind = 'v' AND {_not_extension_member('pg_class', 'c.oid')}
ORDER BY {_SCHEMA_ORDER}, 2
"""
INVOKER_VIEWS_SINCE = 150000  # PostgreSQL 15 added security_invoker


def security_definer_view(ctx: Context) -> list[Finding]:
    found: list[Finding] = []
    for schema, name, owner, invoker in ctx.rows(_VIEWS, (audited_schemas(ctx),)):
        if invoker:
            continue
        view = qualified(schema, name)
        runs_as = f"the view reads its tables as its owner {quote_ident(owner)}, so their " \
                  "row-level security and grants are checked against the owner, not the caller"
        if ctx.server_version >= INVOKER_VIEWS_SINCE:
            message = f"security_invoker is not set: {runs_as}"
            fix = f"ALTER VIEW {view} SET (security_invoker = true);"
        else:
            message = f"this server (before PostgreSQL 15) runs every view so: {runs_as}"
            fix = (f"REVOKE ALL ON TABLE {view} FROM PUBLIC; (and from every API role), or "
                   f"upgrade to PostgreSQL 15 and ALTER VIEW {view} SET (security_invoker = "
                   "true);")
        found.append(Finding("security_definer_view", Level.ERROR, f"view {view}", message, fix))
    return found


# --- extensions and roles ------------------------------------------------------------------


def extension_in_public(ctx: Context) -> list[Finding]:
    # The stack's own extension is in public by design where it declares it there (pgvector
    # outside Supabase); on Supabase the model declares it in `extensions`, so it is reported.
    by_design = {s.name for s in ctx.specs if s.kind == Kind.EXTENSION and s.schema == SCHEMA}
    found: list[Finding] = []
    for name, relocatable in ctx.rows(
            "SELECT e.extname, e.extrelocatable FROM pg_catalog.pg_extension e"
            " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
            " WHERE n.nspname = %s ORDER BY 1", (SCHEMA,)):
        if name in by_design:
            continue
        ext, home = quote_ident(name), quote_ident(EXTENSIONS_SCHEMA)
        create = f"CREATE SCHEMA IF NOT EXISTS {home};"
        fix = (f"{create} ALTER EXTENSION {ext} SET SCHEMA {home};" if relocatable else
               f"DROP EXTENSION {ext}; {create} CREATE EXTENSION {ext} WITH SCHEMA {home}; "
               "(it cannot be moved; objects that use it must be recreated)")
        found.append(Finding(
            "extension_in_public", Level.WARN, f"extension {ext} in schema {quote_ident(SCHEMA)}",
            f"extension {ext} is installed in the exposed schema {SCHEMA}: its functions "
            "become API endpoints and its objects mix with the application's",
            fix))
    return found


_BYPASS = f"""
SELECT r.rolname, n.nspname, c.relname,
       pg_catalog.string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(
    COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner))) a
JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
WHERE n.nspname = ANY (%s) AND c.relkind IN ('r', 'p')
  AND {_not_extension_member('pg_class', 'c.oid')}
  AND r.rolbypassrls AND NOT r.rolsuper AND r.rolname <> ALL (%s)
GROUP BY 1, 2, 3 ORDER BY 1, {_SCHEMA_ORDER}, 3
"""


def rls_bypass_without_need(ctx: Context) -> list[Finding]:
    # Superusers bypass everything anyway; they are out of this check's scope.
    needed = [*BYPASS_ROLES, ctx.settings.service_role]
    held: dict[str, list[str]] = {}
    for role, schema, table, privileges in ctx.rows(_BYPASS, (audited_schemas(ctx), needed)):
        held.setdefault(role, []).append(f"{qualified(schema, table)} ({privileges})")
    return [Finding(
        "rls_bypass_without_need", Level.ERROR, f"role {quote_ident(role)}",
        f"role {quote_ident(role)} has BYPASSRLS and holds privileges on "
        f"{', '.join(tables)}: row-level security never applies to it",
        f"ALTER ROLE {quote_ident(role)} NOBYPASSRLS;")
        for role, tables in held.items()]


# --- privileges ----------------------------------------------------------------------------

_RELATION_WORDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view",
                   "S": "sequence", "f": "foreign table"}

_EXPOSED_RELATIONS = f"""
SELECT n.nspname, c.relname, c.relkind, {_GRANTEE},
       pg_catalog.string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
WHERE n.nspname = ANY (%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND {_not_extension_member('pg_class', 'c.oid')}
  AND (a.grantee = 0 OR a.grantee = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s))
GROUP BY 1, 2, 3, 4 ORDER BY {_SCHEMA_ORDER}, 2, 4 NULLS FIRST
"""

# A NULL proacl is the default, which lets PUBLIC execute. Trigger functions are left out:
# PostgreSQL refuses to call them except as triggers, so EXECUTE on them exposes nothing.
_EXPOSED_DEFINERS = f"""
SELECT n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
       {_GRANTEE}
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(
    COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
WHERE n.nspname = ANY (%s) AND p.prokind = 'f' AND p.prosecdef
  AND p.prorettype NOT IN ('pg_catalog.trigger'::pg_catalog.regtype,
                           'pg_catalog.event_trigger'::pg_catalog.regtype)
  AND {_not_extension_member('pg_proc', 'p.oid')} AND a.privilege_type = 'EXECUTE'
  AND (a.grantee = 0 OR a.grantee = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s))
ORDER BY {_SCHEMA_ORDER}, 2, 3, 4 NULLS FIRST
"""


_WHO = {"PUBLIC": "every role", ANON: "every unauthenticated API request"}


def privileges_to_anon_or_public(ctx: Context) -> list[Finding]:
    found: list[Finding] = []
    schemas = audited_schemas(ctx)
    for schema, name, relkind, role, privileges in ctx.rows(_EXPOSED_RELATIONS, (schemas, ANON)):
        relation, grantee = qualified(schema, name), _grantee(role)
        on = "SEQUENCE" if relkind == "S" else "TABLE"
        found.append(Finding(
            "privileges_to_anon_or_public", Level.ERROR, f"{_RELATION_WORDS[relkind]} {relation}",
            f"{grantee} holds {privileges} on {relation}: {_WHO[grantee]} may use it",
            f"REVOKE ALL ON {on} {relation} FROM {grantee};"))
    for schema, name, arguments, role in ctx.rows(_EXPOSED_DEFINERS, (schemas, ANON)):
        signature, grantee = f"{qualified(schema, name)}({arguments})", _grantee(role)
        found.append(Finding(
            "privileges_to_anon_or_public", Level.ERROR, f"function {signature}",
            f"{grantee} may execute the SECURITY DEFINER function {signature} (a function "
            "without its own grants lets PUBLIC execute it): it runs with its owner's rights",
            f"REVOKE EXECUTE ON FUNCTION {signature} FROM {grantee}; (then GRANT EXECUTE to "
            "the roles that need it)"))
    return found


_PUBLIC_CREATE = f"""
SELECT n.nspname FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL pg_catalog.aclexplode(
    COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
WHERE n.nspname = ANY (%s) AND a.grantee = 0 AND a.privilege_type = 'CREATE'
ORDER BY {_SCHEMA_ORDER}
"""


def schema_create_for_public(ctx: Context) -> list[Finding]:
    found: list[Finding] = []
    for (name,) in ctx.rows(_PUBLIC_CREATE, (audited_schemas(ctx),)):
        schema = quote_ident(name)
        found.append(Finding(
            "schema_create_for_public", Level.ERROR, f"schema {schema}",
            f"PUBLIC may create objects in schema {schema} (public's default before "
            "PostgreSQL 15): any role can plant a function or operator that another role's "
            "unqualified name resolves to (CVE-2018-1058)",
            f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC;"))
    return found


_DDL_PRIVILEGES = f"""
SELECT n.nspname, c.relname, {_GRANTEE},
       pg_catalog.string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
WHERE n.nspname = ANY (%s) AND c.relkind IN ('r', 'p')
  AND {_not_extension_member('pg_class', 'c.oid')}
  AND a.grantee <> c.relowner AND a.privilege_type IN ('REFERENCES', 'TRIGGER', 'TRUNCATE')
GROUP BY 1, 2, 3 ORDER BY {_SCHEMA_ORDER}, 2, 3 NULLS FIRST
"""


def non_owner_ddl_privilege(ctx: Context) -> list[Finding]:
    # The project's rule: no role but the owner may ALTER, DROP or TRUNCATE. TRIGGER and
    # REFERENCES are DDL-like too: a trigger runs code on every write, a foreign key can
    # block deletes and reveal which keys exist.
    found: list[Finding] = []
    for schema, name, role, privileges in ctx.rows(_DDL_PRIVILEGES, (audited_schemas(ctx),)):
        table, grantee = qualified(schema, name), _grantee(role)
        found.append(Finding(
            "non_owner_ddl_privilege", Level.ERROR, f"table {table}",
            f"{grantee} holds {privileges} on {table}, but no role other than the owner may "
            "truncate it, add triggers to it or reference it",
            f"REVOKE {privileges} ON TABLE {table} FROM {grantee};"))
    return found


# --- the stack's declared objects ----------------------------------------------------------


def declared_objects(ctx: Context) -> list[Finding]:
    # Generic over kinds: the same introspection as the provider's drift check, so whatever
    # the model declares (policies, row-security flags, grants...) is compared as text.
    found: list[Finding] = []
    stack = ctx.settings.stack
    with ctx.conn.cursor() as cur:
        lives = [(spec, live_ddl_or_none(cur, asdict(spec))) for spec in ctx.specs]
    for spec, live in lives:
        if live is None:
            found.append(Finding(
                "declared_object_missing", Level.ERROR, spec.key,
                f"stack {stack!r} declares {spec.kind} {spec.name!r}, but it does not exist",
                PULUMI_UP))
        elif live != spec.ddl:
            found.append(Finding(
                "declared_object_drifted", Level.ERROR, spec.key,
                f"{spec.kind} {spec.name!r} differs from what stack {stack!r} declares:\n"
                f"{short_diff(spec.ddl, live, MAX_DIFF_LINES)}",
                PULUMI_UP))
    return found


# --- backups and jobs (components.checks.freshness: the rule validation applies too) -------


def _job_states(ctx: Context) -> list[JobState] | None:
    """The declared jobs' last runs; None when pg_cron cannot be read by this role."""
    try:
        return job_states(ctx)
    except (cron.CronUnavailable, psycopg.errors.InsufficientPrivilege):
        return None


def snapshot_stale(ctx: Context) -> Outcome:
    state = snapshot_state(ctx)
    if state is None:
        return not_applicable("the stack schedules no snapshot job (snapshotSchedule is "
                              "empty)")
    if not state.exists:
        return not_applicable(f"{state.table} does not exist (declared_objects reports it)")
    if not state.visible:
        return not_applicable(f"{state.role} does not bypass row-level security, so the "
                              f"snapshots in {state.table} are hidden from it: not audited")
    states = _job_states(ctx)
    verdict = snapshot_verdict(state, None if states is None else snapshot_job(states))
    if verdict.fresh:
        return passed(verdict.detail)
    return found([Finding(SNAPSHOT_STALE, Level.ERROR, f"table {state.table}",
                          verdict.detail, verdict.hint)])


def job_last_run_failed(ctx: Context) -> Outcome:
    if not declared_jobs(ctx.settings):
        return not_applicable("the stack schedules no pg_cron jobs")
    states = _job_states(ctx)
    if states is None:
        return not_applicable("pg_cron's runs cannot be read by this role: not audited")
    return found([Finding(
        JOB_FAILED, Level.ERROR, f"cron job {j.name}", j.describe_failure(),
        "fix the cause the error names; pg_cron runs it again at its next scheduled time")
        for j in states if j.last is not None and not j.last.succeeded])


def backup_files_check(directory: Path, max_age: timedelta | None) -> Check:
    """The check of `--backups DIR`: unencrypted files of the stack, and its newest full
    backup against `max_age` (default: twice the snapshot schedule's longest interval,
    else backupfiles.DEFAULT_MAX_AGE)."""
    def run(ctx: Context) -> Outcome:
        schedule = ctx.settings.jobs.snapshot_schedule
        interval = longest_interval(schedule) if schedule else None
        if max_age is not None:
            limit, rule = max_age, "given by --backup-max-age-hours"
        elif interval is not None:
            limit = 2 * interval
            rule = f"twice the longest interval of snapshotSchedule ({span(interval)})"
        else:
            limit, rule = backupfiles.DEFAULT_MAX_AGE, "the default without snapshotSchedule"
        held = backupfiles.read_directory(directory)
        now = datetime.now(UTC)
        return found(backupfiles.findings(held, ctx.settings.stack, limit, rule, now))

    return Check("backup_files", "the stack's backup files in --backups are encrypted, and "
                 "the newest full one is fresh", run, codes=backupfiles.CODES)


CHECKS: tuple[Check, ...] = (
    finding_check("rls_disabled_in_public",
                  "every table in the audited schemas has row-level security",
                  rls_disabled_in_public),
    finding_check("rls_not_forced", "every declared table forces row-level security",
                  rls_not_forced),
    finding_check("policy_exists_rls_disabled",
                  "no audited table has policies with row-level security disabled",
                  policy_exists_rls_disabled),
    Check(NO_POLICY, "every audited table with row-level security has a policy, or no "
          "role that row-level security binds holds a privilege on it", rls_enabled_no_policy,
          codes=(NO_POLICY,)),
    finding_check("function_search_path_mutable",
                  "every function in the audited schemas has a fixed search_path",
                  function_search_path_mutable),
    finding_check("security_definer_view", "every audited view runs as its caller",
                  security_definer_view),
    finding_check("extension_in_public", "no extension in public but the stack's own",
                  extension_in_public),
    finding_check("rls_bypass_without_need",
                  "no role bypasses row-level security on audited tables without need",
                  rls_bypass_without_need),
    finding_check("policy_column_unindexed", "every column a policy reads leads an index",
                  policy_column_unindexed),
    finding_check("privileges_to_anon_or_public",
                  "neither PUBLIC nor anon holds privileges on audited relations or "
                  "SECURITY DEFINER functions", privileges_to_anon_or_public),
    finding_check("schema_create_for_public", "PUBLIC may not create in an audited schema",
                  schema_create_for_public),
    finding_check("declared_objects", "every declared object exists exactly as declared",
                  declared_objects, ("declared_object_missing", "declared_object_drifted")),
    finding_check("non_owner_ddl_privilege",
                  "no role but the owner holds TRUNCATE, TRIGGER or REFERENCES on a table",
                  non_owner_ddl_privilege),
    Check(hba.CODE, "no pg_hba.conf line lets the stack's login roles in over TCP without "
          "TLS", hba.login_without_tls, codes=(hba.CODE,)),
    Check("snapshot_stale", "the newest snapshot is younger than twice the snapshot "
          "schedule's interval", snapshot_stale, codes=(SNAPSHOT_STALE,)),
    Check("job_last_run_failed", "the last run of each of the stack's pg_cron jobs "
          "succeeded", job_last_run_failed, codes=(JOB_FAILED,)),
)


# --- the run and the command ---------------------------------------------------------------


def run_audit(dsn: str, settings: Settings, backups: Path | None = None,
              backup_max_age: timedelta | None = None) -> Report:
    """Run every check against the database at `dsn` (and the backup files in `backups`);
    AuditError when it cannot run."""
    checks = CHECKS
    if backups is not None:
        if not backups.is_dir():
            raise AuditError(f"--backups {backups}: not a directory")
        checks = (*CHECKS, backup_files_check(backups, backup_max_age))
    with open_session(dsn, APPLICATION, AuditError) as conn:
        ctx = Context(conn, settings, tuple(build_model(settings)), dsn)
        # READ ONLY and rolled back, so no check can write; a failed query means the audit
        # could not run (exit code 2), not a finding.
        return run_checks(Phase.AUDIT, checks, ctx, database_identity(dsn), read_only=True,
                          abort=AuditError)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser, "a role that may read the catalog")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document instead of the text report")
    parser.add_argument("--backups", type=Path, default=None, metavar="DIR",
                        help="also audit the backup files in DIR: the stack's unencrypted "
                             "ones, and whether its newest full backup is fresh")
    parser.add_argument("--backup-max-age-hours", type=_hours, default=None, metavar="N",
                        help="with --backups: the age the newest full backup may reach "
                             "(default: twice the snapshot schedule's longest interval, "
                             "else 48)")


def _hours(text: str) -> timedelta:
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0 < hours < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of hours")
    return timedelta(hours=hours)


def command(args: argparse.Namespace) -> int:
    """Audit the database for parsed arguments: OK no findings, FAILED findings."""
    settings = command_settings(args)
    dsn = command_dsn(args.dsn, settings, "audit", "audit")
    if args.backup_max_age_hours is not None and args.backups is None:
        raise AuditError("--backup-max-age-hours needs --backups DIR")
    report = run_audit(dsn, settings, args.backups, args.backup_max_age_hours)
    sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n" if args.json
                     else report.text())
    return ExitCode.OK if report.passed else ExitCode.FAILED
