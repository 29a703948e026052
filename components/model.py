"""The model: Settings -> ordered object specs. Pure: no Pulumi, no I/O.

Each spec's `ddl` is written in the canonical form PostgreSQL's catalog prints the object
in (with `search_path` empty, so every non-catalog name is schema-qualified): the form
`components.introspect` reconstructs from a live database. Declared and live definitions
therefore compare as plain text, and a difference reads as a SQL line diff in a preview.

Two client profiles (the `clientProfile` setting) decide the tables' layout, because the
Python and TypeScript SDKs read and write incompatible rows (mem0-contract.md 12):
`python` is the pgvector provider's `(id, vector, payload)` plus this project's history
trigger and relationship graph; `typescript` is the TS Supabase store's contract.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from components.access import (
    BACKEND,
    COMMANDS,
    GRAPH,
    HISTORY,
    MEMBERSHIP,
    MEMBERSHIP_TABLE,
    MEMORY,
    ORG_IDS_FUNCTION,
    RUN_ID_FUNCTION,
    USER_ID_FUNCTION,
    TableAccess,
    needs_org_ids,
    needs_run_id,
    table_access,
)
from components.identifiers import qualified, quote_ident, quote_literal
from components.mem0 import DEFAULT_SEARCH_LIMIT
from components.settings import (
    HALFVEC_PGVECTOR,
    JOB_SETTINGS,
    SUPABASE_END_USER_ROLES,
    Settings,
)
from components.templates import render_template

KINDS = ("extension", "role", "schema", "table", "function", "index", "statistics", "trigger",
         "grant", "default_privileges", "row_security", "policy", "role_settings", "cron_job")
# Component families in the order they are declared (dependencies first).
FAMILIES = ("extensions", "roles", "tables", "functions", "indexes", "triggers", "grants",
            "policies", "search_settings", "jobs")

HISTORY_TABLE = "memory_history"
RELATIONSHIPS_TABLE = "memory_relationships"
TS_MIGRATIONS_TABLE = "memory_migrations"
MATCH_FUNCTION = "match_memories"
TS_MATCH_FUNCTION = "match_vectors"
NEIGHBOURS_FUNCTION = "memory_neighbours"
TOUCH_FUNCTION = "mem0_touch_updated_at"
HISTORY_FUNCTION = "mem0_record_history"
RESTORE_HISTORY_FUNCTION = "mem0_restore_history"
BACKUP_SCHEMA = "mem0_backup"
SNAPSHOT_FUNCTION = "take_snapshot"


def version_tuple(version: str) -> tuple[int, ...]:
    """'0.8.0' -> (0, 8, 0), comparable; '16.4 (Debian ...)' -> (16, 4)."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split(" ", 1)[0]))


def index_ddl(definition: str) -> str:
    """The canonical text of an index from its one-line definition (pg_get_indexdef's form,
    without the semicolon): USING, WITH and WHERE each begin a line, so a preview shows a
    changed method, parameter or predicate as its own SQL line."""
    head, _, using = definition.partition(" USING ")
    using, _, where = using.partition(" WHERE ")
    using, _, parameters = using.rpartition(" WITH (") if " WITH (" in using else \
        (using, "", "")
    lines = [head, f"  USING {using}"]
    if parameters:
        lines.append(f"  WITH ({parameters}")
    if where:
        lines.append(f"  WHERE {where}")
    return "\n".join(lines) + ";"


@dataclass(frozen=True)
class Requirement:
    """A server feature an object needs; checked before it is applied."""

    extension: str
    min_version: str
    hint: str  # what to change when the server does not have it (names the setting)

    def met_by(self, installed: str | None) -> bool:
        """Whether the installed version of the extension (None: not installed) will do."""
        return installed is not None and \
            version_tuple(installed) >= version_tuple(self.min_version)


@dataclass(frozen=True)
class ObjectSpec:
    kind: str  # one of KINDS
    schema: str  # "" for cluster-wide objects (roles, role settings)
    name: str
    family: str  # one of FAMILIES: which component owns it
    ddl: str  # canonical CREATE statement(s)
    drop_sql: str
    table: str = ""  # the table an index or trigger belongs to
    role: str = ""  # the grantee of a grant, the role of role settings
    on: str = ""  # what a grant is on, as SQL: "TABLE public.memories", "SCHEMA extensions"
    arguments: str = ""  # a function's argument types, as regprocedure prints them
    depends_on: tuple[str, ...] = ()  # keys of specs that must exist first
    data_bearing: bool = False  # dropping it loses rows: `protect` applies
    requires: tuple[Requirement, ...] = ()
    comment: str = ""  # why the object looks the way it does; shown by `render`
    notes: str = ""  # plain words a preview shows beside the DDL (a table's access matrix)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.schema}.{self.name}" if self.schema else \
            f"{self.kind}:{self.name}"

    @property
    def qualified_name(self) -> str:
        return qualified(self.schema, self.name)


def vector_type(settings: Settings) -> str:
    """The embedding columns' type: vector(N), or halfvec(N) for an indexed stack above 2000
    dimensions (settings.vector_column_type). mem0's SQL needs no change for halfvec: the
    list it inserts takes pgvector's array -> halfvec assignment cast, and its
    `vector <=> %s::vector` resolves to halfvec's <=> through the implicit vector -> halfvec
    cast, which the halfvec index serves. Functions keep taking `vector` arguments."""
    column_type = settings.vector_column_type
    return f"{qualified(settings.extension_schema, column_type)}({settings.dimensions})"


