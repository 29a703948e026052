"""Preflight: can this database take the stack, before anything is changed?

Read-only. Each failure says what to change: the server, the deploying role, or the
setting that asks for what the server lacks.
"""

from __future__ import annotations

from components import cron
from components.checks.core import Check, Context, Outcome, failed, not_applicable, passed
from components.checks.tls import check_tls_deployer
from components.identifiers import qualified
from components.kinds import Kind
from components.kinds.apply import has_rows
from components.kinds.table import TableFields, read_fields
from components.model import Requirement, version_tuple
from components.settings import SUPABASE_END_USER_ROLES, SUPABASE_SERVICE_ROLE
from components.table_changes import UnsupportedTableChange, plan_shape_change

MIN_SERVER = 140000  # PostgreSQL 14: what the project supports (shared/DESIGN.md)
# Version of pgvector the model's objects need at the least: halfvec-free, `hnsw` (0.5.0).
BASE_PGVECTOR = Requirement(
    "vector", "0.5.0", "pgvector 0.5.0 brought hnsw indexes: install pgvector 0.5.0 or later "
    "(Supabase: every current project has it)")
SUPABASE_SCHEMAS = ("auth", "extensions")


def check_server_version(ctx: Context) -> Outcome:
    version = ctx.value("SELECT pg_catalog.current_setting('server_version')")
    if ctx.server_version < MIN_SERVER:
        return failed(f"PostgreSQL {version}; the stack needs 14 or later",
                      "upgrade the server to PostgreSQL 14 or later")
    return passed(f"PostgreSQL {version}")


def _vector_versions(ctx: Context) -> tuple[str | None, str | None]:
    """(installed version, version CREATE EXTENSION would install) of pgvector."""
    row = ctx.conn.execute(
        "SELECT installed_version, default_version FROM pg_catalog.pg_available_extensions"
        " WHERE name = 'vector'").fetchone()
    return (row[0], row[1]) if row else (None, None)


def check_pgvector(ctx: Context) -> Outcome:
    installed, available = _vector_versions(ctx)
    if available is None and installed is None:
        return failed("pgvector is not available on this server (no `vector` in "
                      "pg_available_extensions)",
                      "install pgvector on the server (Debian: postgresql-<major>-pgvector, "
                      "or build it from source); on Supabase it is always available")
    have = installed or available
    needs = [BASE_PGVECTOR, *(r for s in ctx.specs for r in s.requires)]
    unmet = [r for r in needs if not r.met_by(have)]
    where = f"installed {installed}" if installed else f"{available} would be installed"
    if unmet:
        return failed(f"pgvector {where}; the stack needs "
                      + ", ".join(sorted({f">= {r.min_version}" for r in unmet})),
                      " ".join(sorted({r.hint for r in unmet})))
    features = "iterative index scans" if version_tuple(have or "0") >= (0, 8) \
        else "no iterative index scans (pgvector < 0.8)"
    return passed(f"pgvector {where}; {features}")


def check_pg_cron(ctx: Context) -> Outcome:
    """pg_cron is loaded and installed where it keeps jobs, the deploying role may schedule
    them to run here, and it bypasses row-level security (the jobs run as it: under the
    forced row-level security of every table, a purge would delete nothing and a snapshot
    copy nothing, silently)."""
    jobs = ctx.of_kind(Kind.CRON_JOB)
    if not jobs:
        return not_applicable("the stack schedules no pg_cron jobs")
    turn_off = ("or turn the jobs off (set " + ", ".join(ctx.settings.jobs.scheduled())
                + " to empty)")
    database = cron.current_database(ctx.conn)
    try:
        with cron.cron_session(ctx.conn) as cron_conn:
            where = cron.current_database(cron_conn)  # the session found it already
            elsewhere = where != database
            function = ("cron.schedule_in_database(text, text, text, text, text, boolean)"
                        if elsewhere else "cron.schedule(text, text, text)")
            # CASE: naming a function in a schema one may not use is itself an error.
            may_schedule = cron_conn.execute(
                "SELECT CASE WHEN pg_catalog.has_schema_privilege('cron', 'USAGE')"
                " THEN pg_catalog.has_function_privilege(%s, 'EXECUTE') ELSE false END",
                (function,)).fetchone()[0]  # type: ignore[index]
    except cron.CronUnavailable as exc:
        return failed(f"the stack schedules {len(jobs)} pg_cron jobs, but {exc}",
                      f"do what the detail says, {turn_off}")
    if not may_schedule:
        name = function.split("(")[0]
        return failed(f"pg_cron keeps its jobs in database {where!r}, and the deploying role "
                      f"may not run {name}() there"
                      + (f" to schedule jobs in {database!r}" if elsewhere else ""),
                      f"deploy as a superuser, or GRANT USAGE ON SCHEMA cron and EXECUTE ON "
                      f"FUNCTION {name} TO the deploying role in {where!r}, {turn_off}")
    bypasses = ctx.value("SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles"
                         " WHERE rolname = current_user")
    if not bypasses:
        return failed("the jobs would run as the deploying role, which does not bypass "
                      "row-level security: every table forces it, so they would see no row",
                      f"deploy as a superuser or a BYPASSRLS role, {turn_off}")
    return passed(f"pg_cron in database {where!r} for {len(jobs)} jobs"
                  + (f" (run in {database!r})" if elsewhere else ""))


