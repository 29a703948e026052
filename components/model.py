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
from typing import Any

from components.access import (
    ADMIN_ORG_IDS_FUNCTION,
    AGENT_ID_FUNCTION,
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
    needs_admin_org_ids,
    needs_agent_id,
    needs_org_ids,
    needs_run_id,
    owner_bypasses_rls,
    owner_words,
    table_access,
)
from components.erasure import ERASING, KEEP_SDK, Erase, Erasure, forget_statements
from components.identifiers import qualified, quote_ident
from components.kinds import Family, Kind, kind_spec
from components.kinds.cron_job import CronJobFields
from components.kinds.cron_job import cron_job_ddl as cron_job_ddl  # re-exported
from components.kinds.cron_job import job_setting as job_setting  # re-exported
from components.kinds.cron_job import parse_cron_job_ddl as parse_cron_job_ddl  # re-exported
from components.kinds.default_privileges import DefaultPrivilegesFields
from components.kinds.extension import ExtensionFields
from components.kinds.function import FunctionFields
from components.kinds.grant import GrantFields
from components.kinds.index import IndexFields
from components.kinds.policy import PolicyFields
from components.kinds.policy import policy_ddl as policy_ddl  # re-exported
from components.kinds.role import RoleFields
from components.kinds.role_settings import RoleSettingsFields
from components.kinds.row_security import RowSecurityFields
from components.kinds.schema import SchemaFields
from components.kinds.statistics import StatisticsFields
from components.kinds.table import table_fields
from components.kinds.trigger import TriggerFields
from components.mem0 import DEFAULT_SEARCH_LIMIT
from components.settings import (
    HALFVEC_PGVECTOR,
    JOB_SETTINGS,
    SUPABASE_END_USER_ROLES,
    Settings,
)
from components.templates import render_template

HISTORY_TABLE = "memory_history"
RELATIONSHIPS_TABLE = "memory_relationships"
TS_MIGRATIONS_TABLE = "memory_migrations"
MATCH_FUNCTION = "match_memories"
TS_MATCH_FUNCTION = "match_vectors"
NEIGHBOURS_FUNCTION = "memory_neighbours"
TOUCH_FUNCTION = "mem0_touch_updated_at"
HISTORY_FUNCTION = "mem0_record_history"
RESTORE_HISTORY_FUNCTION = "mem0_restore_history"
PROMOTE_FUNCTION = "mem0_promote_session"
BACKUP_SCHEMA = "mem0_backup"
SNAPSHOT_FUNCTION = "take_snapshot"
ERASURE_SCHEMA = "mem0_erasure"
ERASURES_TABLE = "erasures"
SALT_TABLE = "salt"
FORGET_FUNCTION = "forget"
ERASED_FUNCTION = "erased"
MIGRATION_SCHEMA = "mem0_migration"
# mem0_migration's tables (components/migrate/store.py): name -> (template, privileges of the
# service role, what it holds).
# What forget() removes from them: a person's staged records and pre-images (payloads).
MIGRATION_ERASURE = {
    "staged": Erasure(Erase.PAYLOAD), "preimages": Erasure(Erase.PAYLOAD),
    "batches": Erasure(Erase.KEEP, "batch numbers and counts",
                       unrelated=frozenset({"run_id"})),  # the migration run's id
    "history_marks": Erasure(Erase.KEEP, "ids of history rows",
                             unrelated=frozenset({"run_id"})),
}
MIGRATION_TABLES = {
    "runs": ("migration_runs_table", "INSERT, SELECT, UPDATE",
             "one row per `migrate import`: source, target, options, state, progress"),
    "staged": ("migration_staged_table", "INSERT, SELECT",
               "the run's records as staged by binary COPY, in source order (seq)"),
    "batches": ("migration_batches_table", "INSERT, SELECT",
                "the checkpoint: one row per applied batch, written in the batch's "
                "transaction"),
    "preimages": ("migration_preimages_table", "INSERT, SELECT",
                  "each row a run wrote, as it was before (rollback restores it)"),
    "history_marks": ("migration_history_marks_table", "INSERT, SELECT",
                      "the memory_history rows a run (or its rollback) caused"),
}