def vector_requires(settings: Settings) -> tuple[Requirement, ...]:
    """What the embedding columns and their index need of the server: halfvec came with
    pgvector 0.7.0."""
    if settings.vector_column_type != "halfvec":
        return ()
    return (Requirement(
        "vector", HALFVEC_PGVECTOR,
        f"dimensions is {settings.dimensions}: above 2000 an hnsw or ivfflat index needs "
        f"halfvec columns, which pgvector {HALFVEC_PGVECTOR} brought: upgrade pgvector, or "
        "set vectorIndexMethod to none (no index, full precision)"),)


class _Builder:
    """Collects specs in order and keeps the cross-references (keys) in one place."""

    def __init__(self, settings: Settings, schema: str, owned: bool) -> None:
        self.settings = settings
        self.schema = schema  # of tables, indexes, functions and triggers
        self.owner = settings.owner_role if owned else None
        self.specs: list[ObjectSpec] = []
        self.roles: dict[str, ObjectSpec] = {}  # the roles the model creates, by name

    def add(self, spec: ObjectSpec) -> ObjectSpec:
        self.specs.append(spec)
        return spec

    # --- object kinds ----------------------------------------------------------------------

    def extension(self) -> ObjectSpec:
        schema = self.settings.extension_schema
        return self.add(ObjectSpec(
            kind="extension", schema=schema, name="vector", family="extensions",
            ddl=render_template("extension", name="vector", schema=quote_ident(schema)),
            drop_sql="DROP EXTENSION IF EXISTS vector;",
            comment=f"pgvector, in schema {schema}"
            + (" (where Supabase keeps extensions)" if schema == "extensions" else "")))

    def role(self, name: str, login: bool, bypass_rls: bool, comment: str) -> ObjectSpec:
        spec = self.add(ObjectSpec(
            kind="role", schema="", name=name, family="roles",
            ddl=render_template("role", role=quote_ident(name),
                                login="LOGIN" if login else "NOLOGIN",
                                bypass="BYPASSRLS" if bypass_rls else "NOBYPASSRLS"),
            drop_sql=f"DROP ROLE IF EXISTS {quote_ident(name)};", comment=comment))
        self.roles[name] = spec
        return spec

    def _owned(self, ddl: str, object_sql: str) -> tuple[str, tuple[str, ...]]:
        """The DDL with its ownership line, and the owner role's key when the model makes it."""
        if self.owner is None:
            return ddl, ()
        owner_spec = self.roles.get(self.owner)
        return (f"{ddl}\nALTER {object_sql} OWNER TO {quote_ident(self.owner)};",
                (owner_spec.key,) if owner_spec else ())

    def schema_(self, name: str, comment: str) -> ObjectSpec:
        assert self.owner is not None, "only an owned stack declares schemas"
        owner = self.roles.get(self.owner)
        return self.add(ObjectSpec(
            kind="schema", schema="", name=name, family="tables",
            ddl=render_template("schema", schema=quote_ident(name),
                                owner=quote_ident(self.owner)),
            drop_sql=f"DROP SCHEMA IF EXISTS {quote_ident(name)};",
            depends_on=(owner.key,) if owner else (), comment=comment))

    def table(self, template: str, name: str, after: ObjectSpec | tuple[ObjectSpec, ...],
              comment: str, in_schema: str | None = None,
              requires: tuple[Requirement, ...] = (), **values: str) -> ObjectSpec:
        schema = in_schema or self.schema
        table = qualified(schema, name)
        ddl, owner = self._owned(render_template(template, table=table, **values),
                                 f"TABLE {table}")
        return self.add(ObjectSpec(
            kind="table", schema=schema, name=name, family="tables", ddl=ddl,
            drop_sql=f"DROP TABLE IF EXISTS {table};",
            depends_on=(*(a.key for a in (after if isinstance(after, tuple) else (after,))),
                        *owner), data_bearing=True, requires=requires, comment=comment))

    def index(self, table: ObjectSpec, name: str, using: str, comment: str,
              unique: bool = False, where: str = "",
              requires: tuple[Requirement, ...] = ()) -> ObjectSpec:
        head = "CREATE UNIQUE INDEX" if unique else "CREATE INDEX"
        predicate = f" WHERE {where}" if where else ""
        return self.add(ObjectSpec(
            kind="index", schema=self.schema, name=name, table=table.name, family="indexes",
            ddl=index_ddl(f"{head} {quote_ident(name)} ON {table.qualified_name} USING {using}"
                          f"{predicate}"),
            drop_sql=f"DROP INDEX IF EXISTS {qualified(self.schema, name)};",
            depends_on=(table.key,), requires=requires, comment=comment))

    def statistics(self, table: ObjectSpec, name: str, kinds: str, on: str,
                   comment: str) -> ObjectSpec:
        """Extended statistics, as pg_get_statisticsobjdef prints them (ANALYZE fills them)."""
        return self.add(ObjectSpec(
            kind="statistics", schema=self.schema, name=name, table=table.name,
            family="indexes",
            ddl=f"CREATE STATISTICS {qualified(self.schema, name)} ({kinds}) ON {on} FROM "
                f"{table.qualified_name};",
            drop_sql=f"DROP STATISTICS IF EXISTS {qualified(self.schema, name)};",
            depends_on=(table.key,), comment=comment))

    def function(self, template: str, name: str, arguments: str, after: tuple[ObjectSpec, ...],
                 comment: str, in_schema: str | None = None, **values: str) -> ObjectSpec:
        schema = in_schema or self.schema
        function = qualified(schema, name)
        ddl, owner = self._owned(render_template(template, function=function, **values),
                                 f"FUNCTION {function}({arguments})")
        return self.add(ObjectSpec(
            kind="function", schema=schema, name=name, family="functions", ddl=ddl,
            drop_sql=f"DROP FUNCTION IF EXISTS {function}({arguments});",
            arguments=arguments, depends_on=(*(s.key for s in after), *owner),
            comment=comment))

    def trigger(self, table: ObjectSpec, name: str, timing: str, function: ObjectSpec,
                comment: str) -> ObjectSpec:
        return self.add(ObjectSpec(
            kind="trigger", schema=self.schema, name=name, table=table.name, family="triggers",
            ddl=f"CREATE TRIGGER {quote_ident(name)} {timing} ON {table.qualified_name} "
                f"FOR EACH ROW EXECUTE FUNCTION {function.qualified_name}();",
            drop_sql=f"DROP TRIGGER IF EXISTS {quote_ident(name)} ON {table.qualified_name};",
            depends_on=(table.key, function.key), comment=comment))

    def grant(self, privileges: str, on: str, object_name: str, role: str,
              after: ObjectSpec | None, comment: str, schema: str | None = None) -> ObjectSpec:
        """What `role` holds on `on`: exactly `privileges`; none at all when empty (the
        role's privileges are revoked, say those Supabase's default privileges gave it)."""
        revoke = revoke_all_sql(on, role)
        role_spec = self.roles.get(role)
        return self.add(ObjectSpec(
            kind="grant", schema=schema if schema is not None else self.schema,
            name=f"{object_name}-to-{role}", family="grants",
            ddl=f"GRANT {privileges} ON {on} TO {grantee_sql(role)};" if privileges else revoke,
            drop_sql=revoke if privileges else "",
            role=role, on=on,
            depends_on=((role_spec.key,) if role_spec else ()) + ((after.key,) if after else ()),
            comment=comment))

    def row_security(self, table: ObjectSpec, notes: str) -> ObjectSpec:
        name = table.qualified_name
        return self.add(ObjectSpec(
            kind="row_security", schema=table.schema, name=table.name, table=table.name,
            family="policies",
            ddl=f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;\n"
                f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY;",
            drop_sql=f"ALTER TABLE {name} NO FORCE ROW LEVEL SECURITY;\n"
                     f"ALTER TABLE {name} DISABLE ROW LEVEL SECURITY;",
            depends_on=(table.key,), notes=notes,
            comment="every row is checked, for the owner too; the matrix says by which rule"))

    def policies(self, table: ObjectSpec, access: TableAccess,
                 functions: tuple[ObjectSpec, ...], after: tuple[ObjectSpec, ...]) -> None:
        """One policy per command and rule; roles with the same rule share it."""
        for command in COMMANDS:
            groups: dict[tuple[str | None, str | None], list[str]] = {}
            for role, rules in access.rules.items():
                rule = rules[command]
                if rule.policy:
                    groups.setdefault((rule.using, rule.check), []).append(role)
            for (using, check), roles in groups.items():
                audience = _audience(self.settings, roles)
                name = f"{table.name}_{command.lower()}_{audience}"
                used = tuple(f.key for f in functions
                             if f.name + "()" in f"{using} {check}")
                self.add(ObjectSpec(
                    kind="policy", schema=self.schema, name=name, table=table.name,
                    family="policies",
                    ddl=policy_ddl(name, table.qualified_name, command, roles, using, check),
                    drop_sql=f"DROP POLICY IF EXISTS {quote_ident(name)} ON "
                             f"{table.qualified_name};",
                    depends_on=(table.key, *used,
                                *(self.roles[r].key for r in sorted(roles) if r in self.roles),
                                *(a.key for a in after)),
                    comment=f"{command} for {', '.join(sorted(roles))}: "
                            f"{access.rules[roles[0]][command].words}"))

    def revoke_execute(self, function: ObjectSpec, needed_by: tuple[str, ...]) -> None:
        """A definer-rights function: callable only by the roles that need it. PUBLIC and
        every other role the stack knows hold nothing (Supabase's default privileges give
        anon EXECUTE on every new function in public)."""
        known = ["PUBLIC", *(r for r in self.roles if r != self.settings.owner_role)]
        if self.settings.target == "supabase":
            known += [*SUPABASE_END_USER_ROLES, self.settings.service_role]
        on = f"FUNCTION {function.qualified_name}({function.arguments})"
        for role in dict.fromkeys(known):
            self.grant("EXECUTE" if role in needed_by else "", on, function.name, role,
                       function, "only the roles that need it may call it"
                       if role in needed_by else "not callable by this role",
                       schema=function.schema)

    def default_privileges(self, owner: ObjectSpec) -> ObjectSpec:
        role = quote_ident(owner.name)
        return self.add(ObjectSpec(
            kind="default_privileges", schema="", name=f"{owner.name}-functions",
            role=owner.name, family="grants",
            ddl=f"ALTER DEFAULT PRIVILEGES FOR ROLE {role} REVOKE EXECUTE ON FUNCTIONS "
                "FROM PUBLIC;",
            drop_sql=f"ALTER DEFAULT PRIVILEGES FOR ROLE {role} GRANT EXECUTE ON FUNCTIONS "
                     "TO PUBLIC;",
            depends_on=(owner.key,),
            comment="functions the owner creates later are nobody's to call until granted"))

    def cron_job(self, job: str, command: str, after: tuple[ObjectSpec, ...],
                 comment: str) -> ObjectSpec:
        """A job of JOB_SETTINGS, on the schedule its setting gives."""
        name = cron_job_name(self.settings, job)
        schedule = self.settings.jobs.schedule(job)
        assert schedule, f"{JOB_SETTINGS[job]} schedules no job"
        return self.add(ObjectSpec(
            kind="cron_job", schema="", name=name, family="jobs",
            ddl=cron_job_ddl(name, schedule, command),
            drop_sql=f"SELECT cron.unschedule({quote_literal(name)});",
            depends_on=tuple(a.key for a in after), comment=comment))

    def search_settings(self, role: ObjectSpec, extension: ObjectSpec) -> ObjectSpec | None:
        values, requires = app_role_search_settings(self.settings)
        if not values:
            return None
        return self.add(ObjectSpec(
            kind="role_settings", schema="", name=f"{role.name}-settings", role=role.name,
            family="search_settings",
            ddl="\n".join(role_setting_line(role.name, name, value)
                          for name, value in sorted(values.items())),
            drop_sql="\n".join(f"ALTER ROLE {quote_ident(role.name)} RESET {name};"
                               for name in sorted(values)),
            depends_on=(role.key, extension.key), requires=requires,
            comment="search settings for the sessions of the app role: ef_search covers "
                    f"mem0's LIMIT {DEFAULT_SEARCH_LIMIT} (pgvector's default 40 silently "
                    "returns 40 rows); iterative scans keep filtered searches full"))


