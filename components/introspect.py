"""Read live objects back from the catalog in the model's canonical DDL form.

One introspection serves drift detection (the provider's `read`), adoption (`create`),
validation and the tests. Connections must have an empty `search_path`
(`components.connection.connect` sets it) so the catalog schema-qualifies every
non-catalog name exactly as the model writes it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

import psycopg

from components import cron
from components.identifiers import qualified, quote_ident
from components.model import (
    BACKUP_SCHEMA,
    cron_job_ddl,
    grantee_sql,
    index_ddl,
    policy_ddl,
    role_setting_line,
)

Cursor = psycopg.Cursor
# What identifies an object: a spec's fields or a resource's props (kind, schema, name,
# table, role, on, arguments, and the declared ddl where the reader needs it).
ObjectRef = Mapping[str, Any]

INVALID_INDEX_NOTE = "-- INVALID: a failed or interrupted build left this index unusable"
DISABLED_TRIGGER_NOTE = "-- DISABLED: ALTER TABLE ... DISABLE TRIGGER turned this trigger off"
INACTIVE_JOB_NOTE = "-- INACTIVE: cron.alter_job(..., active => false) paused this job"


def _extension(cur: Cursor, ref: ObjectRef) -> str | None:
    name = ref["name"]
    row = cur.execute(
        "SELECT n.nspname FROM pg_catalog.pg_extension e"
        " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return None
    return f"CREATE EXTENSION IF NOT EXISTS {quote_ident(name)} WITH SCHEMA {quote_ident(row[0])};"


def _relation(cur: Cursor, schema: str, name: str,
              relkinds: str) -> tuple[int, str, str] | None:
    """(oid, relpersistence, owner as the catalog prints it) of the relation, or None."""
    row = cur.execute(
        "SELECT c.oid, c.relpersistence, c.relowner::regrole::text FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind = ANY(%s)",
        (schema, name, list(relkinds)),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]))


_COLUMNS = """
SELECT a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attnotnull,
       a.attgenerated,
       a.attidentity,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

# Constraints in a fixed order: primary key, unique, foreign keys, checks, exclusions.
# NOT NULL constraints ('n', PostgreSQL 18) are shown on their columns instead.
_CONSTRAINTS = """
SELECT conname, pg_catalog.pg_get_constraintdef(oid)
FROM pg_catalog.pg_constraint
WHERE conrelid = %s AND contype <> 'n'
ORDER BY array_position(ARRAY['p','u','f','c','x']::"char"[], contype), conname
"""


def column_line(name: str, type_: str, not_null: bool, generated: str, identity: str,
                default: str | None, collation: str | None) -> str:
    line = f"{quote_ident(name)} {type_}"
    if collation:
        line += f" COLLATE {quote_ident(collation)}"
    if generated == "s":
        line += f" GENERATED ALWAYS AS ({default}) STORED"
    elif identity:
        line += " GENERATED " + ("ALWAYS" if identity == "a" else "BY DEFAULT") + " AS IDENTITY"
    elif default is not None:
        line += f" DEFAULT {default}"
    if not_null:
        line += " NOT NULL"
    return line


def _table(cur: Cursor, ref: ObjectRef) -> str | None:
    schema, name = ref["schema"], ref["name"]
    relation = _relation(cur, schema, name, "rp")
    if relation is None:
        return None
    oid, persistence, owner = relation
    elements = [column_line(*row) for row in cur.execute(_COLUMNS, (oid,)).fetchall()]
    elements += [f"CONSTRAINT {quote_ident(con)} {definition}"
                 for con, definition in cur.execute(_CONSTRAINTS, (oid,)).fetchall()]
    unlogged = "UNLOGGED " if persistence == "u" else ""
    body = ",\n".join(f"    {e}" for e in elements)
    table = qualified(schema, name)
    settings = "".join(f"{line}\n" for line in _table_settings(cur, oid, table))
    return (f"CREATE {unlogged}TABLE {table} (\n{body}\n);\n{settings}"
            f"ALTER TABLE {table} OWNER TO {owner};")


_STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}
# Columns stored other than their type's default, then the table's storage parameters.
_TABLE_SETTINGS = """
SELECT a.attname, a.attstorage, NULL::text[]
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attstorage <> t.typstorage
UNION ALL
SELECT NULL, NULL, c.reloptions FROM pg_catalog.pg_class c
WHERE c.oid = %(oid)s AND c.reloptions IS NOT NULL
"""


def _table_settings(cur: Cursor, oid: int, table: str) -> list[str]:
    """The `ALTER TABLE` lines of a canonical table after its CREATE: column storage that
    differs from the type's default, then the storage parameters (reloptions)."""
    lines = []
    for column, storage, options in cur.execute(_TABLE_SETTINGS, {"oid": oid}).fetchall():
        if column is not None:
            lines.append(f"ALTER TABLE {table} ALTER COLUMN {quote_ident(column)} SET STORAGE "
                         f"{_STORAGE[storage]};")
        else:
            lines.append(f"ALTER TABLE {table} SET ({', '.join(options)});")
    return lines


def _index(cur: Cursor, ref: ObjectRef) -> str | None:
    relation = _relation(cur, ref["schema"], ref["name"], "iI")
    if relation is None:
        return None
    oid = relation[0]
    definition, valid = cur.execute(
        "SELECT pg_catalog.pg_get_indexdef(indexrelid), indisvalid"
        " FROM pg_catalog.pg_index WHERE indexrelid = %s", (oid,)).fetchone()  # type: ignore[misc]
    text = index_ddl(definition)
    return text if valid else f"{text}\n{INVALID_INDEX_NOTE}"


_ROLE_FLAGS = (("rolcanlogin", "LOGIN"), ("rolsuper", "SUPERUSER"),
               ("rolcreatedb", "CREATEDB"), ("rolcreaterole", "CREATEROLE"),
               ("rolinherit", "INHERIT"), ("rolreplication", "REPLICATION"),
               ("rolbypassrls", "BYPASSRLS"))


def role_flags(cur: Cursor, role: str) -> list[str] | None:
    """The role's attributes as CREATE ROLE words (LOGIN or NOLOGIN, ...), or None."""
    columns = ", ".join(column for column, _ in _ROLE_FLAGS)
    row = cur.execute(f"SELECT {columns} FROM pg_catalog.pg_roles WHERE rolname = %s",
                      (role,)).fetchone()
    if row is None:
        return None
    return [word if on else f"NO{word}" for (_, word), on in zip(_ROLE_FLAGS, row, strict=True)]


def _role(cur: Cursor, ref: ObjectRef) -> str | None:
    flags = role_flags(cur, ref["name"])
    return None if flags is None else \
        f"CREATE ROLE {quote_ident(ref['name'])} WITH {' '.join(flags)};"


def function_signature(ref: ObjectRef) -> str:
    return f"{qualified(ref['schema'], ref['name'])}({ref.get('arguments') or ''})"


def _function(cur: Cursor, ref: ObjectRef) -> str | None:
    signature = function_signature(ref)
    row = cur.execute("SELECT pg_catalog.pg_get_functiondef(p.oid), p.proowner::regrole::text"
                      " FROM pg_catalog.pg_proc p WHERE p.oid = pg_catalog.to_regprocedure(%s)",
                      (signature,)).fetchone()
    if row is None:
        return None
    return f"{row[0].rstrip(chr(10))};\nALTER FUNCTION {signature} OWNER TO {row[1]};"


def _trigger(cur: Cursor, ref: ObjectRef) -> str | None:
    row = cur.execute(
        "SELECT pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled FROM pg_catalog.pg_trigger t"
        " WHERE t.tgrelid = pg_catalog.to_regclass(%s) AND t.tgname = %s AND NOT t.tgisinternal",
        (qualified(ref["schema"], ref["table"]), ref["name"])).fetchone()
    if row is None:
        return None
    definition, enabled = row
    return f"{definition};" + (f"\n{DISABLED_TRIGGER_NOTE}" if enabled == "D" else "")