def version_tuple(version: str) -> tuple[int, ...]:
    """'0.8.0' -> (0, 8, 0), comparable; '16.4 (Debian ...)' -> (16, 4)."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split(" ", 1)[0]))


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
    """One SQL object the stack declares: its identity, its kind's structured `fields`
    (components.kinds) and the canonical DDL rendered from them (what a preview diffs)."""

    kind: Kind
    schema: str  # "" for cluster-wide objects (roles, role settings)
    name: str
    family: Family  # which component owns it
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
    # The kind's fields (a frozen dataclass of components.kinds.<kind>); None in a spec
    # made by hand, whose apply derives what it needs from the other inputs.
    fields: Any = None
    # A table's rows of a person, and how forget finds them (components.erasure).
    erase: Erasure | None = None

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

    def object(self, kind: Kind, fields: Any, schema: str, name: str, ddl: str, drop_sql: str,
               **rest: Any) -> ObjectSpec:
        """Add a spec of `kind`, in the family its kind belongs to."""
        return self.add(ObjectSpec(kind=kind, schema=schema, name=name,
                                   family=kind_spec(kind).family, ddl=ddl, drop_sql=drop_sql,
                                   fields=fields, **rest))

    # --- object kinds ----------------------------------------------------------------------

    def extension(self) -> ObjectSpec:
        schema = self.settings.extension_schema
        fields = ExtensionFields("vector", schema)
        return self.object(
            Kind.EXTENSION, fields, schema, fields.name, fields.ddl(), fields.drop_sql(),
            comment=f"pgvector, in schema {schema}"
            + (" (where Supabase keeps extensions)" if schema == "extensions" else ""))

    def role(self, name: str, login: bool, bypass_rls: bool, comment: str) -> ObjectSpec:
        fields = RoleFields(name, login, bypass_rls)
        spec = self.object(Kind.ROLE, fields, "", name, fields.ddl(), fields.drop_sql(),
                           comment=comment)
        self.roles[name] = spec
        return spec

    def _owner(self) -> tuple[str, tuple[str, ...]]:
        """The owner role as SQL ("" when objects get no ownership line), and its key when
        the model makes it."""
        if self.owner is None:
            return "", ()
        owner_spec = self.roles.get(self.owner)
        return quote_ident(self.owner), (owner_spec.key,) if owner_spec else ()

    def schema_(self, name: str, comment: str) -> ObjectSpec:
        assert self.owner is not None, "only an owned stack declares schemas"
        owner = self.roles.get(self.owner)
        fields = SchemaFields(name, self.owner)
        return self.object(Kind.SCHEMA, fields, "", name, fields.ddl(), fields.drop_sql(),
                           depends_on=(owner.key,) if owner else (), comment=comment)

    def table(self, template: str, name: str, after: ObjectSpec | tuple[ObjectSpec, ...],
              comment: str, *, erase: Erasure, in_schema: str | None = None,
              requires: tuple[Requirement, ...] = (), **values: str) -> ObjectSpec:
        """A table; `erase` says how forget finds a person's rows in it (or why none)."""
        schema = in_schema or self.schema
        owner, owner_key = self._owner()
        # Tables are written as SQL templates in canonical form: their fields are read
        # from the template (which must render back to the same text) and its ownership.
        fields = table_fields(
            render_template(template, table=qualified(schema, name), **values), owner)
        return self.object(
            Kind.TABLE, fields, schema, name, fields.ddl(), fields.drop_sql(),
            depends_on=(*(a.key for a in (after if isinstance(after, tuple) else (after,))),
                        *owner_key), data_bearing=True, requires=requires, comment=comment,
            erase=erase)

    def index(self, table: ObjectSpec, name: str, using: str, comment: str,
              unique: bool = False, where: str = "", parameters: str = "",
              requires: tuple[Requirement, ...] = ()) -> ObjectSpec:
        fields = IndexFields(name, table.qualified_name, using, unique, parameters, where)
        return self.object(
            Kind.INDEX, fields, self.schema, name, fields.ddl(), fields.drop_sql(self.schema),
            table=table.name, depends_on=(table.key,), requires=requires, comment=comment)

    def statistics(self, table: ObjectSpec, name: str, kinds: str, on: str,
                   comment: str) -> ObjectSpec:
        """Extended statistics, as pg_get_statisticsobjdef prints them (ANALYZE fills them)."""
        fields = StatisticsFields(self.schema, name, kinds, on, table.qualified_name)
        return self.object(Kind.STATISTICS, fields, self.schema, name, fields.ddl(),
                           fields.drop_sql(), table=table.name, depends_on=(table.key,),
                           comment=comment)

    def function(self, template: str, name: str, arguments: str, after: tuple[ObjectSpec, ...],
                 comment: str, in_schema: str | None = None, **values: str) -> ObjectSpec:
        schema = in_schema or self.schema
        owner, owner_key = self._owner()
        fields = FunctionFields(schema, name, arguments, owner)
        definition = render_template(template, function=qualified(schema, name), **values)
        return self.object(
            Kind.FUNCTION, fields, schema, name, fields.ddl(definition), fields.drop_sql(),
            arguments=arguments, depends_on=(*(s.key for s in after), *owner_key),
            comment=comment)

    def trigger(self, table: ObjectSpec, name: str, timing: str, function: ObjectSpec,
                comment: str) -> ObjectSpec:
        fields = TriggerFields(name, timing, table.qualified_name, function.qualified_name)
        return self.object(Kind.TRIGGER, fields, self.schema, name, fields.ddl(),
                           fields.drop_sql(), table=table.name,
                           depends_on=(table.key, function.key), comment=comment)

    def grant(self, privileges: str, on: str, object_name: str, role: str,
              after: ObjectSpec | None, comment: str, schema: str | None = None) -> ObjectSpec:
        """What `role` holds on `on`: exactly `privileges`; none at all when empty (the
        role's privileges are revoked, say those Supabase's default privileges gave it)."""
        role_spec = self.roles.get(role)
        fields = GrantFields(privileges, on, role)
        return self.object(
            Kind.GRANT, fields, schema if schema is not None else self.schema,
            f"{object_name}-to-{role}", fields.ddl(), fields.drop_sql(), role=role, on=on,
            depends_on=((role_spec.key,) if role_spec else ()) + ((after.key,) if after else ()),
            comment=comment)

    def row_security(self, table: ObjectSpec, notes: str) -> ObjectSpec:
        fields = RowSecurityFields(table.qualified_name, enabled=True, forced=True)
        return self.object(
            Kind.ROW_SECURITY, fields, table.schema, table.name, fields.ddl(),
            fields.drop_sql(), table=table.name, depends_on=(table.key,), notes=notes,
            comment="every row is checked, for the owner too"
            + (" unless it bypasses row-level security (Supabase's postgres does)"
               if owner_bypasses_rls(self.settings) else "")
            + "; the matrix says by which rule")

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
                fields = PolicyFields(name, table.qualified_name, command, tuple(roles),
                                      using or "", check or "")
                self.object(
                    Kind.POLICY, fields, self.schema, name, fields.ddl(), fields.drop_sql(),
                    table=table.name,
                    depends_on=(table.key, *used,
                                *(self.roles[r].key for r in sorted(roles) if r in self.roles),
                                *(a.key for a in after)),
                    comment=f"{command} for {', '.join(sorted(roles))}: "
                            f"{access.rules[roles[0]][command].words}")

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

    def erase_policies(self, table: ObjectSpec, commands: tuple[str, ...]) -> None:
        """The owner's policies on a table outside access.py's matrix: `commands` on every
        row, only while mem0_erasure.forget() runs (components.erasure.ERASING)."""
        for command in commands:
            self.owner_policy(table, command, using=ERASING,
                              check=ERASING if command == "UPDATE" else "")

    def owner_policy(self, table: ObjectSpec, command: str, using: str = "",
                     check: str = "") -> ObjectSpec:
        """A policy for the owner alone (who cannot log in: only definer-rights
        functions act as it). On supabase the owner, postgres, bypasses row-level security:
        the policy binds only a member of it without BYPASSRLS."""
        assert self.owner is not None
        owner_key = (self.roles[self.owner].key,) if self.owner in self.roles else ()
        fields = PolicyFields(f"{table.name}_{command.lower()}_owner", table.qualified_name,
                              command, (self.owner,), using, check)
        when = " while forget() runs" if ERASING in (using, check) else ""
        return self.object(Kind.POLICY, fields, table.schema, fields.name, fields.ddl(),
                           fields.drop_sql(), table=table.name,
                           depends_on=(table.key, *owner_key),
                           comment=f"{command} for {self.owner}{when}"
                           + ("; postgres bypasses row-level security, so it binds only a "
                              "member of it without BYPASSRLS"
                              if owner_bypasses_rls(self.settings) else ""))

    def default_privileges(self, owner: ObjectSpec) -> ObjectSpec:
        fields = DefaultPrivilegesFields(owner.name, public_executes=False)
        return self.object(
            Kind.DEFAULT_PRIVILEGES, fields, "", f"{owner.name}-functions", fields.ddl(),
            fields.drop_sql(), role=owner.name, depends_on=(owner.key,),
            comment="functions the owner creates later are nobody's to call until granted")

    def cron_job(self, job: str, command: str, after: tuple[ObjectSpec, ...],
                 comment: str) -> ObjectSpec:
        """A job of JOB_SETTINGS, on the schedule its setting gives."""
        name = cron_job_name(self.settings, job)
        schedule = self.settings.jobs.schedule(job)
        assert schedule, f"{JOB_SETTINGS[job]} schedules no job"
        fields = CronJobFields(name, schedule, command)
        return self.object(Kind.CRON_JOB, fields, "", name, fields.ddl(), fields.drop_sql(),
                           depends_on=tuple(a.key for a in after), comment=comment)

    def search_settings(self, role: ObjectSpec, extension: ObjectSpec) -> ObjectSpec | None:
        values, requires = app_role_search_settings(self.settings)
        if not values:
            return None
        fields = RoleSettingsFields(role.name, tuple(sorted(values.items())))
        return self.object(
            Kind.ROLE_SETTINGS, fields, "", f"{role.name}-settings", fields.ddl(),
            fields.drop_sql(), role=role.name, depends_on=(role.key, extension.key),
            requires=requires,
            comment="search settings for the sessions of the app role: ef_search covers "
                    f"mem0's LIMIT {DEFAULT_SEARCH_LIMIT} (pgvector's default 40 silently "
                    "returns 40 rows); iterative scans keep filtered searches full")