def grantee_sql(role: str) -> str:
    return "PUBLIC" if role == "PUBLIC" else quote_ident(role)


def revoke_all_sql(on: str, role: str) -> str:
    """Take every privilege `role` holds on `on` ("TABLE public.t"): the start of every
    grant's apply, and the whole of a grant that declares none."""
    return f"REVOKE ALL ON {on} FROM {grantee_sql(role)};"


def cron_job_name(settings: Settings, job: str) -> str:
    """A job's name in cron.job: unique per stack and collection (pg_cron keys jobs by name
    and user, across every database it serves)."""
    return f"mem0:{settings.stack}:{settings.collection}:{job}"


_CRON_JOB_DDL = re.compile(r"^SELECT cron\.schedule\('((?:[^']|'')*)', '((?:[^']|'')*)', "
                           r"(?:\$job\$(.*)\$job\$|'((?:[^']|'')*)')\);$", re.DOTALL)


def job_setting(name: str) -> str:
    """The setting that schedules the job of that cron.job name."""
    return JOB_SETTINGS.get(name.rsplit(":", 1)[-1], "the job's schedule setting")


def parse_cron_job_ddl(ddl: str) -> tuple[str, str, str]:
    """(name, schedule, command) of a canonical job text: `cron_job_ddl`'s inverse."""
    match = _CRON_JOB_DDL.match(ddl)
    if match is None:
        raise ValueError(f"not a canonical cron job statement: {ddl[:80]!r}")
    name, schedule, dollar, literal = match.groups()
    command = dollar if dollar is not None else literal.replace("''", "'")
    return name.replace("''", "'"), schedule.replace("''", "'"), command