# The ACL of what a grant is on, with the owner's implicit defaults when none was set.
_ACL_QUERIES = {
    "TABLE": "SELECT COALESCE(relacl, pg_catalog.acldefault('r', relowner))"
             " FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass(%s)",
    "SEQUENCE": "SELECT COALESCE(relacl, pg_catalog.acldefault('s', relowner))"
                " FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass(%s)",
    "SCHEMA": "SELECT COALESCE(nspacl, pg_catalog.acldefault('n', nspowner))"
              " FROM pg_catalog.pg_namespace WHERE oid = pg_catalog.to_regnamespace(%s)",
    "FUNCTION": "SELECT COALESCE(proacl, pg_catalog.acldefault('f', proowner))"
                " FROM pg_catalog.pg_proc WHERE oid = pg_catalog.to_regprocedure(%s)",
}


def granted(cur: Cursor, on: str, role: str) -> list[tuple[str, bool]] | None:
    """(privilege, grantable) pairs `role` (or PUBLIC) holds on `on` ("TABLE public.t"),
    or None when the object or the role does not exist."""
    object_type, object_name = on.split(" ", 1)
    if role != "PUBLIC" and cur.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s",
                                        (role,)).fetchone() is None:
        return None
    acl = cur.execute(_ACL_QUERIES[object_type], (object_name,)).fetchone()
    if acl is None:
        return None
    rows = cur.execute(
        "SELECT a.privilege_type, a.is_grantable FROM pg_catalog.aclexplode(%s::aclitem[]) a"
        " WHERE a.grantee = CASE WHEN %s = 'PUBLIC' THEN 0"
        " ELSE (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s) END"
        " ORDER BY 1", (acl[0], role, role)).fetchall()
    return [(str(p), bool(g)) for p, g in rows]


def _grant(cur: Cursor, ref: ObjectRef) -> str | None:
    privileges = granted(cur, ref["on"], ref["role"])
    if privileges is None:
        return None
    grantee = grantee_sql(ref["role"])
    if not privileges:
        return f"REVOKE ALL ON {ref['on']} FROM {grantee};"
    lines = [f"GRANT {', '.join(p for p, _ in privileges)} ON {ref['on']} TO {grantee};"]
    with_option = [p for p, grantable in privileges if grantable]
    if with_option:
        lines.append(f"GRANT {', '.join(with_option)} ON {ref['on']} TO {grantee}"
                     " WITH GRANT OPTION;")
    return "\n".join(lines)


def _row_security(cur: Cursor, ref: ObjectRef) -> str | None:
    row = cur.execute("SELECT relrowsecurity, relforcerowsecurity FROM pg_catalog.pg_class"
                      " WHERE oid = pg_catalog.to_regclass(%s)",
                      (qualified(ref["schema"], ref["table"]),)).fetchone()
    if row is None:
        return None
    table = qualified(ref["schema"], ref["table"])
    enabled, forced = row
    return (f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} ROW LEVEL SECURITY;\n"
            f"ALTER TABLE {table} {'FORCE' if forced else 'NO FORCE'} ROW LEVEL SECURITY;")


_POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


def _expression(text: str | None) -> str | None:
    # pg_get_expr breaks a sub-select over lines; one line per expression keeps the
    # canonical form (and a preview's diff) simple. No expression the model writes holds a
    # string literal whose spacing this would change.
    return None if text is None else " ".join(text.split())


