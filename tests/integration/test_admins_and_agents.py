"""Org admins and agent spaces (orgAdmins, agentSpaces), property-tested as the real roles.

Each configuration is deployed once through the Pulumi CLI. Hypothesis draws a world (who
belongs to which organisation as member or admin, and memories of random owners,
organisations, agents and sessions), which the superuser writes in a transaction; then a
caller acts as the stack's real roles (the bound app role naming its user with
mem0.user_id, or a PostgREST/Supabase token) and tries the thing: reading, updating,
deleting and inserting other people's and other agents' rows. Everything is rolled back,
except in the demotion property, which needs two sessions and commits (and cleans up).

The expected sets are written from the documented rules (docs/security.md, "Org admins"
and "Agent spaces"), never read back from the policies.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from tests.conftest import TestDatabase, app_role_for
from tests.support.supabase import act_as, deployed_stack, jwt_claims
from tests.support.testbed import PgServer


@dataclass(frozen=True)
class Config:
    target: Literal["postgres", "supabase"]
    app_identity: Literal["trusted", "required", "optional"]

    @property
    def id(self) -> str:
        return f"{self.target}-org-admins-agents-session-app-{self.app_identity}"

    def settings(self) -> dict[str, object]:
        return {"target": self.target, "tenancy": "org", "orgAdmins": True,
                "agentSpaces": True, "sessionScope": True,
                "appRoleIdentity": self.app_identity, "dimensions": 3}


# postgres: mem0's own connection, bound to its user (the app role is the writer there);
# supabase: signed-in users with tokens, beside a trusted app role.
CONFIGS = (Config("postgres", "required"), Config("supabase", "trusted"))

USERS = tuple(f"00000000-0000-4000-8000-{i:012d}" for i in range(1, 5))
ORGS = ("org-a", "org-b", "org-c")
AGENTS = ("agent-a", "agent-b")
RUNS = ("run-1", "run-2")
MEMBER, ADMIN = "member", "admin"
EXAMPLES = 100  # per property and configuration
RUN_COUNTS: Counter[str] = Counter()


@dataclass(frozen=True)
class Row:
    user: str | None
    org: str | None
    agent: str | None
    run: str | None

    def payload(self, data: str = "seed") -> dict[str, str]:
        fields = {"user_id": self.user, "org_id": self.org, "agent_id": self.agent,
                  "run_id": self.run}
        return {**{k: v for k, v in fields.items() if v is not None}, "data": data}


@dataclass(frozen=True)
class World:
    roles: dict[tuple[str, str], str]  # (org, user) -> member | admin
    rows: tuple[Row, ...]

    def orgs_of(self, user: str, role: str | None = None) -> set[str]:
        return {org for (org, member), r in self.roles.items()
                if member == user and (role is None or r == role)}


@dataclass(frozen=True)
class Caller:
    user: str
    agent: str | None = None
    run: str | None = None
    jwt: bool = False


class Rules:
    """The documented rules for one caller in one world (org tenancy, sessionScope,
    orgAdmins, agentSpaces)."""

    def __init__(self, world: World, who: Caller) -> None:
        self.who = who
        self.member_orgs = world.orgs_of(who.user)
        self.admin_orgs = world.orgs_of(who.user, ADMIN)

    def reads(self, row: Row) -> bool:
        session = row.run is None or row.run == self.who.run
        return (row.org in self.member_orgs and session) or row.org in self.admin_orgs

    def writes(self, row: Row) -> bool:
        session = row.run is None or row.run == self.who.run
        mine = row.org in self.member_orgs and row.user == self.who.user and session
        agent = self.who.agent is None or row.agent == self.who.agent
        return (mine or row.org in self.admin_orgs) and agent


# --- the deployments ------------------------------------------------------------------------


@dataclass
class Stack:
    config: Config
    database: TestDatabase
    conn: psycopg.Connection  # the superuser's, one transaction per example

    def write_world(self, world: World, conn: psycopg.Connection | None = None
                    ) -> dict[str, Row]:
        """The world's memberships and memories, written as the superuser; id -> row."""
        conn = conn or self.conn
        for (org, user), role in sorted(world.roles.items()):
            conn.execute("INSERT INTO public.memory_org_members (org_id, user_id, role) "
                         "VALUES (%s, %s, %s)", (org, user, role))
        ids = {}
        for row in world.rows:
            key = str(uuid.uuid4())
            conn.execute("INSERT INTO public.memories (id, vector, payload) "
                         "VALUES (%s, NULL, %s)", (key, Jsonb(row.payload())))
            ids[key] = row
        return ids

    def become(self, who: Caller, conn: psycopg.Connection | None = None) -> None:
        """Act as `who` for the rest of the transaction: the signed-in user of a token on
        supabase; on postgres the app role, naming its user as mem0's connection does
        (mem0.user_id, mem0.agent_id, mem0.run_id) or by a PostgREST token."""
        conn = conn or self.conn
        extra = {k: v for k, v in (("agent_id", who.agent), ("run_id", who.run)) if v}
        if self.config.target == "supabase":
            act_as(conn, "authenticated", jwt_claims(who.user, **extra))
        elif who.jwt:
            role = app_role_for(self.database)
            act_as(conn, role, jwt_claims(who.user, role=role, **extra))
        else:
            act_as(conn, app_role_for(self.database), None,
                   {"mem0.user_id": who.user,
                    **{f"mem0.{k}": v for k, v in extra.items()}})


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: c.id)
def stack(request: pytest.FixtureRequest, pg_server: PgServer,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config: Config = request.param
    with deployed_stack(pg_server, tmp_path_factory.mktemp("admins"),
                        **config.settings()) as database:
        with psycopg.connect(database.dsn) as conn:
            yield Stack(config, database, conn)


# --- strategies ------------------------------------------------------------------------------

ROLES = st.dictionaries(st.tuples(st.sampled_from(ORGS), st.sampled_from(USERS)),
                        st.sampled_from((MEMBER, ADMIN)), max_size=8)
ROWS = st.lists(st.builds(Row, st.sampled_from((*USERS, None)),
                          st.sampled_from((*ORGS, None)),
                          st.sampled_from((*AGENTS, None)),
                          st.sampled_from((*RUNS, None))), min_size=1, max_size=14)


@st.composite
def worlds_with_a(draw: st.DrawFn, role: str) -> tuple[World, str]:
    """A world and a user who is `role` in at least one organisation."""
    roles = draw(ROLES)
    org, user = draw(st.sampled_from(ORGS)), draw(st.sampled_from(USERS))
    roles[(org, user)] = role
    return World(roles, tuple(draw(ROWS))), user


def callers(stack: Stack, user: str, agent: st.SearchStrategy[str | None]
            ) -> st.SearchStrategy[Caller]:
    jwt = st.booleans() if stack.config.target == "postgres" else st.just(False)
    return st.builds(Caller, st.just(user), agent, st.sampled_from((*RUNS, None)), jwt)


EXAMPLE_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                            suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture])


