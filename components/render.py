"""A stack's complete SQL as one psql script (and as a Supabase migration file), or as
JSON for CI: the same statements, one object each."""

from __future__ import annotations

from typing import Any

from components.identifiers import quote_ident, quote_literal
from components.kinds import Kind
from components.kinds.grant import revoke_all_sql
from components.model import ObjectSpec, build_model
from components.settings import Settings


def _statement(spec: ObjectSpec) -> str:
    if spec.kind == Kind.GRANT and spec.fields.privileges:
        # A grant declares all the role holds: take away what default privileges gave it
        # (Supabase hands every new table to anon, authenticated and service_role).
        return f"{revoke_all_sql(spec.on, spec.role)}\n{spec.ddl}"
    if spec.kind == Kind.CRON_JOB:
        # pg_cron keeps every job of the server in one database: this line runs there.
        return ("-- run in pg_cron's database (cron.database_name); from another database, "
                "call\n-- cron.schedule_in_database(name, schedule, command, "
                "'<this database>') instead\n" + spec.ddl)
    if spec.kind != Kind.ROLE:
        return spec.ddl
    # Roles belong to the cluster, not the database: another database may have made it.
    return "\n".join([
        "DO $role$ BEGIN",
        f"    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = "
        f"{quote_literal(spec.name)}) THEN",
        f"        {spec.ddl}",
        "    END IF;",
        "END $role$;",
        f"-- then set its password: \\password {quote_ident(spec.name)}",
    ])


def render_script(settings: Settings) -> str:
    index = settings.vector_index
    lines = [
        f"-- mem0infra: the SQL of stack {settings.stack!r} (target {settings.target}),",
        "-- rendered by `python -m components render`. Apply to an empty database with",
        "--   psql -v ON_ERROR_STOP=1 -f THIS_FILE",
        f"-- collection={settings.collection} dimensions={settings.dimensions} "
        f"tenancy={settings.tenancy} vector index={index.method}",
        f"-- sharedAgentKnowledge={str(settings.shared_agent_knowledge).lower()} "
        f"sessionScope={str(settings.session_scope).lower()} "
        f"appRoleIdentity={settings.app_role_identity}",
    ]
    lines += [f"-- WARNING: {w}" for w in settings.warnings]
    lines += [
        "",
        "BEGIN;",
        "-- Every name below is schema-qualified, as PostgreSQL's catalog prints it.",
        "SELECT pg_catalog.set_config('search_path', '', true);",
    ]
    for spec in build_model(settings):
        lines += ["", f"-- {spec.key}: {spec.comment}" if spec.comment else f"-- {spec.key}"]
        # A table's access matrix: who may do what, in words a reviewer reads in a diff.
        lines += [f"-- {line}" for line in spec.notes.splitlines()]
        lines.append(_statement(spec))
    lines += ["", "COMMIT;", ""]
    return "\n".join(lines)


def render_json(settings: Settings) -> dict[str, Any]:
    """The stack's objects in the script's order, each with the statement the script
    runs for it, and the script itself."""
    return {
        "stack": settings.stack,
        "target": str(settings.target),
        "warnings": list(settings.warnings),
        "objects": [{"key": spec.key, "kind": str(spec.kind), "schema": spec.schema,
                     "name": spec.name, "depends_on": list(spec.depends_on),
                     "data_bearing": spec.data_bearing, "comment": spec.comment,
                     "notes": spec.notes, "sql": _statement(spec)}
                    for spec in build_model(settings)],
        "script": render_script(settings),
    }