def _policy(cur: Cursor, ref: ObjectRef) -> str | None:
    row = cur.execute(
        "SELECT p.polpermissive, p.polcmd,"
        " ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END"
        "       FROM pg_catalog.unnest(p.polroles) AS r),"
        " pg_catalog.pg_get_expr(p.polqual, p.polrelid),"
        " pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)"
        " FROM pg_catalog.pg_policy p"
        " WHERE p.polrelid = pg_catalog.to_regclass(%s) AND p.polname = %s",
        (qualified(ref["schema"], ref["table"]), ref["name"])).fetchone()
    if row is None:
        return None
    permissive, command, roles, using, check = row
    # regrole prints quoted names; policy_ddl quotes them itself.
    names = [r if r == "PUBLIC" else _unquote(r) for r in roles]
    text = policy_ddl(ref["name"], qualified(ref["schema"], ref["table"]),
                      _POLICY_COMMANDS[command], names, _expression(using), _expression(check))
    return text if permissive else text.replace(" AS PERMISSIVE ", " AS RESTRICTIVE ", 1)


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _default_privileges(cur: Cursor, ref: ObjectRef) -> str | None:
    """Whether functions the role creates from now on keep PUBLIC's EXECUTE."""
    if role_flags(cur, ref["role"]) is None:
        return None
    row = cur.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(d.defaclacl) a"
        "               WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')"
        " FROM pg_catalog.pg_default_acl d JOIN pg_catalog.pg_roles r ON r.oid = d.defaclrole"
        " WHERE r.rolname = %s AND d.defaclnamespace = 0 AND d.defaclobjtype = 'f'",
        (ref["role"],)).fetchone()
    public_executes = row is None or bool(row[0])
    verb = "GRANT EXECUTE ON FUNCTIONS TO" if public_executes else \
        "REVOKE EXECUTE ON FUNCTIONS FROM"
    return f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(ref['role'])} {verb} PUBLIC;"


_SETTING_LINE = re.compile(r"^ALTER ROLE \S+ SET (\S+) TO ")


def declared_setting_names(ddl: str) -> list[str]:
    return [m.group(1) for m in map(_SETTING_LINE.match, ddl.splitlines()) if m]


def _role_settings(cur: Cursor, ref: ObjectRef) -> str | None:
    """The role's cluster-wide settings, limited to the names the stack declares (the role
    may carry others that are not this stack's business: Supabase sets some on its roles)."""
    row = cur.execute(
        "SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s"
        " JOIN pg_catalog.pg_roles r ON r.oid = s.setrole"
        " WHERE r.rolname = %s AND s.setdatabase = 0", (ref["role"],)).fetchone()
    current = dict(item.split("=", 1) for item in (row[0] if row else []))
    lines = [role_setting_line(ref["role"], name, current[name])
             for name in declared_setting_names(ref.get("ddl") or "") if name in current]
    return "\n".join(lines) or None


def _schema(cur: Cursor, ref: ObjectRef) -> str | None:
    row = cur.execute("SELECT nspowner::regrole::text FROM pg_catalog.pg_namespace"
                      " WHERE nspname = %s", (ref["name"],)).fetchone()
    return None if row is None else \
        f"CREATE SCHEMA {quote_ident(ref['name'])} AUTHORIZATION {row[0]};"


def _cron_job(cur: Cursor, ref: ObjectRef) -> str | None:
    """The job of this name that runs in the cursor's database, from pg_cron's database;
    None when there is none, or no pg_cron to hold one."""
    conn = cur.connection
    try:
        with cron.cron_session(conn) as cron_conn:
            job = cron.find_job(cron_conn, ref["name"], cron.current_database(conn))
    except cron.CronUnavailable:
        return None
    return job_ddl(ref["name"], job)


def job_ddl(name: str, job: cron.Job | None) -> str | None:
    """A job as cron.job holds it, in the model's canonical form."""
    if job is None:
        return None
    text = cron_job_ddl(name, job.schedule, job.command)
    return text if job.active else f"{text}\n{INACTIVE_JOB_NOTE}"


def _statistics(cur: Cursor, ref: ObjectRef) -> str | None:
    row = cur.execute(
        "SELECT pg_catalog.pg_get_statisticsobjdef(s.oid) FROM pg_catalog.pg_statistic_ext s"
        " JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace"
        " WHERE n.nspname = %s AND s.stxname = %s", (ref["schema"], ref["name"])).fetchone()
    return None if row is None else f"{row[0]};"


_READERS: dict[str, Callable[[Cursor, ObjectRef], str | None]] = {
    "extension": _extension,
    "role": _role,
    "table": _table,
    "function": _function,
    "index": _index,
    "statistics": _statistics,
    "trigger": _trigger,
    "grant": _grant,
    "default_privileges": _default_privileges,
    "row_security": _row_security,
    "policy": _policy,
    "role_settings": _role_settings,
    "schema": _schema,
    "cron_job": _cron_job,
}


