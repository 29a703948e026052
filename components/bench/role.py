"""The throwaway role the bench measures as, and the app-role session it opens with it.

One NOLOGIN role per run, named like the scratch schema (`mem0_bench_<hex>`, whose random
suffix it shares), created only when the run needs it: `--as app` (the default, and the
post-deploy check) and `--rls`. It is dropped when the run ends, whatever happens, after the
scratch schemas, because their policies and grants name it.

`--as app` gives the role what the stack gives its app role, from the model's single source
(`components.access.table_access` with the role in the app role's place):

- the table privileges the app role holds on the scratch copies of the memories,
  entities, history and relationships tables;
- row-level security enabled and forced on memories and relationships (the tables the
  measured statements read and write as the role), with the app role's policies rendered
  by `components.model.policy_ddl`; the history is written by the history trigger with
  definer rights, as the connecting role, so it stays without;
- the app role's search settings (`components.model.app_role_search_settings`), set with
  set_config after `SET ROLE`: a role's own settings are applied only when it logs in,
  and this role never does.

The measured session is a connection of its own whose session role is the throwaway role
for its whole life, as a mem0 pool connection is the app role for its whole life: its
prepared statements and cached plans are made as that role, and nothing else runs on it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import psycopg

from components.access import COMMANDS, GRAPH, HISTORY, MEMORY, TableAccess, table_access
from components.bench.common import APPLICATION, BenchError, Names, set_setting
from components.bench.scratch import drop_leftover
from components.bench.server import Server, pgvector_defaults, search_settings
from components.connection import open_session
from components.identifiers import quote_ident
from components.model import HISTORY_TABLE, RELATIONSHIPS_TABLE, policy_ddl

__all__ = ["IDENTITY_SQL", "MODES", "POLICY_PREFIX", "AppAccess", "Session", "app_access",
           "check_can_create_roles", "create_role", "drop_role", "grant_app_access",
           "grant_functions", "lift_app_access", "open_measured", "role_name",
           "settings_in_effect"]

MODES = ("app", "owner")
POLICY_PREFIX = "bench_app_"
# mem0's identity setting, which the app role's policies read through mem0_user_id().
IDENTITY_SQL = "SELECT pg_catalog.set_config('mem0.user_id', %s, false)"


def role_name(names: Names) -> str:
    """The throwaway role: named like the scratch schema, whose random suffix it shares."""
    return names.scratch


# --- the role's lifecycle -------------------------------------------------------------------

def check_can_create_roles(conn: psycopg.Connection[Any], needed_by: str,
                           alternative: str) -> None:
    """Refuse before the load, not after it: the run creates (and drops) a role."""
    row = conn.execute("SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles"
                       " WHERE rolname = current_user").fetchone()
    if not (row and row[0]):
        raise BenchError(f"{needed_by} needs a role that may create roles (CREATEROLE or "
                         f"superuser) to query as a throwaway role; allowed: such a role in "
                         f"--dsn, or {alternative}")


def create_role(conn: psycopg.Connection[Any], n: Names, role: str) -> None:
    """The role, with what every use of it needs: the scratch schema, its functions (the
    policies call the identity functions) and pgvector's schema."""
    quoted = quote_ident(role)
    conn.execute(f"CREATE ROLE {quoted} NOLOGIN")
    superuser = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles"
                             " WHERE rolname = current_user").fetchone()
    if not (superuser and superuser[0]):
        # SET ROLE needs membership; a CREATEROLE role (PostgreSQL 16+) gets only ADMIN.
        conn.execute(f"GRANT {quoted} TO CURRENT_USER")
    conn.execute(f"GRANT USAGE ON SCHEMA {quote_ident(n.scratch)} TO {quoted}")
    grant_functions(conn, n, role)
    extension = n.settings.extension_schema
    usage = conn.execute("SELECT pg_catalog.has_schema_privilege(%s, %s, 'USAGE')",
                         (role, extension)).fetchone()
    if not (usage and usage[0]):
        # The vector type and its operators; revoked by drop_role's DROP OWNED.
        conn.execute(f"GRANT USAGE ON SCHEMA {quote_ident(extension)} TO {quoted}")


def grant_functions(conn: psycopg.Connection[Any], n: Names, role: str) -> None:
    # Again after creating functions: Supabase's default privileges may take EXECUTE from
    # PUBLIC on every new one.
    conn.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {quote_ident(n.scratch)}"
                 f" TO {quote_ident(role)}")


def drop_role(conn: psycopg.Connection[Any], dsn: str, role: str) -> None:
    """Drop the throwaway role if it exists (also after Ctrl-C); call after the scratch
    schemas are dropped. DROP OWNED revokes what it was granted outside them."""
    quoted = quote_ident(role)
    drop_leftover(conn, dsn, f"the bench role {role}", lambda c: _drop_role_on(c, role),
                  f"DROP OWNED BY {quoted}; DROP ROLE {quoted};")