def cron_job_name(settings: Settings, job: str) -> str:
    """A job's name in cron.job: unique per stack and collection (pg_cron keys jobs by name
    and user, across every database it serves)."""
    return f"mem0:{settings.stack}:{settings.collection}:{job}"


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
        parameters = f"m='{index.m}', ef_construction='{index.ef_construction}'"
    else:
        parameters = f"lists='{index.lists}'"
    half = (f"; over halfvec({b.settings.dimensions}), since pgvector indexes at most 2000 "
            "dimensions of type vector" if b.settings.vector_column_type == "halfvec" else "")
    b.index(table, f"{table.name}_vector_idx",
            f"{index.method} ({_vector_column(b.settings, column)})",
            f"{index.method} chosen by {index.reason}; measure {index.measure}{half}",
            parameters=parameters, requires=vector_requires(b.settings))


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
                       pkey=quote_ident(f"{collection}_pkey"), erase=Erasure(Erase.PAYLOAD),
                       requires=vector_requires(s),
                       comment="mem0's own layout (id, vector, payload) in schema public; "
                               "user_id, agent_id, run_id, org_id generated from the payload; "
                               "times kept by the database" + half)
    # After memories: a dimension change refused there (it holds rows) then stops before
    # the entities table changes, so the two never disagree about the dimensions.
    entities = b.table("memories_table", f"{collection}_entities", memories,
                       vector_type=vector, pkey=quote_ident(f"{collection}_entities_pkey"),
                       erase=Erasure(Erase.PAYLOAD),
                       requires=vector_requires(s),
                       comment="mem0 2.x's entity store, pre-provisioned so mem0 never "
                               "needs DDL" + half)
    history = b.table("history_table", HISTORY_TABLE, memories, erase=Erasure(Erase.HISTORY),
                      comment="append-only audit, written only by the history trigger")
    relationships = b.table("relationships_table", RELATIONSHIPS_TABLE, memories,
                            erase=Erasure(Erase.EDGES),
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
    b.index(memories, f"{collection}_user_agent_idx",
            "btree (((payload ->> 'user_id'::text)), ((payload ->> 'agent_id'::text)))",
            "mem0's agent-scoped filters, user_id and agent_id, exactly as it writes them: "
            "get_all reads one pair's rows in index order (scripts/measure_agent_index.py)")
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
                       erase=KEEP_SDK,
                       requires=vector_requires(s),
                       comment="the TypeScript SDK's layout (id text, embedding, metadata); "
                               "userId, agentId, runId, orgId generated from the metadata")
    migrations = b.table("ts_migrations_table", TS_MIGRATIONS_TABLE, extension, erase=KEEP_SDK,
                         comment="the TypeScript SDK's migration marker table")
    history = b.table("ts_history_table", HISTORY_TABLE, extension, erase=KEEP_SDK,
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
                        in_schema=BACKUP_SCHEMA, erase=Erasure(
                            Erase.KEEP, "times and counts (forget lowers the counts)"),
                        pkey=quote_ident(f"{s.collection}_snapshots_pkey"))
    copies = {}
    for name, template, count in ((s.collection, "snapshot_memories_table", "memories"),
                                  (f"{s.collection}_entities", "snapshot_memories_table",
                                   "entities"),
                                  (RELATIONSHIPS_TABLE, "snapshot_relationships_table",
                                   "relationships")):
        vectors = template == "snapshot_memories_table"
        values = {"vector_type": vector_type(s)} if vectors else {}
        how = Erase.PAYLOAD if vectors else Erase.EDGES
        copies[name] = b.table(template, name, (snapshots, extension),
                               f"{live[name].qualified_name} as each snapshot copied it",
                               erase=Erasure(how, counted_in=(snapshots.qualified_name, count)),
                               in_schema=BACKUP_SCHEMA, pkey=quote_ident(f"{name}_pkey"),
                               requires=vector_requires(s) if vectors else (),
                               fkey=quote_ident(f"{name}_snapshot_id_fkey"),
                               snapshots=snapshots.qualified_name, **values)
    b.grant("USAGE", f"SCHEMA {quote_ident(BACKUP_SCHEMA)}", BACKUP_SCHEMA, s.service_role,
            schema, "restore --snapshot reads the snapshots as the service role", schema="")
    for table in (snapshots, *copies.values()):
        b.row_security(table, f"access to {table.qualified_name} (row-level security "
                              "enabled and forced): only roles that bypass row-level "
                              f"security; {s.service_role} may read it; "
                              + owner_words(s, f"the owner only inside {ERASURE_SCHEMA}."
                                               f"{FORGET_FUNCTION}()"))
        b.erase_policies(table, ("SELECT", "UPDATE") if table is snapshots
                         else ("SELECT", "DELETE"))
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