def _visible(conn: psycopg.Connection, table: str = "memories") -> set[str]:
    column = "memory_id::text" if table == "memory_history" else "id::text"
    return {key for (key,) in conn.execute(f"SELECT {column} FROM public.{table}")}


def _rls_error(conn: psycopg.Connection, statement: str, params: tuple[object, ...]) -> bool:
    """Whether the statement is refused by row-level security (inside a savepoint)."""
    try:
        with conn.transaction():
            conn.execute(statement, params)
    except psycopg.errors.InsufficientPrivilege as error:
        assert "row-level security" in str(error), error
        return True
    return False


def _count(stack: Stack, name: str) -> None:
    RUN_COUNTS[f"{stack.config.id}: {name}"] += 1


def _report(stack: Stack, name: str) -> None:
    key = f"{stack.config.id}: {name}"
    print(f"\n{key}: {RUN_COUNTS[key]} hypothesis examples")
    assert RUN_COUNTS[key] >= EXAMPLES // 2, "hypothesis ran too few examples"


UPDATE = "UPDATE public.memories SET payload = payload || '{\"data\": \"edited\"}' WHERE id = %s"
DELETE = "DELETE FROM public.memories WHERE id = %s"
INSERT = "INSERT INTO public.memories (id, vector, payload) VALUES (%s, NULL, %s)"


# --- org admins ------------------------------------------------------------------------------


def test_an_admin_reads_and_manages_every_row_of_their_organisations(stack: Stack) -> None:
    """An admin reads every row of their organisations (every member's, every session's)
    and their history, updates and deletes each of them, inserts rows for other members
    there, and reaches nothing of organisations where they are not admin beyond what a
    member may."""

    @EXAMPLE_SETTINGS
    @given(st.data())
    def example(data: st.DataObject) -> None:
        world, admin = data.draw(worlds_with_a(ADMIN), label="world")
        who = data.draw(callers(stack, admin, st.none()), label="caller")
        rules = Rules(world, who)
        conn = stack.conn
        try:
            ids = stack.write_world(world)
            stack.become(who)
            expected = {key for key, row in ids.items() if rules.reads(row)}
            assert _visible(conn) == expected
            assert {k for k, r in ids.items() if r.org in rules.admin_orgs} <= expected
            assert _visible(conn, "memory_history") == expected  # each row's create
            for key, row in ids.items():
                want = int(rules.writes(row))
                assert conn.execute(UPDATE, (key,)).rowcount == want, (row, "update")
                assert conn.execute(DELETE, (key,)).rowcount == want, (row, "delete")
            other = next(u for u in USERS if u != admin)
            for org in ORGS:
                row = Row(other, org, None, None)
                refused = _rls_error(conn, INSERT, (str(uuid.uuid4()), Jsonb(row.payload())))
                assert refused == (org not in rules.admin_orgs), (org, "insert for another")
            _count(stack, "admin")
        finally:
            conn.rollback()

    example()
    _report(stack, "admin")