def _drop_role_on(conn: psycopg.Connection[Any], role: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s",
                          (role,)).fetchone()
    if exists:
        conn.execute(f"DROP OWNED BY {quote_ident(role)}")
        conn.execute(f"DROP ROLE {quote_ident(role)}")


# --- the app role's access ------------------------------------------------------------------

def _tables(n: Names) -> list[tuple[str, str]]:
    """The Python profile's tables and their nature for access, as the model lists them."""
    collection = n.settings.collection
    return [(collection, MEMORY), (f"{collection}_entities", MEMORY),
            (HISTORY_TABLE, HISTORY), (RELATIONSHIPS_TABLE, GRAPH)]


def app_access(n: Names, role: str) -> list[TableAccess]:
    """The stack's access rules for its tables, with `role` as the app role."""
    settings = replace(n.settings, app_role=role)
    return table_access(settings, n.scratch, _tables(n), n.memories)


@dataclass(frozen=True)
class AppAccess:
    """What the run gave the role, for the report."""

    grants: dict[str, list[str]]  # table -> privileges
    policies: dict[str, dict[str, dict[str, str | None]]]  # table -> command -> using/check

    def report(self) -> dict[str, Any]:
        return {"grants": self.grants, "policies": self.policies,
                "row_level_security": {table: "enabled and forced"
                                       for table in self.policies}}


def grant_app_access(conn: psycopg.Connection[Any], n: Names, role: str) -> AppAccess:
    """The app role's privileges on the scratch tables, and its policies, with row-level
    security enabled and forced where the measured statements run."""
    grants: dict[str, list[str]] = {}
    policies: dict[str, dict[str, dict[str, str | None]]] = {}
    # The tables the measured statements touch as the role: row-level security on these.
    secured = (n.settings.collection, RELATIONSHIPS_TABLE)
    for access in app_access(n, role):
        rules = access.rules[role]
        table = n.obj(access.table)
        privileges = [c for c in COMMANDS if rules[c].privilege]
        if privileges:
            conn.execute(f"GRANT {', '.join(privileges)} ON TABLE {table}"
                         f" TO {quote_ident(role)}")
        grants[access.table] = privileges
        if access.table not in secured:
            continue
        policies[access.table] = {}
        for command in COMMANDS:
            rule = rules[command]
            if not rule.policy:
                continue
            name = f"{POLICY_PREFIX}{command.lower()}"
            conn.execute(policy_ddl(name, table, command, [role], rule.using, rule.check))
            policies[access.table][command] = {"using": rule.using, "check": rule.check,
                                               "words": rule.words}
        conn.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        conn.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    return AppAccess(grants, policies)


def lift_app_access(conn: psycopg.Connection[Any], n: Names, access: AppAccess) -> None:
    """Row-level security off again and the app role's policies gone (before `--rls`,
    which sets its own variants on the same table and reads as the owner)."""
    for table in access.policies:
        qualified = n.obj(table)
        for command in access.policies[table]:
            conn.execute(f"DROP POLICY IF EXISTS "
                         f"{quote_ident(POLICY_PREFIX + command.lower())} ON {qualified}")
        conn.execute(f"ALTER TABLE {qualified} NO FORCE ROW LEVEL SECURITY")
        conn.execute(f"ALTER TABLE {qualified} DISABLE ROW LEVEL SECURITY")


# --- the measured session -------------------------------------------------------------------

@dataclass
class Session:
    """A measured connection: who it runs as and the settings in effect on it."""

    conn: psycopg.Connection[Any]
    current_user: str
    settings: dict[str, str]  # what the bench set (pgvector's defaults, then the stack's)
    identity: bool  # mem0.user_id is set to each statement's user before it runs

    def act_for(self, user: str | None) -> None:
        """Name the statement's user when the role's policies need one (untimed)."""
        if self.identity:
            self.conn.execute(IDENTITY_SQL, (user or "",))

    def close(self) -> None:
        self.conn.close()


def open_measured(dsn: str, settings_of: Names, server: Server, role: str | None,
                  stack_settings: bool, identity: bool = False) -> Session:
    """A fresh connection: as `role` (SET ROLE, for the whole session) or as the connecting
    role; pgvector's own defaults, then, when `stack_settings`, the app role's search
    settings on top."""
    conn = open_session(dsn, APPLICATION, BenchError)
    try:
        if role is not None:
            conn.execute(f"SET ROLE {quote_ident(role)}")
        values = pgvector_defaults(conn, settings_of.settings.extension_schema)
        if stack_settings:
            values.update(search_settings(settings_of.settings, server))
        for name, value in values.items():
            set_setting(conn, name, value)
        row = conn.execute("SELECT current_user::text").fetchone()
        return Session(conn, row[0] if row else "", values, identity)
    except BaseException:
        conn.close()
        raise


def settings_in_effect(session: Session) -> dict[str, str]:
    """The session's values of the settings the bench set, read back from the server."""
    names = sorted(session.settings)
    rows = session.conn.execute(
        "SELECT name, pg_catalog.current_setting(name) FROM pg_catalog.unnest(%s::text[])"
        " AS name", (names,)).fetchall()
    return dict(rows)