def cron_job_ddl(name: str, schedule: str, command: str) -> str:
    """A pg_cron job's canonical text, as `components.introspect` rebuilds it from cron.job:
    the call that schedules it in the database it runs in."""
    quoted = f"$job${command}$job$" if "$job$" not in command else quote_literal(command)
    return f"SELECT cron.schedule({quote_literal(name)}, {quote_literal(schedule)}, {quoted});"


def policy_ddl(name: str, table: str, command: str, roles: list[str], using: str | None,
               check: str | None) -> str:
    """A policy's canonical text, as `components.introspect` rebuilds it from pg_policy."""
    lines = [f"CREATE POLICY {quote_ident(name)} ON {table} AS PERMISSIVE FOR {command} "
             f"TO {', '.join(grantee_sql(r) for r in sorted(roles))}"]
    if using is not None:
        lines.append(f"    USING ({using})")
    if check is not None:
        lines.append(f"    WITH CHECK ({check})")
    return "\n".join(lines) + ";"


def _audience(settings: Settings, roles: list[str]) -> str:
    """A short, stable word for who a policy serves: part of its name."""
    if roles == [settings.owner_role]:
        return "owner"
    if roles == [settings.app_role]:
        return "app"
    return "users"


def app_role_search_settings(settings: Settings) -> tuple[dict[str, str],
                                                          tuple[Requirement, ...]]:
    """The session settings the app role gets (name -> value), and what the server needs
    for them. The model declares them; the benchmark sets the same ones for its session."""
    values: dict[str, str] = {}
    requires: list[Requirement] = []
    method = settings.vector_index.method
    if method == "hnsw":
        values["hnsw.ef_search"] = str(settings.hnsw_ef_search)
    if method == "ivfflat":
        # pgvector's default of 1 probe reads one list of sqrt(rows): recall collapses.
        values["ivfflat.probes"] = str(ivfflat_probes(settings.vector_index.lists))
    # pgvector prices a filtered HNSW scan by random page reads: at PostgreSQL's default
    # of 4 the planner never picks it for a large user (docs/performance.md).
    values["random_page_cost"] = APP_RANDOM_PAGE_COST
    # The best plan depends on the user (btree and sort for small, HNSW for large): a
    # generic plan made for one would serve every user of mem0's prepared statement.
    values["plan_cache_mode"] = "force_custom_plan"
    if method in ("hnsw", "ivfflat") and settings.iterative_scan != "off":
        values[f"{method}.iterative_scan"] = settings.iterative_scan
        requires.append(Requirement(
            "vector", "0.8.0",
            f"iterativeScan is {settings.iterative_scan!r}, which needs pgvector 0.8.0 or "
            "later: upgrade pgvector, or set iterativeScan to off"))
    if settings.extension_schema != "public":
        # mem0 casts with `%s::vector` unqualified: the type's schema must be on the path.
        values["search_path"] = f"public, {quote_ident(settings.extension_schema)}"
    return values, tuple(requires)


APP_RANDOM_PAGE_COST = "1.1"  # data in memory or on SSD, as PostgreSQL's docs suggest


def ivfflat_probes(lists: int) -> int:
    """Lists an IVFFlat search reads: sqrt(lists), pgvector's advice for a start."""
    return max(1, math.isqrt(lists - 1) + 1) if lists > 1 else 1


