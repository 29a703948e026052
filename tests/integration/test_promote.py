"""mem0_promote_session(run_id, ids) against a real PostgreSQL: a session's memories moved
to the user level under the caller's own row-level security.

The stack is deployed once through the Pulumi CLI with sessionScope on and the app role
bound to the user its connection names (appRoleIdentity required), the way a per-tenant
mem0 pool connects; every test works on a copy of it. Rows are written with mem0's own
statement shapes (as a superuser, which row-level security does not bind), then the
function is called as the app role with mem0.user_id and mem0.run_id set. Forbidden
promotions (another session's ids, another user's, a caller outside the session) are
tried and must promote nothing and change no row.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors

from components import mem0
from components.connection import role_url
from tests.conftest import APP_PASSWORD, TestDatabase, project_roles_for
from tests.integration.test_backup import cloned
from tests.integration.test_mem0_acceptance import mem0_client as mem0_client
from tests.support.supabase import deployed_stack
from tests.support.testbed import PgServer

DIMS = 16
CONFIG: dict[str, object] = {"sessionScope": True, "appRoleIdentity": "required",
                             "dimensions": DIMS}
PROMOTE = "SELECT public.mem0_promote_session(%s, %s::uuid[])"
RUN1, RUN2 = "run-1", "run-2"


@pytest.fixture(scope="module")
def template(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[TestDatabase]:
    with deployed_stack(pg_server, tmp_path_factory.mktemp("state"), "dev", **CONFIG) as db:
        yield db


@pytest.fixture
def db(pg_server: PgServer, template: TestDatabase) -> Iterator[TestDatabase]:
    """A copy of the deployed stack; its roles are the template's (named after it)."""
    with cloned(pg_server, template) as copy:
        ROLES[copy.name] = project_roles_for(template)
        yield copy
        del ROLES[copy.name]


ROLES: dict[str, dict[str, str]] = {}  # a copy's name -> the stack's roles


def app_role(db: TestDatabase) -> str:
    return ROLES[db.name]["appRole"]


def app_url(db: TestDatabase, user: str | None, run: str | None = None) -> str:
    """The app role's URL naming `user` (and the session `run`) as it connects, the way a
    per-tenant pool's URL does (docs/security.md)."""
    options = " ".join(f"-c {key}={value}" for key, value in
                       (("mem0.user_id", user), ("mem0.run_id", run)) if value)
    url = role_url(db.dsn, app_role(db), APP_PASSWORD)
    if not options:
        return url
    return f"{url}{'&' if '?' in url else '?'}options={quote(options)}"


@contextmanager
def app(db: TestDatabase, user: str | None, run: str | None = None
        ) -> Iterator[psycopg.Connection]:
    with psycopg.connect(app_url(db, user, run), autocommit=True) as conn:
        yield conn


def vector(rng: random.Random) -> list[float]:
    return [rng.uniform(-1.0, 1.0) for _ in range(DIMS)]


def add(db: TestDatabase, text: str, user: str | None, run: str | None,
        rng: random.Random, **extra: Any) -> str:
    """A memory as mem0 inserts it (as a superuser: the seed is not under test)."""
    memory = str(uuid.uuid4())
    fields = {**extra, **({"run_id": run} if run else {})}
    with db.connect() as conn:
        conn.execute("INSERT INTO public.memories (id, vector, payload) VALUES (%s, %s, %s)",
                     (memory, vector(rng), json.dumps(mem0.payload(text, user_id=user,
                                                                   **fields))))
    return memory


def add_entity(db: TestDatabase, text: str, user: str, run: str, linked: list[str],
               rng: random.Random) -> str:
    """An entity row as mem0's entity store writes it (payload: data, entity_type,
    linked_memory_ids and the add's scoping ids)."""
    entity = str(uuid.uuid4())
    with db.connect() as conn:
        conn.execute("INSERT INTO public.memories_entities (id, vector, payload) VALUES "
                     "(%s, %s, %s)",
                     (entity, vector(rng), json.dumps({
                         "data": text, "entity_type": "PROPER", "linked_memory_ids": linked,
                         "user_id": user, "run_id": run})))
    return entity