def test_an_admin_links_memories_only_inside_one_organisation(stack: Stack) -> None:
    """Edges keep their endpoint rule for admins: between two memories of the edge's own
    organisation that the admin can read (any member's), never into another one."""

    @EXAMPLE_SETTINGS
    @given(st.data())
    def example(data: st.DataObject) -> None:
        world, admin = data.draw(worlds_with_a(ADMIN), label="world")
        other = data.draw(st.sampled_from([u for u in USERS if u != admin]), label="other")
        rows = (Row(other, org, None, None) for org in ORGS for _ in range(2))
        world = World(world.roles, (*world.rows, *rows))
        who = Caller(admin)
        rules = Rules(world, who)
        conn = stack.conn
        try:
            ids = stack.write_world(world)
            stack.become(who)
            by_org = {org: [k for k, r in ids.items() if r == Row(other, org, None, None)]
                      for org in ORGS}
            for org in ORGS:
                source, target = by_org[org][:2]
                for label in ORGS:
                    refused = _rls_error(
                        conn, "INSERT INTO public.memory_relationships (source_memory_id, "
                        "target_memory_id, relationship_type, user_id, org_id) "
                        "VALUES (%s, %s, %s, %s, %s)", (source, target, label, other, label))
                    allowed = org in rules.admin_orgs and label == org
                    assert refused != allowed, (org, label)
            _count(stack, "edges")
        finally:
            conn.rollback()

    example()
    _report(stack, "edges")


def test_a_member_cannot_change_another_members_row(stack: Stack) -> None:
    """A member who is not admin of the organisation: another member's row there gives 0
    rows to UPDATE and DELETE, and an INSERT in their name is refused; their own rows are
    theirs to change."""

    @EXAMPLE_SETTINGS
    @given(st.data())
    def example(data: st.DataObject) -> None:
        world, member = data.draw(worlds_with_a(MEMBER), label="world")
        org = data.draw(st.sampled_from(sorted(world.orgs_of(member, MEMBER))), label="org")
        other = data.draw(st.sampled_from([u for u in USERS if u != member]), label="other")
        theirs, mine = Row(other, org, None, None), Row(member, org, None, None)
        world = World(world.roles, (*world.rows, theirs, mine))
        who = Caller(member)
        rules = Rules(world, who)
        conn = stack.conn
        try:
            ids = stack.write_world(world)
            stack.become(who)
            for key, row in ids.items():
                if row.org == org and row.user != member and org not in rules.admin_orgs:
                    assert conn.execute(UPDATE, (key,)).rowcount == 0, row
                    assert conn.execute(DELETE, (key,)).rowcount == 0, row
            forged = Row(other, org, None, None)
            assert _rls_error(conn, INSERT, (str(uuid.uuid4()), Jsonb(forged.payload()))) \
                == (org not in rules.admin_orgs)
            own = next(k for k, r in ids.items() if r == mine)
            assert conn.execute(UPDATE, (own,)).rowcount == 1
            _count(stack, "member")
        finally:
            conn.rollback()

    example()
    _report(stack, "member")


