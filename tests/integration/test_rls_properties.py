"""Row-level security against an oracle of the documented access rules, property-tested.

Each configuration (target x tenancy x sharedAgentKnowledge x sessionScope x
appRoleIdentity x orgAdmins x agentSpaces) is deployed once into its own database, on
target supabase into the emulation of tests/support/supabase.py. The service-side seed
writes users' rows, organisations' rows (memberships, one of them an admin's), shared
agent rows (no user_id), rows of two agents, session rows (run_id), relationships and,
through the trigger, history. Hypothesis then draws an identity (with or without an
agent), a table and an attempt (read everything, insert a row owned by someone, update a
row, maybe moving it to another owner, organisation, session or agent, delete a row), runs
it in a transaction that is rolled back, and compares what happened with `Oracle`.

The oracle is written from the rules as documented (README, the settings' descriptions,
the matrix of `TableAccess.matrix`), in Python, never by reading the policies back. It
applies PostgreSQL's documented policy semantics to them: an UPDATE or DELETE whose WHERE
reads the table reaches only rows that pass the SELECT and the command's USING rules (other
rows are silently not affected: 0 rows); a new row that fails WITH CHECK (or, for an
UPDATE with such a WHERE, the SELECT rule) is an error; a role without the table privilege
gets "permission denied" before any policy is looked at.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb

from components.connection import role_url
from tests.conftest import APP_PASSWORD, TestDatabase, app_role_for, project_roles_for
from tests.support.supabase import act_as, deployed_stack, jwt_claims
from tests.support.testbed import PgServer

# --- the configurations --------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    target: Literal["postgres", "supabase"]
    tenancy: Literal["user", "org", "service"]
    shared: bool = False  # sharedAgentKnowledge
    session: bool = False  # sessionScope
    app_identity: Literal["trusted", "optional", "required"] = "trusted"  # appRoleIdentity
    admins: bool = False  # orgAdmins
    agents: bool = False  # agentSpaces

    @property
    def id(self) -> str:
        options = [name for name, on in (("shared", self.shared), ("session", self.session),
                                         ("admins", self.admins), ("agents", self.agents))
                   if on]
        return "-".join([self.target, self.tenancy, *options, f"app-{self.app_identity}"])

    def settings(self) -> dict[str, object]:
        return {"target": self.target, "tenancy": self.tenancy,
                "sharedAgentKnowledge": self.shared, "sessionScope": self.session,
                "appRoleIdentity": self.app_identity, "orgAdmins": self.admins,
                "agentSpaces": self.agents,
                # Small vectors keep the tables light; nothing here searches.
                "dimensions": 3}


# Every tenancy on both targets; each option on and off somewhere on each target, and
# together (their interplay in the SELECT rule is where mistakes would hide).
CONFIGS = (
    Config("postgres", "user"),
    Config("postgres", "user", shared=True, session=True, app_identity="required"),
    Config("postgres", "org", shared=True, app_identity="optional"),
    Config("postgres", "org", session=True, app_identity="required"),
    Config("postgres", "service"),
    Config("supabase", "user", app_identity="required"),
    Config("supabase", "org", shared=True, session=True),
    Config("supabase", "service", shared=True, app_identity="optional"),
    # Org admins and agent spaces, with sessions (admins reach every session's rows) and
    # the app role bound only once it names a user (agents bind it before that too).
    Config("postgres", "org", session=True, admins=True, agents=True,
           app_identity="optional"),
    Config("supabase", "org", shared=True, session=True, admins=True, agents=True),
)

# --- the people and their rows --------------------------------------------------------------

# Supabase's auth.uid() is a uuid, so users are uuids on both targets. U5 owns nothing
# and belongs nowhere; U4 owns rows but belongs to no organisation.
U1, U2, U3, U4, U5 = USERS = tuple(f"00000000-0000-4000-8000-{i:012d}" for i in range(1, 6))
ORG1, ORG2, NOBODYS_ORG = "org-1", "org-2", "org-3"
MEMBERSHIPS = frozenset({(ORG1, U1), (ORG1, U2), (ORG2, U2), (ORG2, U3)})
# Memberships whose role is admin (every org stack has the column; orgAdmins reads it).
ADMINS = frozenset({(ORG2, U3)})
AGENT, AGENT2 = "agent-a", "agent-b"
AGENTS = (None, AGENT, AGENT2)
RUN1, RUN2 = "run-1", "run-2"
SEED_NAMESPACE = uuid.UUID("5eed0000-0000-4000-8000-000000000000")
# Rows an attempt creates: every attempt is rolled back, so one id each never collides.
NEW_MEMORY_ID = "0e000000-0000-4000-8000-000000000001"
NEW_EDGE_ID = "0e000000-0000-4000-8000-000000000002"

MEMORIES, ENTITIES = "memories", "memories_entities"
HISTORY, RELATIONSHIPS, MEMBERS = "memory_history", "memory_relationships", \
    "memory_org_members"
MEMORY_TABLES = (MEMORIES, ENTITIES)
COMMANDS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})


@dataclass(frozen=True)
class Memory:
    """A row of memories or memories_entities, as its payload says (the owner columns are
    generated from the payload)."""

    user: str | None
    org: str | None
    agent: str | None
    run: str | None
    data: str = "seed"

    FIELDS: ClassVar[dict[str, str]] = {"user_id": "user", "org_id": "org",
                                        "agent_id": "agent", "run_id": "run", "data": "data"}

    def payload(self) -> dict[str, str]:
        return {key: getattr(self, attr) for key, attr in self.FIELDS.items()
                if getattr(self, attr) is not None}

    @classmethod
    def from_payload(cls, payload: Mapping[str, str]) -> Memory:
        return cls(**{attr: payload.get(key) for key, attr in cls.FIELDS.items()})


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    type: str
    strength: float
    user: str | None
    org: str | None


@dataclass(frozen=True)
class Change:
    """A row of memory_history: which memory, and its owner columns at that change."""

    memory_id: str
    operation: str
    user: str | None
    org: str | None
    run: str | None


@dataclass(frozen=True)
class Member:
    org: str
    user: str


Row = Memory | Edge | Change | Member


@dataclass
class State:
    """Every row of every table, read as the superuser (which bypasses row security)."""

    tables: dict[str, dict[object, Row]] = field(default_factory=dict)

    def copy(self) -> State:
        return State({table: dict(rows) for table, rows in self.tables.items()})


def read_state(conn: psycopg.Connection, tenancy: str) -> State:
    state = State()
    for table in MEMORY_TABLES:
        state.tables[table] = {
            key: Memory.from_payload(payload) for key, payload in conn.execute(
                sql.SQL("SELECT id::text, payload FROM public.{}").format(
                    sql.Identifier(table)))}
    state.tables[RELATIONSHIPS] = {
        key: Edge(*rest) for key, *rest in conn.execute(
            "SELECT id::text, source_memory_id::text, target_memory_id::text, "
            "relationship_type, strength, user_id, org_id FROM public.memory_relationships")}
    state.tables[HISTORY] = {
        key: Change(*rest) for key, *rest in conn.execute(
            "SELECT id, memory_id::text, operation, user_id, org_id, run_id "
            "FROM public.memory_history")}
    if tenancy == "org":
        state.tables[MEMBERS] = {
            (org, user): Member(org, user) for org, user in conn.execute(
                "SELECT org_id, user_id FROM public.memory_org_members")}
    return state


def seed(conn: psycopg.Connection, tenancy: str) -> None:
    """What the service side writes: every combination of owner, organisation, agent and
    session on both memory tables, some edits and deletions for the history, edges, and
    the memberships."""
    combinations = list(itertools.product((U1, U2, U3, U4, None), (ORG1, ORG2, None),
                                          AGENTS, (None, RUN1)))
    for table in MEMORY_TABLES:
        for i, (user, org, agent, run) in enumerate(combinations):
            key = uuid.uuid5(SEED_NAMESPACE, f"{table}:{i}")
            conn.execute(sql.SQL("INSERT INTO public.{} (id, vector, payload) "
                                 "VALUES (%s, NULL, %s)").format(sql.Identifier(table)),
                         (key, Jsonb(Memory(user, org, agent, run).payload())))
    memory_ids = [str(uuid.uuid5(SEED_NAMESPACE, f"{MEMORIES}:{i}"))
                  for i in range(len(combinations))]
    # History of updates and deletions too, not only of inserts.
    conn.execute("UPDATE public.memories SET payload = payload || '{\"data\": \"edited\"}' "
                 "WHERE id = ANY(%s::uuid[])", (memory_ids[::7],))
    for user, org in ((U1, ORG1), (U2, ORG2), (U3, None)):
        key = uuid.uuid4()
        conn.execute("INSERT INTO public.memories (id, payload) VALUES (%s, %s)",
                     (key, Jsonb(Memory(user, org, None, None, "gone").payload())))
        conn.execute("DELETE FROM public.memories WHERE id = %s", (key,))
    # Edges of every owner and organisation, between memories of all kinds (also across
    # users: the service may link anything).
    for i, (user, org) in enumerate(itertools.product((U1, U2, U3, U4, None),
                                                      (ORG1, ORG2, None))):
        conn.execute(
            "INSERT INTO public.memory_relationships (source_memory_id, target_memory_id, "
            "relationship_type, strength, user_id, org_id) VALUES (%s, %s, 'seed', 1, %s, %s)",
            (memory_ids[(4 * i) % len(memory_ids)], memory_ids[(4 * i + 9) % len(memory_ids)],
             user, org))
    if tenancy == "org":
        for org, user in sorted(MEMBERSHIPS):
            conn.execute("INSERT INTO public.memory_org_members (org_id, user_id, role) "
                         "VALUES (%s, %s, %s)",
                         (org, user, "admin" if (org, user) in ADMINS else "member"))


# --- who acts --------------------------------------------------------------------------------

Kind = Literal["app", "readonly", "authenticated", "anon", "service"]


@dataclass(frozen=True)
class Identity:
    kind: Kind
    user: str | None = None
    run: str | None = None
    jwt: bool = False  # app/readonly: name the user in request.jwt.claims, not mem0.user_id
    agent: str | None = None  # mem0.agent_id, or the claim agent_id

    def __str__(self) -> str:
        how = "jwt" if self.jwt or self.kind == "authenticated" else "mem0.user_id"
        who = f" as {self.user} ({how})" if self.user else " (no user)"
        return f"{self.kind}{who}" + (f" in session {self.run}" if self.run else "") + \
            (f" for agent {self.agent}" if self.agent else "")


@dataclass
class Stack:
    config: Config
    database: TestDatabase
    roles: dict[Kind, str]
    seed: State
    # The superuser's connections, in a transaction per attempt: one for callers with a
    # token, one that never carries request.jwt.claims. A claim set with set_config(...,
    # true) leaves the setting defined as '' after the transaction, which a connection of
    # mem0's never sees (and Supabase's auth.uid() cannot parse).
    tokens: psycopg.Connection
    plain: psycopg.Connection
    app_role_works: bool  # whether the app role can evaluate its own identity at all

    def become(self, who: Identity) -> psycopg.Connection:
        """Open a transaction acting as `who`, the way each client does: PostgREST (anon,
        authenticated: a role and the token's claims), mem0's connection (the app and
        readonly roles: mem0.user_id and mem0.run_id settings, or a PostgREST token on
        plain PostgreSQL). Returns the connection; the caller rolls it back."""
        role = self.roles[who.kind]
        if who.kind in ("authenticated", "anon") or who.jwt:
            extra = {k: v for k, v in (("run_id", who.run), ("agent_id", who.agent)) if v}
            act_as(self.tokens, role, jwt_claims(who.user, role=role, **extra))
            return self.tokens
        values = {"mem0.user_id": who.user, "mem0.run_id": who.run,
                  "mem0.agent_id": who.agent}
        act_as(self.plain, role, None, {k: v for k, v in values.items() if v})
        return self.plain


def tables_of(config: Config) -> tuple[str, ...]:
    return (*MEMORY_TABLES, HISTORY, RELATIONSHIPS,
            *((MEMBERS,) if config.tenancy == "org" else ()))


# --- the oracle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What an attempt did: the rows a SELECT returned, the rows a write affected, or the
    error it was refused with ("denied": no table privilege; "rls": a new row violates
    row-level security)."""

    result: Literal["rows", "affected", "denied", "rls"]
    rows: frozenset[object] = frozenset()
    affected: int = 0

    def __str__(self) -> str:
        if self.result == "rows":
            return f"{len(self.rows)} rows {sorted(map(str, self.rows))}"
        if self.result == "affected":
            return f"{self.affected} rows affected"
        return {"denied": "permission denied", "rls": "row-level security violation"}[
            self.result]


DENIED, RLS = Outcome("denied"), Outcome("rls")


class Oracle:
    """The documented rules for one identity on one configuration, over a state."""

    def __init__(self, config: Config, who: Identity, state: State) -> None:
        self.config, self.who, self.state = config, who, state
        self.uid = who.user if who.kind in ("app", "readonly", "authenticated") else None
        self.run = who.run
        self.orgs = {m.org for m in state.tables.get(MEMBERS, {}).values()
                     if self.uid is not None and m.user == self.uid}
        # orgAdmins: the organisations where the caller's membership is an admin's
        self.admin_orgs = {org for org in self.orgs if (org, self.uid) in ADMINS} \
            if config.admins else set()
        # The service role bypasses row security; the app role sees every row when it is
        # trusted, and with appRoleIdentity optional until its connection names a user.
        self.bypass = who.kind == "service"
        self.trusted = who.kind == "app" and config.app_identity == "trusted"
        self.everything = self.trusted or (
            who.kind == "app" and config.app_identity == "optional" and self.uid is None)

    def privileges(self, table: str) -> frozenset[str]:
        kind = self.who.kind
        if kind == "service":  # every row, but history only to read
            return frozenset({"SELECT"}) if table == HISTORY else COMMANDS
        if kind == "anon":
            return frozenset()
        if kind in ("readonly", "authenticated") and self.config.tenancy == "service":
            return frozenset()  # tenancy service: no end user at all
        if kind == "readonly":
            return frozenset({"SELECT"})
        # the app role and signed-in users: DML on memories, entities and edges; history
        # and memberships are read only (the trigger and the service write them)
        return COMMANDS if table in (*MEMORY_TABLES, RELATIONSHIPS) else frozenset({"SELECT"})

    def _own(self, row: Memory | Edge | Change | Member) -> bool:
        return self.uid is not None and row.user == self.uid

    def reads(self, table: str, row: Row) -> bool:
        if self.bypass or self.everything:
            return True
        if isinstance(row, Member):
            return self._own(row)
        scope = row.org in self.orgs if self.config.tenancy == "org" else self._own(row)
        if isinstance(row, (Memory, Change)) and self.config.session:
            # a session's rows only in that session; its history too (it holds payloads)
            scope = scope and (row.run is None or row.run == self.run)
        # an admin reads every row of their organisations, every session's
        scope = scope or row.org in self.admin_orgs
        if isinstance(row, Memory) and self.config.shared:
            # shared agent knowledge (no user, an agent): every signed-in user reads it,
            # whatever its organisation or session
            scope = scope or (row.user is None and row.agent is not None
                              and self.uid is not None)
        return scope

    def writes(self, table: str, row: Row) -> bool:
        if self.bypass or self.trusted:
            return True
        # agentSpaces: a caller with an agent identity writes only that agent's memories
        # and entities (edges and history have no agent)
        agent = not (self.config.agents and self.who.agent is not None
                     and isinstance(row, Memory)) or row.agent == self.who.agent
        if self.everything:
            return agent  # the optional app role before it names a user
        if isinstance(row, (Change, Member)):
            return False  # never written by end users (and they hold no privilege)
        own = self._own(row)
        scope = (own and row.org in self.orgs) if self.config.tenancy == "org" else own
        if isinstance(row, Memory) and self.config.session:
            scope = scope and (row.run is None or row.run == self.run)
        scope = scope or row.org in self.admin_orgs  # an admin's organisations: every row
        if isinstance(row, Edge):  # between memories the caller can read
            memories = self.state.tables[MEMORIES]
            scope = scope and all(key in memories and self.reads(MEMORIES, memories[key])
                                  for key in (row.source, row.target))
            if self.config.tenancy == "org":  # ... of the edge's own organisation
                scope = scope and all(memories[key].org == row.org
                                      for key in (row.source, row.target))
        return scope and agent

    def select(self, table: str) -> Outcome:
        if "SELECT" not in self.privileges(table):
            return DENIED
        return Outcome("rows", frozenset(key for key, row in self.state.tables[table].items()
                                         if self.reads(table, row)))

    def insert(self, table: str, row: Row) -> Outcome:
        if "INSERT" not in self.privileges(table):
            return DENIED
        return Outcome("affected", affected=1) if self.writes(table, row) else RLS

    def update(self, table: str, key: object, new: Row) -> Outcome:
        if "UPDATE" not in self.privileges(table):
            return DENIED
        old = self.state.tables[table][key]
        if not (self.reads(table, old) and self.writes(table, old)):
            return Outcome("affected", affected=0)
        if not (self.reads(table, new) and self.writes(table, new)):
            return RLS
        return Outcome("affected", affected=1)

    def delete(self, table: str, key: object) -> Outcome:
        if "DELETE" not in self.privileges(table):
            return DENIED
        old = self.state.tables[table][key]
        visible = self.reads(table, old) and self.writes(table, old)
        return Outcome("affected", affected=int(visible))


# --- attempts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    verb: Literal["select", "insert", "update", "delete"]
    table: str
    key: object = None  # the row an update or delete aims at
    row: Row | None = None  # the row an insert writes, the row an update leaves

    def __str__(self) -> str:
        target = f" {self.key}" if self.key is not None else ""
        return f"{self.verb} {self.table}{target}" + (f" -> {self.row}" if self.row else "")

    def expected(self, oracle: Oracle) -> Outcome:
        if self.verb == "select":
            return oracle.select(self.table)
        assert self.row is not None or self.verb == "delete"
        if self.verb == "insert":
            assert self.row is not None
            return oracle.insert(self.table, self.row)
        if self.verb == "update":
            assert self.row is not None
            return oracle.update(self.table, self.key, self.row)
        return oracle.delete(self.table, self.key)

    def applied(self, state: State) -> tuple[State, list[Change]]:
        """The state after this attempt succeeded, and the history rows it adds (the
        trigger records each change of a memory; deleting a memory deletes its edges)."""
        after = state.copy()
        rows = after.tables[self.table]
        history: list[Change] = []
        if self.verb == "insert":
            key = {MEMORIES: NEW_MEMORY_ID, ENTITIES: NEW_MEMORY_ID,
                   RELATIONSHIPS: NEW_EDGE_ID}.get(self.table)
            assert self.row is not None
            if isinstance(self.row, Member):
                key = (self.row.org, self.row.user)
            rows[key] = self.row
        elif self.verb == "update":
            assert self.row is not None
            del rows[self.key]
            rows[(self.row.org, self.row.user) if isinstance(self.row, Member)
                 else self.key] = self.row
        else:
            del rows[self.key]
            if self.table == MEMORIES:
                edges = after.tables[RELATIONSHIPS]
                for key in [k for k, e in edges.items()
                            if isinstance(e, Edge) and self.key in (e.source, e.target)]:
                    del edges[key]
        if self.table == MEMORIES and self.verb != "select":
            memory = self.row if self.verb != "delete" else state.tables[MEMORIES][self.key]
            assert isinstance(memory, Memory)
            memory_id = NEW_MEMORY_ID if self.verb == "insert" else str(self.key)
            operation = {"insert": "create", "update": "update", "delete": "delete"}[self.verb]
            history.append(Change(memory_id, operation, memory.user, memory.org, memory.run))
        return after, history

    def run(self, conn: psycopg.Connection) -> Outcome:
        """Run it as the current role; a refusal is classified, anything else raises."""
        statement, params = self._sql()
        try:
            cursor = conn.execute(statement, params)
        except psycopg.errors.InsufficientPrivilege as error:
            message = str(error)
            if "violates row-level security policy" in message:
                return RLS
            if message.startswith(f"permission denied for table {self.table}"):
                return DENIED
            raise
        if self.verb == "select":
            return Outcome("rows", frozenset(
                tuple(r) if self.table == MEMBERS else r[0] for r in cursor.fetchall()))
        return Outcome("affected", affected=cursor.rowcount)

    def _sql(self) -> tuple[sql.Composed, tuple[object, ...]]:
        table = sql.SQL("public.{}").format(sql.Identifier(self.table))
        row, key = self.row, self.key
        if self.verb == "select":
            columns = {MEMBERS: "org_id, user_id", HISTORY: "id"}.get(self.table, "id::text")
            return sql.SQL("SELECT {} FROM {}").format(sql.SQL(columns), table), ()
        if self.verb == "delete":
            if self.table == MEMBERS:
                assert isinstance(key, tuple)
                return sql.SQL("DELETE FROM {} WHERE org_id = %s AND user_id = %s").format(
                    table), key
            return sql.SQL("DELETE FROM {} WHERE id = %s").format(table), (key,)
        if isinstance(row, Memory):
            if self.verb == "insert":  # as mem0 inserts: id, vector, payload
                return (sql.SQL("INSERT INTO {} (id, vector, payload) VALUES (%s, NULL, %s)")
                        .format(table), (NEW_MEMORY_ID, Jsonb(row.payload())))
            # as mem0 updates: the whole payload, by id
            return (sql.SQL("UPDATE {} SET payload = %s WHERE id = %s").format(table),
                    (Jsonb(row.payload()), key))
        if isinstance(row, Edge):
            values = (row.source, row.target, row.type, row.strength, row.user, row.org)
            if self.verb == "insert":
                return (sql.SQL("INSERT INTO {} (id, source_memory_id, target_memory_id, "
                                "relationship_type, strength, user_id, org_id) "
                                "VALUES (%s, %s, %s, %s, %s, %s, %s)").format(table),
                        (NEW_EDGE_ID, *values))
            return (sql.SQL("UPDATE {} SET source_memory_id = %s, target_memory_id = %s, "
                            "relationship_type = %s, strength = %s, user_id = %s, "
                            "org_id = %s WHERE id = %s").format(table), (*values, key))
        if isinstance(row, Change):
            if self.verb == "insert":
                return (sql.SQL("INSERT INTO {} (memory_id, operation, user_id, org_id, "
                                "run_id) VALUES (%s, %s, %s, %s, %s)").format(table),
                        (row.memory_id, row.operation, row.user, row.org, row.run))
            return (sql.SQL("UPDATE {} SET user_id = %s, org_id = %s WHERE id = %s")
                    .format(table), (row.user, row.org, key))
        assert isinstance(row, Member)
        if self.verb == "insert":
            return (sql.SQL("INSERT INTO {} (org_id, user_id) VALUES (%s, %s)").format(table),
                    (row.org, row.user))
        assert isinstance(key, tuple)
        return (sql.SQL("UPDATE {} SET org_id = %s, user_id = %s "
                        "WHERE org_id = %s AND user_id = %s").format(table),
                (row.org, row.user, *key))


# --- strategies ------------------------------------------------------------------------------

USER_OR_NONE = st.sampled_from((*USERS, None))
ORG_OR_NONE = st.sampled_from((ORG1, ORG2, NOBODYS_ORG, None))
RUN_OR_NONE = st.sampled_from((None, RUN1, RUN2))
AGENT_OR_NONE = st.sampled_from(AGENTS)


def identities(stack: Stack) -> st.SearchStrategy[Identity]:
    """Any caller, drawn more often where it can write under row security (those are the
    attempts whose outcome depends on the rules, not only on privileges)."""
    postgres = stack.config.target == "postgres"
    service = st.just(Identity("service"))
    app = st.builds(Identity, st.just("app"), USER_OR_NONE, RUN_OR_NONE,
                    st.booleans() if postgres else st.just(False), AGENT_OR_NONE)
    if postgres:
        readonly = st.builds(Identity, st.just("readonly"), USER_OR_NONE, RUN_OR_NONE,
                             st.booleans(), AGENT_OR_NONE)
        options = [service, readonly, app, app] if stack.app_role_works else [service, readonly]
    else:
        user = st.builds(Identity, st.just("authenticated"), USER_OR_NONE, RUN_OR_NONE,
                         st.just(False), AGENT_OR_NONE)
        options = [service, st.just(Identity("anon")), user, user, user]
        if stack.app_role_works:
            options += [app, app]
    return st.one_of(options)


# The strategies lean towards the caller's own rows, organisations and session, where a
# write is legitimate and the interesting refusals (moving a row away, a session that does
# not match) happen; uniform draws alone would almost always aim at strangers' rows.


def owners(who: Identity) -> st.SearchStrategy[str | None]:
    """The caller, or anyone, or no one."""
    if who.user is None:
        return USER_OR_NONE
    return st.one_of(st.just(who.user), USER_OR_NONE)


def others(who: Identity) -> st.SearchStrategy[str | None]:
    """Anyone but the caller, or no one: where an update moves a row away to."""
    return st.sampled_from([user for user in (*USERS, None) if user != who.user])


def organisations(who: Identity) -> st.SearchStrategy[str | None]:
    """One of the caller's organisations, or any, or none."""
    mine = sorted(org for org, user in MEMBERSHIPS if user == who.user)
    return st.one_of(st.sampled_from(mine), ORG_OR_NONE) if mine else ORG_OR_NONE


def sessions(who: Identity) -> st.SearchStrategy[str | None]:
    return st.one_of(st.just(who.run), RUN_OR_NONE)


def agents(who: Identity) -> st.SearchStrategy[str | None]:
    """The caller's agent, or any, or none."""
    return st.one_of(st.just(who.agent), AGENT_OR_NONE)


def targets(stack: Stack, who: Identity, table: str) -> st.SearchStrategy[object]:
    """The key of a seeded row: one of the caller's, or any."""
    rows = stack.seed.tables[table]
    keys = sorted(rows, key=str)
    mine = [key for key in keys if who.user is not None
            and getattr(rows[key], "user", None) == who.user]
    return st.one_of(st.sampled_from(mine), st.sampled_from(keys)) if mine \
        else st.sampled_from(keys)


def memory_attempts(stack: Stack, who: Identity, table: str) -> st.SearchStrategy[Attempt]:
    seeded = stack.seed.tables[table]
    keys = targets(stack, who, table)
    new_rows = st.builds(Memory, owners(who), organisations(who),
                         agents(who), sessions(who), st.just("new"))

    def moved(key: object) -> st.SearchStrategy[Attempt]:
        old = seeded[key]
        assert isinstance(old, Memory)
        changes = st.one_of(
            st.just(replace(old, data="edited")),
            others(who).map(lambda user: replace(old, user=user)),  # None: to no one
            organisations(who).map(lambda org: replace(old, org=org)),
            sessions(who).map(lambda run: replace(old, run=run)),
            agents(who).map(lambda agent: replace(old, agent=agent)))
        return changes.map(lambda new: Attempt("update", table, key, new))

    return st.one_of(
        new_rows.map(lambda row: Attempt("insert", table, row=row)),
        keys.flatmap(moved),
        keys.map(lambda key: Attempt("delete", table, key)))


def edge_attempts(stack: Stack, who: Identity) -> st.SearchStrategy[Attempt]:
    seeded = stack.seed.tables[RELATIONSHIPS]
    keys = targets(stack, who, RELATIONSHIPS)
    memories = sorted(stack.seed.tables[MEMORIES], key=str)
    endpoints = st.lists(targets(stack, who, MEMORIES), min_size=2, max_size=2, unique=True)
    new_rows = st.builds(lambda pair, user, org: Edge(pair[0], pair[1], "generated", 0.5,
                                                      user, org),
                         endpoints, owners(who), organisations(who))

    def moved(key: object) -> st.SearchStrategy[Attempt]:
        old = seeded[key]
        assert isinstance(old, Edge)
        # A moved endpoint gets a fresh type, so (source, target, type) stays unique.
        other_targets = st.one_of(targets(stack, who, MEMORIES),
                                  st.sampled_from(memories)).filter(lambda m: m != old.source)
        changes = st.one_of(
            st.just(replace(old, strength=0.25)),
            others(who).map(lambda user: replace(old, user=user)),
            organisations(who).map(lambda org: replace(old, org=org)),
            other_targets.map(lambda target: replace(old, target=target, type="moved")))
        return changes.map(lambda new: Attempt("update", RELATIONSHIPS, key, new))

    return st.one_of(
        new_rows.map(lambda row: Attempt("insert", RELATIONSHIPS, row=row)),
        keys.flatmap(moved),
        keys.map(lambda key: Attempt("delete", RELATIONSHIPS, key)))


def history_attempts(stack: Stack, who: Identity) -> st.SearchStrategy[Attempt]:
    seeded = stack.seed.tables[HISTORY]
    keys = targets(stack, who, HISTORY)
    memories = st.sampled_from(sorted(stack.seed.tables[MEMORIES], key=str))
    forged = st.builds(Change, memories, st.just("create"), owners(who), organisations(who),
                       sessions(who))

    def rewritten(key: object) -> st.SearchStrategy[Attempt]:
        old = seeded[key]
        assert isinstance(old, Change)
        return owners(who).map(lambda user: Attempt("update", HISTORY, key,
                                                     replace(old, user=user)))

    return st.one_of(forged.map(lambda row: Attempt("insert", HISTORY, row=row)),
                     keys.flatmap(rewritten),
                     keys.map(lambda key: Attempt("delete", HISTORY, key)))


def membership_attempts(stack: Stack, who: Identity) -> st.SearchStrategy[Attempt]:
    seeded = stack.seed.tables[MEMBERS]
    keys = targets(stack, who, MEMBERS)
    # New memberships only: an existing one would be a key conflict, not an access rule.
    fresh = sorted((org, user) for org in (ORG1, ORG2, NOBODYS_ORG) for user in USERS
                   if (org, user) not in seeded)
    joins = st.sampled_from(fresh).map(lambda pair: Member(*pair))

    def moved(key: object) -> st.SearchStrategy[Attempt]:
        assert isinstance(key, tuple)
        return joins.filter(lambda m: m.org == key[0] or m.user == key[1]).map(
            lambda new: Attempt("update", MEMBERS, key, new))

    return st.one_of(joins.map(lambda row: Attempt("insert", MEMBERS, row=row)),
                     keys.flatmap(moved),
                     keys.map(lambda key: Attempt("delete", MEMBERS, key)))


def attempts(stack: Stack, who: Identity) -> st.SearchStrategy[Attempt]:
    def for_table(table: str) -> st.SearchStrategy[Attempt]:
        if table in MEMORY_TABLES:
            writes = memory_attempts(stack, who, table)
        elif table == RELATIONSHIPS:
            writes = edge_attempts(stack, who)
        elif table == HISTORY:
            writes = history_attempts(stack, who)
        else:
            writes = membership_attempts(stack, who)
        return st.one_of(st.just(Attempt("select", table)), writes)

    return st.sampled_from(tables_of(stack.config)).flatmap(for_table)


# --- the deployments -------------------------------------------------------------------------


def roles_of(config: Config, database: TestDatabase) -> dict[Kind, str]:
    if config.target == "supabase":
        return {"app": app_role_for(database), "authenticated": "authenticated",
                "anon": "anon", "service": "service_role"}
    names = project_roles_for(database)
    return {"app": names["appRole"], "readonly": names["readonlyRole"],
            "service": names["serviceRole"]}


def _app_role_works(conn: psycopg.Connection, app_role: str) -> bool:
    try:
        act_as(conn, app_role, None, {"mem0.user_id": U1})
        conn.execute("SELECT public.mem0_user_id()")
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False
    finally:
        conn.rollback()


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: c.id)
def stack(request: pytest.FixtureRequest, pg_server: PgServer,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config: Config = request.param
    state_dir = tmp_path_factory.mktemp("rls")
    with deployed_stack(pg_server, state_dir, **config.settings()) as database:
        roles = roles_of(config, database)
        with database.connect() as admin:
            with admin.transaction():
                seed(admin, config.tenancy)
        with psycopg.connect(database.dsn) as tokens, psycopg.connect(database.dsn) as plain:
            state = read_state(plain, config.tenancy)
            plain.rollback()
            works = _app_role_works(plain, roles["app"])
            yield Stack(config, database, roles, state, tokens, plain, works)


# --- the properties --------------------------------------------------------------------------


def every_identity(stack: Stack) -> list[Identity]:
    """Each kind of caller, with and without a user and a session."""
    kinds: list[Kind] = ["app"] if stack.app_role_works else []
    kinds += ["readonly"] if stack.config.target == "postgres" else ["authenticated"]
    people: list[Identity] = [Identity("service")]
    if stack.config.target == "supabase":
        people.append(Identity("anon"))
    for kind in kinds:
        for user in (*USERS, None):
            for run in (None, RUN1, RUN2):
                people.append(Identity(kind, user, run))
    return people


def difference(stack: Stack, table: str, expected: Outcome, got: Outcome) -> str:
    """Expected against got; for reads, the rows in question with their owners."""
    if expected.result != "rows" or got.result != "rows":
        return f"expected {expected}, got {got}"
    rows = stack.seed.tables[table]
    leaked = [rows.get(key, key) for key in sorted(got.rows - expected.rows, key=str)]
    hidden = [rows.get(key, key) for key in sorted(expected.rows - got.rows, key=str)]
    return (f"read {len(leaked)} rows the rules forbid {leaked[:5]}, and missed "
            f"{len(hidden)} rows the rules allow {hidden[:5]}")


def check(stack: Stack, who: Identity, attempt: Attempt) -> str | None:
    """Run one attempt as `who` and roll it back; a description of the first difference
    from the oracle, or None. A write that went through is also checked for its effects,
    all of them: exactly the row it aimed at, the history rows the trigger adds, the edges
    a memory's deletion cascades to, and nothing else in any table."""
    conn = stack.become(who)
    try:
        expected = attempt.expected(Oracle(stack.config, who, stack.seed))
        got = attempt.run(conn)
        if got != expected:
            return f"{who}: {attempt}: {difference(stack, attempt.table, expected, got)}"
        if attempt.verb == "select" or got.result != "affected" or got.affected == 0:
            return None
        conn.execute("RESET ROLE")  # back to the superuser, who sees every row
        after = read_state(conn, stack.config.tenancy)
        want, new_history = attempt.applied(stack.seed)
        history = after.tables.pop(HISTORY)
        want.tables.pop(HISTORY)
        added = sorted((c for k, c in history.items() if k not in stack.seed.tables[HISTORY]),
                       key=str)
        kept = {k: c for k, c in history.items() if k in stack.seed.tables[HISTORY]}
        if after.tables != want.tables:
            changed = {t for t in want.tables if after.tables.get(t) != want.tables[t]}
            return f"{who}: {attempt}: went through, but tables {sorted(changed)} differ"
        if kept != stack.seed.tables[HISTORY] or added != sorted(new_history, key=str):
            return f"{who}: {attempt}: history has {added}, expected {new_history}"
        return None
    finally:
        conn.rollback()


def test_each_identity_reads_exactly_what_the_rules_allow(stack: Stack) -> None:
    """Every caller, every table, SELECT of everything: the exact set of rows."""
    problems = [problem for who in every_identity(stack)
                for table in tables_of(stack.config)
                if (problem := check(stack, who, Attempt("select", table)))]
    assert problems == [], "\n".join(problems)


def test_every_attempt_matches_the_rules(stack: Stack) -> None:
    """Hypothesis draws who, which table and what: reads, inserts owned by anyone, updates
    of visible and invisible rows (moving them to another owner, organisation or
    session), deletions. No attempt may read, change or create a row across a boundary,
    and each refusal takes the documented form (an error or 0 rows)."""

    @settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(st.data())
    def attempt(data: st.DataObject) -> None:
        who = data.draw(identities(stack), label="who")
        what = data.draw(attempts(stack, who), label="attempt")
        problem = check(stack, who, what)
        assert problem is None, problem

    attempt()


def test_the_app_role_sees_its_rows_on_its_own_connection(stack: Stack) -> None:
    """mem0's own situation: a fresh LOGIN connection of the app role that never heard of
    a token, first without a user (every row with appRoleIdentity trusted or optional,
    none with required), then naming its user with mem0.user_id (still every row when
    trusted). On Supabase this needs USAGE on
    schema auth, which Supabase gives only its API roles: mem0_user_id() calls
    auth.uid()."""
    app = stack.roles["app"]
    every_row = len(stack.seed.tables[MEMORIES])
    with psycopg.connect(role_url(stack.database.dsn, app, APP_PASSWORD),
                         autocommit=True) as conn:
        anonymous = conn.execute("SELECT count(*) FROM public.memories").fetchone()
        conn.execute("SELECT set_config('mem0.user_id', %s, false)", (U1,))
        named = conn.execute("SELECT count(*) FROM public.memories").fetchone()
    oracle = Oracle(stack.config, Identity("app", U1), stack.seed)
    assert anonymous == (0 if stack.config.app_identity == "required" else every_row,)
    assert named == (len(oracle.select(MEMORIES).rows),)
    assert stack.app_role_works


def test_history_keeps_a_sessions_rows_in_that_session(stack: Stack) -> None:
    """sessionScope: a session's memories are visible only in that session; their history
    holds their payloads, so it is visible only there too."""
    if not stack.config.session:
        pytest.skip("sessionScope is off in this configuration")
    kind: Kind = "readonly" if stack.config.target == "postgres" else "authenticated"
    outside, inside = Identity(kind, U1), Identity(kind, U1, RUN1)
    oracle = Oracle(stack.config, outside, stack.seed)
    session_memories = {key for key, m in stack.seed.tables[MEMORIES].items()
                        if isinstance(m, Memory) and m.run == RUN1 and m.user == U1
                        and oracle.reads(MEMORIES, replace(m, run=None))}
    assert session_memories, "the seed has session rows this user may otherwise read"
    seen = {}
    for who in (outside, inside):
        conn = stack.become(who)
        try:
            seen[who] = {memory_id for (memory_id,) in conn.execute(
                "SELECT DISTINCT memory_id::text FROM public.memory_history")}
        finally:
            conn.rollback()
    assert seen[outside] & session_memories == set()
    assert session_memories <= seen[inside]


def test_the_headline_rules_hold_without_the_oracle(stack: Stack) -> None:
    """The brief's rules stated directly, as a cross-check of the oracle itself: the service
    role reads every row; anon gets permission denied for everything; readonly writes
    nothing; the app role without a user reads every row with appRoleIdentity trusted or
    optional and none with required; a signed-in user reads only rows of their own (or of their
    organisations), or shared agent rows."""
    config, seeded = stack.config, stack.seed.tables

    def run(who: Identity, attempt: Attempt) -> Outcome:
        conn = stack.become(who)
        try:
            return attempt.run(conn)
        finally:
            conn.rollback()

    for table in tables_of(config):
        everything = frozenset(seeded[table])
        assert run(Identity("service"), Attempt("select", table)).rows == everything, table
        if config.target == "supabase":
            for attempt in (Attempt("select", table), Attempt("delete", table, min(
                    seeded[table], key=str))):
                assert run(Identity("anon"), attempt) == DENIED, (table, attempt.verb)
        else:
            for user in (None, U1):
                got = run(Identity("readonly", user), Attempt("delete", table, min(
                    seeded[table], key=str)))
                assert got == DENIED, (table, user)
        if stack.app_role_works:
            got = run(Identity("app"), Attempt("select", table))
            assert got.rows == (frozenset() if config.app_identity == "required"
                                else everything), table
    kind: Kind = "readonly" if config.target == "postgres" else "authenticated"
    for user in USERS:
        orgs = {org for org, member in MEMBERSHIPS if member == user}
        admin_of = {org for org, admin in ADMINS if admin == user} if config.admins else set()
        got = run(Identity(kind, user), Attempt("select", MEMORIES))
        if config.tenancy == "service":
            assert got == DENIED
            continue
        for key in got.rows:
            row = seeded[MEMORIES][key]
            assert isinstance(row, Memory)
            mine = row.org in orgs if config.tenancy == "org" else row.user == user
            shared = config.shared and row.user is None and row.agent is not None
            assert mine or shared, (user, row)
            assert shared or not config.session or row.run is None \
                or row.org in admin_of, (user, row)