def rows(db: TestDatabase, table: str = "memories") -> dict[str, tuple[Any, ...]]:
    """Every row of `table` as the superuser reads it: id -> (payload, vector text,
    run_id column, created_at, updated_at)."""
    with db.connect() as conn:
        found = conn.execute(f"SELECT id::text, payload, vector::text, run_id, created_at, "
                             f"updated_at FROM public.{table}").fetchall()
    return {r[0]: tuple(r[1:]) for r in found}


def promote(conn: psycopg.Connection, run: str | None, ids: list[str] | None) -> int:
    row = conn.execute(PROMOTE, (run, ids)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def seeded(db: TestDatabase) -> dict[str, str]:
    """alice: a user-level memory, three in run-1, one in run-2; bob: one in run-1 (the
    same session name) and one at user level."""
    rng = random.Random(19)
    return {
        "alice": add(db, "Alice prefers window seats", "alice", None, rng),
        "a1": add(db, "Alice is allergic to peanuts", "alice", RUN1, rng),
        "a2": add(db, "Alice's passport expires in May", "alice", RUN1, rng,
                  agent_id="travel"),
        "a3": add(db, "Alice is looking at flights to Oslo", "alice", RUN1, rng),
        "a4": add(db, "Alice booked a hotel in Bergen", "alice", RUN2, rng),
        "b1": add(db, "Bob is vegetarian", "bob", RUN1, rng),
        "bob": add(db, "Bob keeps bees", "bob", None, rng),
    }


# --- promotion --------------------------------------------------------------------------------

def test_promoted_rows_lose_run_id_keep_the_rest_and_history_holds_before_and_after(
        db: TestDatabase, seeded: dict[str, str]) -> None:
    before = rows(db)
    with app(db, "alice", RUN1) as conn:
        assert promote(conn, RUN1, [seeded["a1"], seeded["a2"]]) == 2
    after = rows(db)
    for key in ("a1", "a2"):
        old, new = before[seeded[key]], after[seeded[key]]
        expected = {k: v for k, v in old[0].items() if k != "run_id"}
        assert "run_id" in old[0] and new[0] == expected  # only the key went
        assert new[1] == old[1]  # the vector
        assert (old[2], new[2]) == (RUN1, None)  # the generated column follows
        assert new[3] == old[3] and new[4] > old[4]  # created_at kept, updated_at moved
    assert after[seeded["a2"]][0]["agent_id"] == "travel"  # other scoping keys stay
    untouched = set(seeded.values()) - {seeded["a1"], seeded["a2"]}
    assert {i: after[i] for i in untouched} == {i: before[i] for i in untouched}

    with db.connect() as conn:
        history = conn.execute(
            "SELECT operation, old_value, new_value, vector_changed, run_id, user_id "
            "FROM public.memory_history WHERE memory_id = %s ORDER BY id",
            (seeded["a1"],)).fetchall()
    assert [h[0] for h in history] == ["create", "update"]
    _operation, old_value, new_value, vector_changed, run, user = history[-1]
    assert old_value["payload"] == before[seeded["a1"]][0] and old_value["run_id"] == RUN1
    assert new_value["payload"] == after[seeded["a1"]][0] and new_value["run_id"] is None
    assert (vector_changed, run, user) == (False, None, "alice")

    # The session's own rows at user level now, seen by alice outside any session.
    with app(db, "alice") as conn:
        visible = {r[0] for r in conn.execute("SELECT id::text FROM public.memories")}
    assert visible == {seeded["alice"], seeded["a1"], seeded["a2"]}


def test_another_sessions_and_another_users_ids_are_skipped(
        db: TestDatabase, seeded: dict[str, str]) -> None:
    before = rows(db)
    with app(db, "alice", RUN1) as conn:
        # run-2's row names another session; bob's row is in run-1 but not alice's; her
        # user-level row is in no session.
        assert promote(conn, RUN1, [seeded["a4"], seeded["b1"], seeded["bob"],
                                    seeded["alice"]]) == 0
        # Asking for run-2 from inside run-1: its rows are not visible here.
        assert promote(conn, RUN2, [seeded["a4"]]) == 0
        assert promote(conn, RUN1, []) == 0
        assert rows(db) == before
        # Mixed: only alice's run-1 row among them moves, an unknown id is skipped.
        assert promote(conn, RUN1, [seeded["a3"], seeded["a4"], seeded["b1"],
                                    str(uuid.uuid4()), seeded["a3"]]) == 1
    after = rows(db)
    assert after[seeded["a3"]][2] is None
    assert {i: r for i, r in after.items() if i != seeded["a3"]} == \
        {i: r for i, r in before.items() if i != seeded["a3"]}


def test_a_caller_outside_the_session_can_neither_see_nor_promote_it(
        db: TestDatabase, seeded: dict[str, str]) -> None:
    before = rows(db)
    session = [seeded["a1"], seeded["a2"], seeded["a3"]]
    for user, run in (("alice", None), ("alice", RUN2), ("bob", RUN1), (None, RUN1)):
        with app(db, user, run) as conn:
            seen = conn.execute("SELECT count(*) FROM public.memories WHERE id = ANY(%s::uuid[])",
                                (session,)).fetchone()
            assert seen == (0,), (user, run)
            assert promote(conn, RUN1, session) == 0, (user, run)
    # bob inside his own run-1 cannot reach alice's run-1 rows either, only his own.
    with app(db, "bob", RUN1) as conn:
        assert promote(conn, RUN1, [*session, seeded["b1"]]) == 1
    after = rows(db)
    assert after[seeded["b1"]][2] is None
    assert {i: r for i, r in after.items() if i != seeded["b1"]} == \
        {i: r for i, r in before.items() if i != seeded["b1"]}


def test_only_the_roles_that_write_memories_may_call_it(
        db: TestDatabase, seeded: dict[str, str]) -> None:
    roles = ROLES[db.name]
    with db.connect() as conn:
        may = {key: conn.execute(
            "SELECT has_function_privilege(%s, 'public.mem0_promote_session(text, uuid[])',"
            " 'EXECUTE')", (roles[key],)).fetchone() for key in
            ("appRole", "readonlyRole", "serviceRole", "ownerRole")}
        public = conn.execute(
            "SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a WHERE p.proname = "
            "'mem0_promote_session' AND a.grantee = 0").fetchone()
        definer, config = conn.execute(
            "SELECT prosecdef, proconfig FROM pg_proc WHERE proname = "
            "'mem0_promote_session'").fetchone() or (None, None)
    assert may == {"appRole": (True,), "readonlyRole": (False,), "serviceRole": (True,),
                   "ownerRole": (True,)}  # the owner owns it
    assert public == (0,) and definer is False and config == ["search_path=\"\""]
    readonly = db.server.dsn_for(db.name, user=roles["readonlyRole"], password=APP_PASSWORD)
    with psycopg.connect(readonly, autocommit=True,
                         options="-c mem0.user_id=alice -c mem0.run_id=run-1") as conn, \
            pytest.raises(errors.InsufficientPrivilege):
        promote(conn, RUN1, [seeded["a1"]])
    assert rows(db)[seeded["a1"]][2] == RUN1


def test_bad_arguments_are_refused_naming_them_and_change_nothing(
        db: TestDatabase, seeded: dict[str, str]) -> None:
    before = rows(db)
    with app(db, "alice", RUN1) as conn:
        for run, ids, named in ((None, [seeded["a1"]], "run_id"), ("", [seeded["a1"]], "run_id"),
                                (RUN1, None, "ids")):
            with pytest.raises(errors.InvalidParameterValue, match=named):
                promote(conn, run, ids)
    assert rows(db) == before


def test_an_entity_follows_once_no_memory_of_the_session_links_it(
        db: TestDatabase, seeded: dict[str, str]) -> None:
    rng = random.Random(5)
    peanuts = add_entity(db, "peanuts", "alice", RUN1, [seeded["a1"]], rng)
    oslo = add_entity(db, "Oslo", "alice", RUN1, [seeded["a1"], seeded["a3"]], rng)
    bergen = add_entity(db, "Bergen", "alice", RUN2, [seeded["a4"]], rng)
    before = rows(db, "memories_entities")
    with app(db, "alice", RUN1) as conn:
        assert promote(conn, RUN1, [seeded["a1"]]) == 1
    after = rows(db, "memories_entities")
    assert after[peanuts][2] is None and "run_id" not in after[peanuts][0]
    assert after[oslo] == before[oslo]  # a3 still links it to the session
    assert after[bergen] == before[bergen]
    with app(db, "alice", RUN1) as conn:
        assert promote(conn, RUN1, [seeded["a3"]]) == 1
    assert rows(db, "memories_entities")[oslo][2] is None


def test_mem0_finds_the_promoted_memory_with_a_user_level_search(
        db: TestDatabase, mem0_client: ModuleType) -> None:
    def store(url: str) -> dict[str, Any]:
        return {"provider": "pgvector", "config": {
            "connection_string": url, "collection_name": "memories",
            "embedding_model_dims": DIMS}}

    in_session = mem0_client.memory(store(app_url(db, "alice", RUN1)), DIMS)
    user_level = mem0_client.memory(store(app_url(db, "alice")), DIMS)
    try:
        text = "Alice wants an aisle seat on night trains"
        [added] = in_session.add(text, user_id="alice", run_id=RUN1, infer=False)["results"]
        kept = in_session.add("Alice is in Oslo this week", user_id="alice", run_id=RUN1,
                              infer=False)["results"][0]["id"]
        assert [r["id"] for r in in_session.search(
            text, filters={"user_id": "alice", "run_id": RUN1})["results"]][:1] == [added["id"]]
        assert user_level.search(text, filters={"user_id": "alice"})["results"] == []
        assert user_level.get_all(filters={"user_id": "alice"})["results"] == []

        # mem0's Memory has no promote: the call goes through its own connection pool.
        with in_session.vector_store.connection_pool.connection() as conn:
            assert promote(conn, RUN1, [added["id"]]) == 1

        [hit] = user_level.search(text, filters={"user_id": "alice"}, explain=True)["results"]
        assert hit["id"] == added["id"] and hit["memory"] == text and "run_id" not in hit
        assert hit["score_details"]["semantic_score"] == pytest.approx(1.0, abs=1e-5)
        listed = {r["id"] for r in user_level.get_all(filters={"user_id": "alice"})["results"]}
        assert listed == {added["id"]}  # the other session memory stays in the session
        assert kept in {r["id"] for r in in_session.get_all(
            filters={"user_id": "alice", "run_id": RUN1})["results"]}
    finally:
        mem0_client.close(in_session)
        mem0_client.close(user_level)


# --- property: the count and the rows match the rules ----------------------------------------

USERS, RUNS = ("alice", "bob"), (RUN1, RUN2, None)
SEED_ROWS = [(user, run) for user in USERS for run in RUNS for _ in range(2)] + \
    [(None, RUN1)]  # a session row naming no user (nor agent): never promoted


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(caller=st.sampled_from(USERS), caller_run=st.sampled_from(RUNS),
       target=st.sampled_from((RUN1, RUN2)),
       picked=st.lists(st.integers(0, len(SEED_ROWS) - 1), max_size=8),
       unknown=st.booleans())
def test_exactly_the_callers_own_rows_of_its_session_are_promoted(
        db: TestDatabase, caller: str, caller_run: str | None, target: str,
        picked: list[int], unknown: bool) -> None:
    ids = [str(uuid.UUID(int=i + 1)) for i in range(len(SEED_ROWS))]
    asked = [ids[i] for i in picked] + ([str(uuid.uuid4())] if unknown else [])
    with db.connect() as conn, conn.transaction(force_rollback=True):
        for memory, (user, run) in zip(ids, SEED_ROWS, strict=True):
            conn.execute("INSERT INTO public.memories (id, vector, payload) VALUES "
                         "(%s, NULL, %s)", (memory, json.dumps(mem0.payload(
                             "x", user_id=user, **({"run_id": run} if run else {})))))
        conn.execute(f"SET LOCAL ROLE {app_role(db)}")
        conn.execute("SELECT set_config('mem0.user_id', %s, true), "
                     "set_config('mem0.run_id', %s, true)", (caller, caller_run or ""))
        count = promote(conn, target, asked)
        conn.execute("RESET ROLE")
        runs = dict(conn.execute("SELECT id::text, run_id FROM public.memories").fetchall())
    # The oracle, from the documented rules: the caller reaches its own rows, a session's
    # only inside that session; of those, the asked ones in `target` move.
    expected = {ids[i] for i in set(picked)
                if SEED_ROWS[i] == (caller, target) and caller_run == target}
    assert count == len(expected)
    assert runs == {memory: None if memory in expected else run
                    for memory, (_user, run) in zip(ids, SEED_ROWS, strict=True)}