def role_setting_line(role: str, name: str, value: str) -> str:
    """The canonical `ALTER ROLE ... SET` line, as the model writes it and introspection
    rebuilds it. search_path is a list: written bare, as `SET search_path TO a, b` stores it
    (a quoted string would become one schema name)."""
    shown = value if name == "search_path" else quote_literal(value)
    return f"ALTER ROLE {quote_ident(role)} SET {name} TO {shown};"


def _vector_column(settings: Settings, column: str) -> str:
    # vector_l2_ops is pgvector's default operator class for ivfflat (hnsw has none, and no
    # halfvec class is a default), and the catalog omits a default class when it prints an
    # index, so the canonical form does.
    column_type = settings.vector_column_type
    if settings.vector_index.method == "ivfflat" and settings.vector_index.measure == "l2" \
            and column_type == "vector":
        return column
    opclass = settings.vector_index.opclass_for(column_type)
    return f"{column} {qualified(settings.extension_schema, opclass)}"


def _vector_index(b: _Builder, table: ObjectSpec, column: str) -> None:
    index = b.settings.vector_index
    if index.method == "none":
        return
    if index.method == "hnsw":
        options = f"m='{index.m}', ef_construction='{index.ef_construction}'"
    else:
        options = f"lists='{index.lists}'"
    half = (f"; over halfvec({b.settings.dimensions}), since pgvector indexes at most 2000 "
            "dimensions of type vector" if b.settings.vector_column_type == "halfvec" else "")
    b.index(table, f"{table.name}_vector_idx",
            f"{index.method} ({_vector_column(b.settings, column)}) WITH ({options})",
            f"{index.method} chosen by {index.reason}; measure {index.measure}{half}",
            requires=vector_requires(b.settings))


def _python_profile(b: _Builder, extension: ObjectSpec) -> list[tuple[ObjectSpec, str]]:
    """mem0's Python tables, functions, indexes and triggers; returns the tables and their
    nature for access (components.access)."""
    s = b.settings
    collection = s.collection
    vector = vector_type(s)
    half = (f"; the vector column is halfvec({s.dimensions}) (16-bit floats), since pgvector "
            "indexes at most 2000 dimensions of type vector"
            if s.vector_column_type == "halfvec" else "")
    memories = b.table("memories_table", collection, extension, vector_type=vector,
                       pkey=quote_ident(f"{collection}_pkey"),
                       requires=vector_requires(s),
                       comment="mem0's own layout (id, vector, payload) in schema public; "
                               "user_id, agent_id, run_id, org_id generated from the payload; "
                               "times kept by the database" + half)
    # After memories: a dimension change refused there (it holds rows) then stops before
    # the entities table changes, so the two never disagree about the dimensions.
    entities = b.table("memories_table", f"{collection}_entities", memories,
                       vector_type=vector, pkey=quote_ident(f"{collection}_entities_pkey"),
                       requires=vector_requires(s),
                       comment="mem0 2.x's entity store, pre-provisioned so mem0 never "
                               "needs DDL" + half)
    history = b.table("history_table", HISTORY_TABLE, memories,
                      comment="append-only audit, written only by the history trigger")
    relationships = b.table("relationships_table", RELATIONSHIPS_TABLE, memories,
                            memories=memories.qualified_name,
                            comment="the memory graph: directed, typed, weighted edges")

    strip_vector = "" if s.history_includes_vectors else " - 'vector'::text"
    ext = qualified(s.extension_schema, "vector")
    touch = b.function("touch_function", TOUCH_FUNCTION, "", (extension,),
                       "keeps created_at fixed and updated_at current")
    record = b.function("history_function", HISTORY_FUNCTION, "", (history,),
                        "writes memory_history; definer rights, fixed search_path",
                        history=history.qualified_name, strip_vector=strip_vector,
                        ext_schema=quote_ident(s.extension_schema))
    b.function("match_memories_function", MATCH_FUNCTION, f"{ext}, integer, jsonb",
               (memories,), "vector search over RPC (PostgREST/Supabase); invoker rights, "
               "so row-level security applies", vector=ext,
               schema=quote_ident(s.extension_schema), table=memories.qualified_name)
    b.function("neighbours_function", NEIGHBOURS_FUNCTION, "uuid, integer", (relationships,),
               "1- or 2-hop neighbours of a memory with path and strength; stops on cycles",
               relationships=relationships.qualified_name)

    for table in (memories, entities):
        _vector_index(b, table, "vector")
        _policy_column_indexes(b, table)
        for key in ("user_id", "agent_id", "run_id") if table is memories else ("user_id",):
            b.index(table, f"{table.name}_{key}_idx", f"btree (((payload ->> '{key}'::text)))",
                    f"mem0 filters with payload->>'{key}' = %s: this exact expression")
        b.statistics(table, f"{table.name}_user_stats", "dependencies",
                     "user_id, (payload ->> 'user_id'::text)",
                     "user_id is payload->>'user_id': a policy on the column and mem0's filter "
                     "on the expression are one condition, not two independent ones, so a "
                     "bound connection's search is estimated at the user's real row count")
        b.index(table, f"{table.name}_text_lemmatized_idx",
                "gin (to_tsvector('simple'::regconfig, (payload ->> 'text_lemmatized'::text)))",
                "mem0 2.x's keyword search, exactly as it queries")
    b.index(memories, f"{collection}_user_created_idx", "btree (user_id, created_at DESC)",
            "a user's memories newest first (row-level security, dashboards)")
    if s.fts_language:
        b.index(memories, f"{collection}_fts_idx",
                f"gin (to_tsvector('{s.fts_language}'::regconfig, (payload ->> 'data'::text)))",
                f"full-text search of the memory text in {s.fts_language} (ftsLanguage)")
    b.index(history, f"{HISTORY_TABLE}_memory_id_idx", "btree (memory_id, at)",
            "a memory's history in order")
    b.index(history, f"{HISTORY_TABLE}_user_id_idx", "btree (user_id, at)",
            "a user's history in order")
    b.index(relationships, f"{RELATIONSHIPS_TABLE}_target_idx", "btree (target_memory_id)",
            "incoming edges and the cascade on delete; outgoing edges use the unique "
            "(source, target, type) index, so a source-only index would be redundant")
    b.index(relationships, f"{RELATIONSHIPS_TABLE}_type_idx", "btree (relationship_type)",
            "edges of one type")
    b.index(relationships, f"{RELATIONSHIPS_TABLE}_user_id_idx", "btree (user_id)",
            "a user's edges")

    for table in (memories, entities, relationships):
        b.trigger(table, f"{table.name}_touch", "BEFORE UPDATE", touch,
                  "created_at and updated_at are kept by the database")
    b.trigger(memories, f"{collection}_history", "AFTER INSERT OR DELETE OR UPDATE", record,
              "every change of a memory lands in memory_history")

    b.index(entities, f"{entities.name}_user_created_idx", "btree (user_id, created_at DESC)",
            "a user's entities newest first (row-level security)")
    b.index(history, f"{HISTORY_TABLE}_org_id_idx", "btree (org_id, at)",
            "an organisation's history (row-level security in org tenancy)",
            where="(org_id IS NOT NULL)")
    b.index(history, f"{HISTORY_TABLE}_session_idx", "btree (run_id)",
            "a session's history (sessionScope)", where="(run_id IS NOT NULL)")
    b.index(relationships, f"{RELATIONSHIPS_TABLE}_org_id_idx", "btree (org_id)",
            "an organisation's edges (row-level security in org tenancy)",
            where="(org_id IS NOT NULL)")
    b.revoke_execute(record, needed_by=())
    restore = b.function("restore_history_function", RESTORE_HISTORY_FUNCTION, "jsonb",
                         (history,), "restore's way into the history: adds backed-up rows "
                         "whose id is absent; definer rights, fixed search_path",
                         history=history.qualified_name,
                         sequence=qualified(b.schema, f"{HISTORY_TABLE}_id_seq"))
    b.revoke_execute(restore, needed_by=(s.service_role,))
    if s.target == "supabase":
        # Supabase's default privileges hand every new sequence to its API roles; with
        # UPDATE on the history's identity sequence, setval() would break every write.
        sequence = f"{HISTORY_TABLE}_id_seq"
        for api_role in (*SUPABASE_END_USER_ROLES, s.service_role):
            b.grant("", f"SEQUENCE {qualified(b.schema, sequence)}", sequence, api_role,
                    history, "only the history trigger draws ids, as the owner")
    return [(memories, MEMORY), (entities, MEMORY), (history, HISTORY),
            (relationships, GRAPH)]