def live_ddl(cur: Cursor, ref: ObjectRef) -> str | None:
    """The object's definition as the catalog has it now, or None when it does not exist."""
    try:
        reader = _READERS[ref["kind"]]
    except KeyError:
        raise ValueError(
            f"unknown object kind {ref['kind']!r}; known: {', '.join(_READERS)}") from None
    return reader(cur, ref)


def live_ddl_or_none(cur: Cursor, ref: ObjectRef) -> str | None:
    """`live_ddl` for a caller inside a transaction that must stay usable: before
    PostgreSQL 16, to_regprocedure() raises when an argument type or its schema does not
    exist (a function on pgvector's type with pgvector or its schema missing); then the
    object cannot exist either. A savepoint keeps the transaction usable."""
    try:
        with cur.connection.transaction():
            return live_ddl(cur, ref)
    except (psycopg.errors.UndefinedObject, psycopg.errors.InvalidSchemaName):
        return None


def short_diff(declared: str, live: str, max_lines: int = 20) -> str:
    """A unified diff of a declared and a live definition, cut to `max_lines` lines."""
    lines = list(difflib.unified_diff(declared.splitlines(), live.splitlines(),
                                      "declared", "live", n=1, lineterm=""))
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def relation_has_storage(cur: Cursor, schema: str, name: str) -> bool:
    """True when the table has any data pages: rows may exist (RLS cannot hide them here)."""
    row = cur.execute(
        "SELECT pg_catalog.pg_relation_size(c.oid) > 0 FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s", (schema, name)).fetchone()
    return bool(row and row[0])


def catalog_snapshot(cur: Cursor,
                     schemas: tuple[str, ...] = ("public", "extensions", BACKUP_SCHEMA)
                     ) -> dict[str, str]:
    """Every extension, table (with its ACL), index, trigger and function in `schemas`, as
    `kind:schema.name` -> live definition.

    Compares two databases object by object (a render applied with psql against a
    deployment) and shows what a database holds beyond what a stack declares.
    """
    found: dict[str, str] = {}
    for (name,) in cur.execute(
            "SELECT extname FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'"
            " ORDER BY extname").fetchall():
        found[f"extension:{name}"] = live_ddl(cur, {"kind": "extension", "name": name}) or ""
    rows = cur.execute(
        "SELECT n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'i', 'I')"
        " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.objid = c.oid"
        "                 AND d.deptype = 'e')"  # objects that belong to an extension
        " ORDER BY 1, 2", (list(schemas),)).fetchall()
    for schema, name, relkind in rows:
        kind = "index" if relkind in ("i", "I") else "table"
        found[f"{kind}:{schema}.{name}"] = live_ddl(
            cur, {"kind": kind, "schema": schema, "name": name}) or ""
        if kind == "table":
            # Sorted: grants applied in another order are the same ACL.
            found[f"acl:{schema}.{name}"] = str(cur.execute(
                "SELECT pg_catalog.array_to_string(ARRAY(SELECT a::text"
                " FROM pg_catalog.unnest(relacl) AS a ORDER BY 1), ' ')"
                " FROM pg_catalog.pg_class WHERE oid = %s::regclass",
                (qualified(schema, name),)).fetchone()[0])  # type: ignore[index]
    for schema, table, trigger in cur.execute(
            "SELECT n.nspname, c.relname, t.tgname FROM pg_catalog.pg_trigger t"
            " JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ANY(%s) AND NOT t.tgisinternal ORDER BY 1, 2, 3",
            (list(schemas),)).fetchall():
        found[f"trigger:{schema}.{trigger}"] = live_ddl(
            cur, {"kind": "trigger", "schema": schema, "name": trigger, "table": table}) or ""
    for signature, definition in cur.execute(
            "SELECT p.oid::regprocedure::text, pg_catalog.pg_get_functiondef(p.oid)"
            " FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = ANY(%s) AND p.prokind = 'f'"
            " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.objid = p.oid"
            "                 AND d.deptype = 'e') ORDER BY 2", (list(schemas),)).fetchall():
        found[f"function:{signature}"] = definition
    return found