def _erasure(b: _Builder) -> None:
    """Schema mem0_erasure: the erasure records, the salt their hashes use, forget() (a
    person's rows out of every table the model declares, by each table's `erase` rule)
    and erased() (which ids of a backup were erased). Both functions have definer rights;
    only the service role may call them, and only the owner reads the salt."""
    s = b.settings
    tables = [t for t in b.specs if t.kind == Kind.TABLE]
    schema = b.schema_(ERASURE_SCHEMA, "records of erased people (no content) and the salt "
                                       "of their hashes; no end user reaches this schema")
    salt = b.table("erasure_salt_table", SALT_TABLE, schema,
                   "one row: this database's secret salt for the erasure records' hashes; "
                   "only the owner reads it", in_schema=ERASURE_SCHEMA,
                   erase=Erasure(Erase.KEEP, "the salt"), pkey=quote_ident(f"{SALT_TABLE}_pkey"),
                   one_row=quote_ident(f"{SALT_TABLE}_one_row"))
    records = b.table("erasures_table", ERASURES_TABLE, schema,
                      "one row per erasure: kind, when, by whom, rows removed per table and "
                      "the id's salted hash; never the id or a text",
                      in_schema=ERASURE_SCHEMA,
                      erase=Erasure(Erase.KEEP, "kinds, times, counts and salted hashes"),
                      pkey=quote_ident(f"{ERASURES_TABLE}_pkey"),
                      kind_check=quote_ident(f"{ERASURES_TABLE}_kind_check"))
    b.grant("USAGE", f"SCHEMA {quote_ident(ERASURE_SCHEMA)}", ERASURE_SCHEMA, s.service_role,
            schema, "forget and restore call the functions; the records are readable",
            schema="")
    b.row_security(salt, f"access to {salt.qualified_name} (row-level security enabled and "
                         "forced): no role holds a privilege; the owner reads it and forget() "
                         "writes it")
    b.grant("", f"TABLE {salt.qualified_name}", salt.name, s.service_role, salt,
            "the salt is the owner's alone", schema=ERASURE_SCHEMA)
    b.row_security(records, f"access to {records.qualified_name} (row-level security "
                            f"enabled and forced): {s.service_role} reads it; forget() "
                            "writes it")
    b.grant("SELECT", f"TABLE {records.qualified_name}", records.name, s.service_role,
            records, "who erased whom when, by hash", schema=ERASURE_SCHEMA)
    for table in (salt, records):
        b.owner_policy(table, "SELECT", using="true")
        b.owner_policy(table, "INSERT", check=ERASING)
    collect, deletes = forget_statements([(t.qualified_name, t.erase) for t in tables
                                          if t.erase is not None])
    forget = b.function("forget_function", FORGET_FUNCTION, "text, text",
                        (*tables, salt, records),
                        "removes a user's, agent's or run's rows from every table the stack "
                        "declares and records the erasure; definer rights, fixed search_path",
                        in_schema=ERASURE_SCHEMA, collect=collect, deletes=deletes,
                        salt=salt.qualified_name, erasures=records.qualified_name)
    b.revoke_execute(forget, needed_by=(s.service_role,))
    erased = b.function("erased_function", ERASED_FUNCTION, "text, text[]", (salt, records),
                        "which of the given ids were erased (restore's check); definer "
                        "rights, read-only", in_schema=ERASURE_SCHEMA,
                        salt=salt.qualified_name, erasures=records.qualified_name)
    b.revoke_execute(erased, needed_by=(s.service_role,))