def _typescript_profile(b: _Builder, extension: ObjectSpec) -> list[tuple[ObjectSpec, str]]:
    """The TypeScript SDK's tables; returns them with their nature for access."""
    s = b.settings
    vector = vector_type(s)
    memories = b.table("ts_memories_table", s.collection, extension, vector_type=vector,
                       requires=vector_requires(s),
                       comment="the TypeScript SDK's layout (id text, embedding, metadata); "
                               "userId, agentId, runId, orgId generated from the metadata")
    migrations = b.table("ts_migrations_table", TS_MIGRATIONS_TABLE, extension,
                         comment="the TypeScript SDK's migration marker table")
    history = b.table("ts_history_table", HISTORY_TABLE, extension,
                      comment="the TypeScript SDK's history (historyStore: supabase); "
                              "written by the SDK")
    ext = qualified(s.extension_schema, "vector")
    touch = b.function("touch_function", TOUCH_FUNCTION, "", (extension,),
                       "keeps created_at fixed and updated_at current")
    b.function("ts_match_vectors_function", TS_MATCH_FUNCTION, f"{ext}, integer, jsonb",
               (memories,), "the TypeScript SDK's search function; invoker rights",
               vector=ext, schema=quote_ident(s.extension_schema),
               table=memories.qualified_name)
    _vector_index(b, memories, "embedding")
    b.index(memories, f"{s.collection}_metadata_idx", "gin (metadata jsonb_path_ops)",
            "the SDK filters with metadata @> filter")
    b.index(memories, f"{s.collection}_user_created_idx", "btree (user_id, created_at DESC)",
            "a user's memories newest first (row-level security, dashboards)")
    b.index(history, f"{HISTORY_TABLE}_memory_id_idx", "btree (memory_id)",
            "the SDK reads history by memory_id")
    b.trigger(memories, f"{s.collection}_touch", "BEFORE UPDATE", touch,
              "created_at and updated_at are kept by the database")
    _policy_column_indexes(b, memories)
    return [(memories, MEMORY), (migrations, BACKEND), (history, BACKEND)]