def check_deployer(ctx: Context) -> Outcome:
    """The deploying role can create what the stack declares."""
    s = ctx.settings
    row = ctx.conn.execute(
        "SELECT current_user::text, rolsuper, rolcreaterole,"
        " pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE'),"
        " pg_catalog.has_schema_privilege('public', 'CREATE')"
        " FROM pg_catalog.pg_roles WHERE rolname = current_user").fetchone()
    assert row is not None
    user, superuser, createrole, create_db, create_public = row
    if superuser:
        return passed(f"{user} is a superuser")
    problems: list[str] = []
    if not create_public:
        problems.append("no CREATE on schema public")
    roles = [spec.name for spec in ctx.of_kind(Kind.ROLE)]
    existing = {name for (name,) in ctx.rows(
        "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)", (roles,))}
    missing = [r for r in roles if r not in existing]
    if missing and not createrole:
        problems.append(f"no CREATEROLE, and roles {', '.join(missing)} do not exist yet")
    if s.target != "supabase" and s.owner_role in existing and not ctx.value(
            "SELECT pg_catalog.pg_has_role(current_user, %s, 'MEMBER')", (s.owner_role,)):
        problems.append(f"not a member of ownerRole {s.owner_role}, which must own every "
                        "object")
    installed, _ = _vector_versions(ctx)
    if installed is None and not create_db:
        problems.append("pgvector is not installed, and the role may not CREATE in the "
                        "database to install it")
    if problems:
        return failed(f"{user}: " + "; ".join(problems),
                      "deploy as a superuser, or grant the deploying role what is missing "
                      f"(e.g. GRANT {s.owner_role} TO {user}; ALTER ROLE {user} CREATEROLE; "
                      f"GRANT CREATE ON SCHEMA public TO {user}); on Supabase deploy as "
                      "postgres")
    return passed(f"{user} may create the stack's objects")


def check_target_shape(ctx: Context) -> Outcome:
    s = ctx.settings
    if s.target != "supabase":
        return not_applicable(f"target {s.target} needs no particular shape")
    expected = (*SUPABASE_END_USER_ROLES, SUPABASE_SERVICE_ROLE)
    roles = {r for (r,) in ctx.rows(
        "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)",
        (list(expected),))}
    schemas = {n for (n,) in ctx.rows(
        "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname = ANY(%s)",
        (list(SUPABASE_SCHEMAS),))}
    uid = ctx.value("SELECT pg_catalog.to_regprocedure('auth.uid()') IS NOT NULL"
                    if "auth" in schemas else "SELECT false")
    missing = [f"role {r}" for r in expected if r not in roles]
    missing += [f"schema {n}" for n in SUPABASE_SCHEMAS if n not in schemas]
    if not uid:
        missing.append("function auth.uid()")
    if missing:
        return failed("target is supabase, but this database lacks " + ", ".join(missing),
                      "point databaseUrl at a Supabase project's database, or set target to "
                      "postgres")
    return passed("Supabase's roles, schemas auth and extensions, and auth.uid() are there")


def check_data_safe(ctx: Context) -> Outcome:
    """A table change that would lose rows is refused here, before any object changes
    (the table's own apply refuses it too, but only once the objects before it changed)."""
    refused: list[str] = []
    with ctx.conn.cursor() as cur:
        for spec in ctx.of_kind(Kind.TABLE):
            if not isinstance(spec.fields, TableFields):
                continue
            live = read_fields(cur, spec.schema, spec.name)
            if live is None:
                continue
            try:
                steps = plan_shape_change(live.shape(), spec.fields.shape())
            except UnsupportedTableChange as exc:
                refused.append(f"{qualified(spec.schema, spec.name)}: {exc}")
                continue
            lossy = [s.why for s in steps if s.loses_data]
            if lossy and has_rows(ctx.conn, spec.schema, spec.name):
                refused += [f"{qualified(spec.schema, spec.name)} holds rows: {why}"
                            for why in lossy]
    if not refused:
        return passed("no declared table change loses rows")
    if ctx.settings.allow_data_loss:
        return passed("allowDataLoss is on; changes that lose data: " + "; ".join(refused))
    return failed(
        "refusing to deploy, nothing was changed: " + "; ".join(refused),
        "a dimensions change on a table with rows needs a migration: deploy a new "
        "`collection` with the new `dimensions` beside the old, re-embed the memories "
        "into it, switch mem0's collection_name, then retire the old table. To clear the "
        "stored vectors instead, back up and set `allowDataLoss: true`")


CHECKS: tuple[Check, ...] = (
    Check("server_version", "PostgreSQL 14 or later", check_server_version),
    Check("tls", "the deployer's session is encrypted as sslMode asks, and sslRootCert "
          "parses", check_tls_deployer),
    Check("pgvector", "pgvector available at the version the stack's features need",
          check_pgvector),
    Check("pg_cron", "pg_cron available where the stack schedules jobs", check_pg_cron),
    Check("deployer", "the deploying role may create the stack's objects", check_deployer),
    Check("target_shape", "the database has the shape the target expects",
          check_target_shape),
    Check("data_safe", "no declared table change loses rows (dimensions on a table with "
          "rows)", check_data_safe),
)