def _migration(b: _Builder, extension: ObjectSpec, memories: ObjectSpec) -> None:
    """Schema mem0_migration: the checkpoints of `migrate import` (runs, staged records,
    applied batches, pre-images, history marks), in the database so that another machine
    can resume or roll back a run. The service role's alone: it bypasses row-level
    security, which every table enables and forces without a policy."""
    s = b.settings
    schema = b.schema_(MIGRATION_SCHEMA, "migration checkpoints (`migrate`); the service "
                                         "role's alone")
    runs = b.table(MIGRATION_TABLES["runs"][0], "runs", schema, MIGRATION_TABLES["runs"][2],
                   in_schema=MIGRATION_SCHEMA, pkey=quote_ident("runs_pkey"),
                   erase=Erasure(Erase.KEEP, "runs: sources, options, counts, and skipped "
                                             "records' origins and reasons"),
                   check=quote_ident("runs_state_check"))
    tables = [runs]
    for name, (template, _privileges, comment) in MIGRATION_TABLES.items():
        if name == "runs":
            continue
        values = {"pkey": quote_ident(f"{name}_pkey"), "fkey": quote_ident(f"{name}_run_id_fkey"),
                  "runs": runs.qualified_name}
        if name in ("staged", "preimages"):
            values["vector_type"] = vector_type(s)
        if name == "history_marks":
            values["check"] = quote_ident("history_marks_kind_check")
        tables.append(b.table(template, name, (runs, extension, memories), comment,
                              in_schema=MIGRATION_SCHEMA, erase=MIGRATION_ERASURE[name],
                              requires=vector_requires(s) if "vector_type" in values else (),
                              **values))
    b.grant("USAGE", f"SCHEMA {quote_ident(MIGRATION_SCHEMA)}", MIGRATION_SCHEMA,
            s.service_role, schema, "`migrate` keeps its checkpoints as the service role",
            schema="")
    for table in tables:
        erased = table.erase is not None and table.erase.how != Erase.KEEP
        b.row_security(table, f"access to {table.qualified_name} (row-level security "
                              "enabled and forced): only roles that bypass row-level "
                              f"security; {s.service_role} may use it"
                              + ("; " + owner_words(s, f"the owner only inside {ERASURE_SCHEMA}."
                                                       f"{FORGET_FUNCTION}()")
                                 if erased else ""))
        if erased:
            b.erase_policies(table, ("SELECT", "DELETE"))
        b.grant(MIGRATION_TABLES[table.name][1], f"TABLE {table.qualified_name}", table.name,
                s.service_role, table, "`migrate` writes its checkpoints",
                schema=MIGRATION_SCHEMA)


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
        functions.append(b.function("claim_function", RUN_ID_FUNCTION, "", (extension,),
                                    "the caller's session for row-level security",
                                    what="session", claim="run_id"))
    if needs_agent_id(s):
        functions.append(b.function("claim_function", AGENT_ID_FUNCTION, "", (extension,),
                                    "the caller's agent for row-level security "
                                    "(agentSpaces); invoker rights",
                                    what="agent", claim="agent_id"))
    return tuple(functions)