def _snapshots(b: _Builder, extension: ObjectSpec, live: dict[str, ObjectSpec]) -> ObjectSpec:
    """Schema mem0_backup: the snapshot tables (the live tables' written columns, per
    snapshot id) and the function that takes one. Declared whether or not the job is
    scheduled: a snapshot can be taken by hand before a risky change, and turning the job
    off must not drop the snapshots already kept. Returns the function."""
    s = b.settings
    schema = b.schema_(BACKUP_SCHEMA, "in-database snapshots of the memory tables; no end "
                                      "user reaches this schema")
    snapshots = b.table("snapshots_table", f"{s.collection}_snapshots", schema,
                        "one row per snapshot: when, and how many rows it holds",
                        in_schema=BACKUP_SCHEMA,
                        pkey=quote_ident(f"{s.collection}_snapshots_pkey"))
    copies = {}
    for name, template in ((s.collection, "snapshot_memories_table"),
                           (f"{s.collection}_entities", "snapshot_memories_table"),
                           (RELATIONSHIPS_TABLE, "snapshot_relationships_table")):
        vectors = template == "snapshot_memories_table"
        values = {"vector_type": vector_type(s)} if vectors else {}
        copies[name] = b.table(template, name, (snapshots, extension),
                               f"{live[name].qualified_name} as each snapshot copied it",
                               in_schema=BACKUP_SCHEMA, pkey=quote_ident(f"{name}_pkey"),
                               requires=vector_requires(s) if vectors else (),
                               fkey=quote_ident(f"{name}_snapshot_id_fkey"),
                               snapshots=snapshots.qualified_name, **values)
    b.grant("USAGE", f"SCHEMA {quote_ident(BACKUP_SCHEMA)}", BACKUP_SCHEMA, s.service_role,
            schema, "restore --snapshot reads the snapshots as the service role", schema="")
    for table in (snapshots, *copies.values()):
        b.row_security(table, f"access to {table.qualified_name} (row-level security "
                              "enabled and forced, no policy): only roles that bypass "
                              f"row-level security; {s.service_role} may read it")
        b.grant("SELECT", f"TABLE {table.qualified_name}", table.name, s.service_role,
                table, "restore --snapshot reads the snapshots", schema=BACKUP_SCHEMA)
    function = b.function(
        "snapshot_function", SNAPSHOT_FUNCTION, "interval",
        (snapshots, *copies.values(), *live.values()),
        "copies memories, entities and relationships as one snapshot and purges those "
        "older than `keep`; invoker rights (the caller must bypass row-level security)",
        in_schema=BACKUP_SCHEMA, snapshots=snapshots.qualified_name,
        backup_memories=copies[s.collection].qualified_name,
        backup_entities=copies[f"{s.collection}_entities"].qualified_name,
        backup_relationships=copies[RELATIONSHIPS_TABLE].qualified_name,
        memories=live[s.collection].qualified_name,
        entities=live[f"{s.collection}_entities"].qualified_name,
        relationships=live[RELATIONSHIPS_TABLE].qualified_name)
    b.revoke_execute(function, needed_by=())
    return function


def _jobs(b: _Builder, live: dict[str, ObjectSpec], snapshot: ObjectSpec) -> None:
    """The pg_cron jobs the stack schedules. Each command is plain SQL a reviewer can read
    in cron.job; they run as the role that scheduled them (the deploying role, which
    preflight checks bypasses row-level security)."""
    s, jobs = b.settings, b.settings.jobs
    memories = live[s.collection]
    history = live[HISTORY_TABLE]
    if jobs.snapshot_schedule:
        b.cron_job("snapshot",
                   f"SELECT {snapshot.qualified_name}("
                   f"'{jobs.snapshot_retention_days} days'::interval)",
                   (snapshot,), f"snapshot into {BACKUP_SCHEMA}, keeping "
                   f"{jobs.snapshot_retention_days} days (snapshotSchedule)")
    if jobs.expired_purge_schedule:
        # mem0 hides a memory once its YYYY-MM-DD expiration_date is before today in UTC;
        # ISO dates compare as text (in the C collation), so no cast can fail on a bad value.
        b.cron_job("expired-purge",
                   f"DELETE FROM {memories.qualified_name} WHERE (payload ->> "
                   "'expiration_date') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' AND (payload ->> "
                   "'expiration_date') COLLATE \"C\" < to_char(now() AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD')",
                   (memories,), "deletes the memories mem0 treats as expired "
                   "(expiredPurgeSchedule)")
    if jobs.session_cleanup_schedule:
        hours = jobs.session_max_age_hours
        b.cron_job("session-cleanup",
                   f"DELETE FROM {memories.qualified_name} WHERE run_id IN (SELECT run_id "
                   f"FROM {memories.qualified_name} WHERE run_id IS NOT NULL GROUP BY run_id "
                   f"HAVING max(updated_at) < now() - '{hours} hours'::interval)",
                   (memories,), f"deletes the memories of sessions idle for {hours} hours "
                   "(sessionCleanupSchedule)")
    if jobs.history_retention_schedule:
        days = jobs.history_retention_days
        b.cron_job("history-retention",
                   f"DELETE FROM {history.qualified_name} WHERE at < now() - "
                   f"'{days} days'::interval",
                   (history,), f"deletes history older than {days} days "
                   "(historyRetentionSchedule)")
    if jobs.analyze_schedule:
        tables = ", ".join(t.qualified_name for t in live.values())
        b.cron_job("analyze", f"ANALYZE {tables}",
                   tuple(live.values()), "fresh planner statistics (analyzeSchedule)")


def _policy_column_indexes(b: _Builder, table: ObjectSpec) -> None:
    """An index for each column a policy may read (user_id has one already). Partial, so
    they cost nearly nothing while their tenancy option is off, and switching it on changes
    only policies."""
    b.index(table, f"{table.name}_org_id_idx", "btree (org_id)",
            "rows of an organisation (row-level security in org tenancy)",
            where="(org_id IS NOT NULL)")
    b.index(table, f"{table.name}_shared_agent_idx", "btree (agent_id)",
            "shared agent knowledge (sharedAgentKnowledge)", where="(user_id IS NULL)")
    b.index(table, f"{table.name}_session_idx", "btree (run_id)",
            "a session's rows (sessionScope)", where="(run_id IS NOT NULL)")