def test_demoting_an_admin_takes_effect_at_once(stack: Stack) -> None:
    """The service side demotes an admin (UPDATE the membership's role, committed from
    another session): the admin's very next statement, in the same open transaction,
    reads and writes as a member."""

    @EXAMPLE_SETTINGS
    @given(st.data())
    def example(data: st.DataObject) -> None:
        world, admin = data.draw(worlds_with_a(ADMIN), label="world")
        org = data.draw(st.sampled_from(sorted(world.orgs_of(admin, ADMIN))), label="org")
        other = next(u for u in USERS if u != admin)
        world = World(world.roles, (*world.rows, Row(other, org, None, None)))
        who = Caller(admin)
        before = Rules(world, who)
        demoted_world = World({**world.roles, (org, admin): MEMBER}, world.rows)
        after = Rules(demoted_world, who)
        with psycopg.connect(stack.database.dsn) as service:
            try:
                ids = stack.write_world(world, service)
                service.commit()
                stack.become(who)
                conn = stack.conn
                assert _visible(conn) == {k for k, r in ids.items() if before.reads(r)}
                service.execute("UPDATE public.memory_org_members SET role = 'member' "
                                "WHERE org_id = %s AND user_id = %s", (org, admin))
                service.commit()
                assert _visible(conn) == {k for k, r in ids.items() if after.reads(r)}
                theirs = next(k for k, r in ids.items() if r == Row(other, org, None, None))
                want = int(after.writes(Row(other, org, None, None)))
                assert want == 0
                assert conn.execute(UPDATE, (theirs,)).rowcount == 0
                assert conn.execute(DELETE, (theirs,)).rowcount == 0
                _count(stack, "demotion")
            finally:
                stack.conn.rollback()
                service.rollback()
                service.execute("TRUNCATE public.memories, public.memory_history, "
                                "public.memory_org_members CASCADE")
                service.commit()

    example()
    _report(stack, "demotion")


# --- agent spaces ----------------------------------------------------------------------------


def test_an_agent_writes_only_its_own_agents_rows(stack: Stack) -> None:
    """A caller with agent identity A, on rows it could otherwise write (its own, or its
    organisation's as admin): writing B's rows (or rows of no agent) is refused for real
    (0 rows to UPDATE and DELETE, an error to INSERT or to move a row to B), A's are its to
    write; reading is unchanged by the agent identity."""

    @EXAMPLE_SETTINGS
    @given(st.data())
    def example(data: st.DataObject) -> None:
        role = data.draw(st.sampled_from((MEMBER, ADMIN)), label="role")
        world, user = data.draw(worlds_with_a(role), label="world")
        org = data.draw(st.sampled_from(sorted(world.orgs_of(user, role))), label="org")
        agent, stranger = data.draw(st.permutations(AGENTS), label="agents")[:2]
        who = data.draw(callers(stack, user, st.just(agent)), label="caller")
        mine = {a: Row(user, org, a, None) for a in (agent, stranger, None)}
        world = World(world.roles, (*world.rows, *mine.values()))
        rules = Rules(world, who)
        unbound = Rules(world, Caller(user, None, who.run))
        conn = stack.conn
        try:
            ids = stack.write_world(world)
            stack.become(who)
            assert _visible(conn) == {k for k, r in ids.items() if unbound.reads(r)}
            for target in (stranger, None, agent):
                row = Row(user, org, target, None)
                assert _rls_error(conn, INSERT, (str(uuid.uuid4()), Jsonb(row.payload()))) \
                    == (target != agent), target
            for key, row in ids.items():
                want = int(rules.writes(row))
                assert want == 0 or row.agent == agent, row
                assert conn.execute(UPDATE, (key,)).rowcount == want, row
            own = next(k for k, r in ids.items() if r == mine[agent])
            moved = Jsonb(Row(user, org, stranger, None).payload())
            assert _rls_error(conn, "UPDATE public.memories SET payload = %s WHERE id = %s",
                              (moved, own))
            for key, row in ids.items():
                assert conn.execute(DELETE, (key,)).rowcount == int(rules.writes(row)), row
            _count(stack, "agent")
        finally:
            conn.rollback()

    example()
    _report(stack, "agent")


def test_without_an_agent_identity_writes_are_as_before(stack: Stack) -> None:
    """No agent identity: the caller writes the rows the other rules give it, of any agent
    or none."""

    @EXAMPLE_SETTINGS
    @given(st.data())
    def example(data: st.DataObject) -> None:
        role = data.draw(st.sampled_from((MEMBER, ADMIN)), label="role")
        world, user = data.draw(worlds_with_a(role), label="world")
        org = data.draw(st.sampled_from(sorted(world.orgs_of(user, role))), label="org")
        who = data.draw(callers(stack, user, st.none()), label="caller")
        world = World(world.roles, (*world.rows, *(Row(user, org, a, None)
                                                   for a in (*AGENTS, None))))
        rules = Rules(world, who)
        conn = stack.conn
        try:
            ids = stack.write_world(world)
            stack.become(who)
            for target in (*AGENTS, None):
                row = Row(user, org, target, None)
                assert not _rls_error(conn, INSERT, (str(uuid.uuid4()), Jsonb(row.payload())))
            for key, row in ids.items():
                want = int(rules.writes(row))
                if row.user == user and row.org == org and row.run is None:
                    assert want == 1, row
                assert conn.execute(UPDATE, (key,)).rowcount == want, row
                assert conn.execute(DELETE, (key,)).rowcount == want, row
            _count(stack, "no agent")
        finally:
            conn.rollback()

    example()
    _report(stack, "no agent")