def _membership(b: _Builder, user_id: ObjectSpec, after: ObjectSpec
                ) -> tuple[ObjectSpec, tuple[ObjectSpec, ...]]:
    """The membership table and the definer-rights functions that read it; the role
    column is there in every org stack (docs/security.md, "Org admins")."""
    members = b.table("membership_table", MEMBERSHIP_TABLE, after,
                      erase=Erasure(Erase.MEMBERS),
                      comment="who belongs to which organisation, as member or admin (org "
                              "tenancy); written by the service role")
    # The admin lookup reads the same few rows per user: the role is a filter on them.
    b.index(members, f"{MEMBERSHIP_TABLE}_user_id_idx", "btree (user_id)",
            "a user's organisations: the lookup every org policy makes")
    functions = [b.function("org_ids_function", ORG_IDS_FUNCTION, "", (members, user_id),
                            "the caller's organisations; definer rights, fixed search_path",
                            membership=members.qualified_name,
                            user_id=user_id.qualified_name)]
    if needs_admin_org_ids(b.settings):
        functions.append(b.function(
            "admin_org_ids_function", ADMIN_ORG_IDS_FUNCTION, "", (members, user_id),
            "the organisations where the caller is admin (orgAdmins); definer rights, fixed "
            "search_path", membership=members.qualified_name, user_id=user_id.qualified_name))
    return members, tuple(functions)