def _project_roles(b: _Builder) -> ObjectSpec:
    """The roles the stack creates; returns the app role. On supabase only the app role:
    Supabase's own roles exist already."""
    s = b.settings
    if s.target != "supabase":
        b.role(s.owner_role, login=False, bypass_rls=False,
               comment="owns every object; cannot log in; no one else may alter them")
    app = b.role(s.app_role, login=True, bypass_rls=False,
                 comment="the role mem0 connects as: rows only, under row-level security; "
                         "its password is set from the secret appRolePassword")
    if s.target != "supabase":
        assert s.readonly_role is not None
        b.role(s.readonly_role, login=True, bypass_rls=False,
               comment="dashboards and analysts: SELECT, under row-level security")
        b.role(s.service_role, login=True, bypass_rls=True,
               comment="backup, restore and migration: every row, no DDL")
    return app


def _identity_functions(b: _Builder, extension: ObjectSpec) -> tuple[ObjectSpec, ...]:
    s = b.settings
    if s.target == "supabase":
        subject, source = "(auth.uid())::text", "Supabase's auth.uid(), else mem0.user_id"
    else:
        subject = ("NULLIF(pg_catalog.current_setting('request.jwt.claims', true), "
                   "'')::jsonb ->> 'sub'")
        source = "a PostgREST JWT's sub claim, else mem0.user_id"
    functions = [b.function("user_id_function", USER_ID_FUNCTION, "", (extension,),
                            "the caller's user id for row-level security; invoker rights",
                            jwt_subject=subject, source=source)]
    if needs_run_id(s):
        functions.append(b.function("run_id_function", RUN_ID_FUNCTION, "", (extension,),
                                    "the caller's session for row-level security"))
    return tuple(functions)


def _membership(b: _Builder, user_id: ObjectSpec, after: ObjectSpec
                ) -> tuple[ObjectSpec, ObjectSpec]:
    members = b.table("membership_table", MEMBERSHIP_TABLE, after,
                      comment="who belongs to which organisation (org tenancy); written "
                              "by the service role")
    b.index(members, f"{MEMBERSHIP_TABLE}_user_id_idx", "btree (user_id)",
            "a user's organisations: the lookup every org policy makes")
    org_ids = b.function("org_ids_function", ORG_IDS_FUNCTION, "", (members, user_id),
                         "the caller's organisations; definer rights, fixed search_path",
                         membership=members.qualified_name,
                         user_id=user_id.qualified_name)
    return members, org_ids


def _security(b: _Builder, tables: list[tuple[ObjectSpec, str]], extension: ObjectSpec,
              memories: ObjectSpec) -> None:
    """Identity functions, membership, grants, row-level security and policies."""
    s = b.settings
    functions = _identity_functions(b, extension)
    if needs_org_ids(s):
        members, org_ids = _membership(b, functions[0], extension)
        tables = [*tables, (members, MEMBERSHIP)]
        functions = (*functions, org_ids)
    accesses = table_access(s, b.schema, [(t.name, nature) for t, nature in tables],
                            memories.qualified_name)
    for (table, _nature), access in zip(tables, accesses, strict=True):
        for role, rules in access.rules.items():
            if role == s.owner_role:
                continue  # owns it
            privileges = ", ".join(c for c in sorted(COMMANDS) if rules[c].privilege)
            b.grant(privileges, f"TABLE {table.qualified_name}", table.name, role, table,
                    "; ".join(f"{c} {rules[c].words}" for c in COMMANDS if rules[c].privilege)
                    or "no privilege at all")
        b.row_security(table, access.matrix(b.schema))
    if needs_org_ids(s):
        users = [role for role, rules in accesses[0].rules.items()
                 if role != s.owner_role and any(r.policy for r in rules.values())]
        b.revoke_execute(org_ids, needed_by=tuple(users))
    for (table, _nature), access in zip(tables, accesses, strict=True):
        b.policies(table, access, functions, after=())


def build_model(settings: Settings, schema: str = "public",
                owned: bool = True) -> list[ObjectSpec]:
    """Every object the stack declares, in dependency order (dependencies first).

    mem0 only reads `public` (it has no schema option); another `schema` builds the same
    tables, indexes, functions, triggers and policies elsewhere, for a benchmark's scratch
    copy, which passes `owned=False`: no ownership lines, so no project role is needed.
    """
    b = _Builder(settings, schema, owned)
    extension = b.extension()
    app = _project_roles(b)
    if settings.extension_schema != "public":
        b.grant("USAGE", f"SCHEMA {quote_ident(settings.extension_schema)}",
                settings.extension_schema, app.name, extension,
                "the app role must resolve the vector type", schema="")
    if settings.target == "supabase":
        b.grant("USAGE", "SCHEMA auth", "auth", app.name, None,
                "mem0_user_id() calls auth.uid(), which the app role's policies evaluate",
                schema="")
    if owned and settings.owner_role in b.roles:
        owner = b.roles[settings.owner_role]
        b.grant("CREATE, USAGE", f"SCHEMA {quote_ident(schema)}", schema, owner.name, None,
                "the owner creates and owns the project's objects here", schema="")
        b.default_privileges(owner)
    if settings.client_profile == "typescript":
        tables = _typescript_profile(b, extension)
    else:
        tables = _python_profile(b, extension)
    _security(b, tables, extension, tables[0][0])
    b.search_settings(app, extension)
    if owned and settings.client_profile == "python":
        live = {t.name: t for t, _nature in tables}
        _jobs(b, live, _snapshots(b, extension, live))
    specs = sorted(b.specs, key=lambda s: FAMILIES.index(s.family))  # stable: keeps order
    _check_order(specs)
    return specs


def _check_order(specs: list[ObjectSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.key in seen:
            raise ValueError(f"model declares {spec.key} twice")
        missing = [d for d in spec.depends_on if d not in seen]
        if missing:
            raise ValueError(f"model orders {spec.key} before its dependencies {missing}")
        seen.add(spec.key)