def _security(b: _Builder, tables: list[tuple[ObjectSpec, str]], extension: ObjectSpec,
              memories: ObjectSpec) -> None:
    """Identity functions, membership, grants, row-level security and policies."""
    s = b.settings
    functions = _identity_functions(b, extension)
    if needs_org_ids(s):
        members, definers = _membership(b, functions[0], extension)
        tables = [*tables, (members, MEMBERSHIP)]
        functions = (*functions, *definers)
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
        for definer in definers:
            b.revoke_execute(definer, needed_by=tuple(users))
    for (table, _nature), access in zip(tables, accesses, strict=True):
        b.policies(table, access, functions, after=())


def _promotion(b: _Builder, memories: ObjectSpec, entities: ObjectSpec) -> None:
    """mem0_promote_session(run_id, ids): a session's memories moved to the user level.
    Invoker rights, so the caller's policies bound it; callable by the roles that may
    update memories (docs/security.md, "Promoting a session's memories")."""
    s = b.settings
    promote = b.function("promote_session_function", PROMOTE_FUNCTION, "text, uuid[]",
                         (memories, entities),
                         "moves a session's memories (and entities that link only them) to "
                         "the user level; invoker rights, fixed search_path",
                         memories=memories.qualified_name, entities=entities.qualified_name)
    access = table_access(s, b.schema, [(memories.name, MEMORY)], memories.qualified_name)[0]
    writers = tuple(role for role, rules in access.rules.items()
                    if role != s.owner_role and rules["UPDATE"].privilege)
    b.revoke_execute(promote, needed_by=writers)


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
    if settings.client_profile == "python":
        _promotion(b, tables[0][0], tables[1][0])
    b.search_settings(app, extension)
    if owned and settings.client_profile == "python":
        live = {t.name: t for t, _nature in tables}
        _jobs(b, live, _snapshots(b, extension, live))
        _migration(b, extension, live[settings.collection])
        _erasure(b)
    families = list(Family)
    specs = sorted(b.specs, key=lambda s: families.index(s.family))  # stable: keeps order
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
