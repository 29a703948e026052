"""The deployed schema does its job: graph, history, times, search function and plans.

Each test deploys the real program through the Pulumi CLI into a fresh database and
then works as the app role (DML only), the way an application would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import errors as pg_errors

from tests.conftest import APP_PASSWORD, TestDatabase, app_role_for

Connect = Callable[[], psycopg.Connection]


@pytest.fixture
def as_app(make_stack, database: TestDatabase) -> Iterator[Connect]:
    """Deploy (3-dimensional vectors keep hand-written rows short) and connect as the app role."""
    make_stack(dimensions=3).up().raise_for_error()
    dsn = database.server.dsn_for(database.name, user=app_role_for(database),
                                  password=APP_PASSWORD)
    yield lambda: psycopg.connect(dsn, autocommit=True)


def add_memory(conn: psycopg.Connection, text: str, user: str = "alice",
               vector: str = "[1,0,0]") -> uuid.UUID:
    memory_id = uuid.uuid4()
    conn.execute("INSERT INTO public.memories (id, vector, payload) VALUES (%s, %s, %s)",
                 (memory_id, vector, json.dumps({"data": text, "user_id": user})))
    return memory_id


def link(conn: psycopg.Connection, source: uuid.UUID, target: uuid.UUID, strength: float,
         kind: str = "related_to") -> None:
    conn.execute("INSERT INTO public.memory_relationships (source_memory_id, target_memory_id,"
                 " relationship_type, strength, user_id) VALUES (%s, %s, %s, %s, 'alice')",
                 (source, target, kind, strength))


def neighbours(conn: psycopg.Connection, start: uuid.UUID, depth: int
               ) -> dict[uuid.UUID, tuple[int, list[uuid.UUID], float]]:
    rows = conn.execute("SELECT neighbour_id, depth, path, strength FROM "
                        "public.memory_neighbours(%s, %s)", (start, depth)).fetchall()
    return {n: (d, p, round(s, 6)) for n, d, p, s in rows}


def test_traversal_finds_one_and_two_hop_neighbours_through_cycles(as_app: Connect) -> None:
    with as_app() as conn:
        a, b, c, d, e = (add_memory(conn, name) for name in "abcde")
        # a -> b -> c -> a is a cycle; a -> d -> c is a stronger way to c; b -> a goes back;
        # e hangs off c, three hops from a.
        for source, target, strength in ((a, b, 0.5), (b, c, 0.4), (c, a, 0.9), (a, d, 1.0),
                                         (d, c, 0.8), (b, a, 0.3), (c, e, 0.7)):
            link(conn, source, target, strength)
        assert neighbours(conn, a, 1) == {b: (1, [a, b], 0.5), d: (1, [a, d], 1.0)}
        # c is reached twice in two hops: the stronger path wins; a itself is never returned;
        # e (three hops) is out of reach.
        assert neighbours(conn, a, 2) == {b: (1, [a, b], 0.5), d: (1, [a, d], 1.0),
                                          c: (2, [a, d, c], 0.8)}
        assert neighbours(conn, c, 2) == {a: (1, [c, a], 0.9), e: (1, [c, e], 0.7),
                                          b: (2, [c, a, b], 0.45), d: (2, [c, a, d], 0.9)}
        assert neighbours(conn, e, 2) == {}
        with pytest.raises(pg_errors.InvalidParameterValue, match="max_depth must be 1 or 2"):
            conn.execute("SELECT * FROM public.memory_neighbours(%s, 3)", (a,))


def test_relationships_refuse_bad_edges_and_follow_deletes(as_app: Connect) -> None:
    with as_app() as conn:
        a, b = add_memory(conn, "a"), add_memory(conn, "b")
        link(conn, a, b, 1.0)
        with pytest.raises(pg_errors.CheckViolation, match="no_self_loop"):
            link(conn, a, a, 0.5)
        with pytest.raises(pg_errors.CheckViolation, match="strength_check"):
            link(conn, b, a, 1.5)
        with pytest.raises(pg_errors.UniqueViolation):
            link(conn, a, b, 0.2)
        with pytest.raises(pg_errors.ForeignKeyViolation):
            link(conn, a, uuid.uuid4(), 0.2)
        link(conn, a, b, 0.2, kind="caused_by")  # another type between the same two is fine
        conn.execute("DELETE FROM public.memories WHERE id = %s", (b,))
        assert conn.execute("SELECT count(*) FROM public.memory_relationships").fetchone() == (0,)


def test_the_database_keeps_created_at_and_updated_at(as_app: Connect) -> None:
    with as_app() as conn:
        memory = add_memory(conn, "first")
        created, updated = conn.execute("SELECT created_at, updated_at FROM public.memories "
                                        "WHERE id = %s", (memory,)).fetchone()  # type: ignore[misc]
        assert created == updated
        conn.execute("UPDATE public.memories SET payload = payload || '{\"data\": \"second\"}', "
                     "created_at = '2001-01-01' WHERE id = %s", (memory,))
        row = conn.execute("SELECT created_at, updated_at, user_id FROM public.memories "
                           "WHERE id = %s", (memory,)).fetchone()
        assert row is not None and row[0] == created and row[1] > updated
        assert row[2] == "alice"  # generated from the payload


def test_history_records_every_change_without_the_vector(as_app: Connect) -> None:
    with as_app() as conn:
        memory = add_memory(conn, "before", vector="[1,2,3]")
        conn.execute("UPDATE public.memories SET vector = '[3,2,1]' WHERE id = %s", (memory,))
        conn.execute("UPDATE public.memories SET payload = %s WHERE id = %s",
                     (json.dumps({"data": "after", "user_id": "alice"}), memory))
        conn.execute("DELETE FROM public.memories WHERE id = %s", (memory,))
        rows = conn.execute(
            "SELECT operation, old_value->'payload'->>'data', new_value->'payload'->>'data',"
            " vector_changed, user_id, old_value ? 'vector' OR new_value ? 'vector'"
            " FROM public.memory_history WHERE memory_id = %s ORDER BY id", (memory,)).fetchall()
    assert rows == [("create", None, "before", False, "alice", None),
                    ("update", "before", "before", True, "alice", False),
                    ("update", "before", "after", False, "alice", False),
                    ("delete", "after", None, False, "alice", None)]


def test_history_keeps_vectors_when_the_stack_asks(make_stack, database: TestDatabase) -> None:
    make_stack(dimensions=3, historyIncludesVectors=True).up().raise_for_error()
    with database.connect() as conn:
        memory = add_memory(conn, "v", vector="[1,2,3]")
        stored = conn.execute("SELECT new_value->>'vector' FROM public.memory_history "
                              "WHERE memory_id = %s", (memory,)).fetchone()
    assert stored == ("[1,2,3]",)


def test_match_memories_ranks_by_cosine_similarity_and_filters(as_app: Connect) -> None:
    with as_app() as conn:
        near = add_memory(conn, "near", vector="[1,0.1,0]")
        far = add_memory(conn, "far", vector="[0,1,0]")
        add_memory(conn, "bob's", user="bob", vector="[1,0,0]")
        rows = conn.execute("SELECT id, round(similarity::numeric, 3) FROM "
                            "public.match_memories('[1,0,0]', 5, %s)",
                            (json.dumps({"user_id": "alice"}),)).fetchall()
    assert [r[0] for r in rows] == [near, far]
    assert rows[1][1] == 0


def load_users(conn: psycopg.Connection, users: int, per_user: int, dims: int) -> None:
    conn.execute(
        "INSERT INTO public.memories (id, vector, payload)"
        " SELECT gen_random_uuid(),"
        "        (SELECT array_agg(random()::real) FROM generate_series(1, %s)"
        "         WHERE g.i IS NOT NULL)::vector,"
        "        jsonb_build_object('data', 'memory ' || g.i, 'user_id', 'user' || (g.i %% %s),"
        "                           'text_lemmatized', 'memory ' || g.i)"
        " FROM generate_series(1, %s) AS g(i)", (dims, users, users * per_user))
    conn.execute("ANALYZE public.memories")


def plan(conn: psycopg.Connection, sql: str, params: tuple[object, ...]) -> str:
    rows = conn.execute(f"EXPLAIN {sql}", params).fetchall()
    return "\n".join(r[0] for r in rows)


def test_mem0_searches_use_the_right_index(make_stack, database: TestDatabase) -> None:
    """mem0's exact search SQL (mem0-contract.md 3 and 8), with its parameters bound."""
    make_stack(dimensions=8).up().raise_for_error()
    with database.connect() as conn:
        load_users(conn, users=100, per_user=100, dims=8)
        query = "[" + ",".join(["0.5"] * 8) + "]"
        filtered = plan(conn, "SELECT id, vector <=> %s::vector AS distance, payload FROM "
                              "\"memories\" WHERE payload->>%s = %s ORDER BY distance LIMIT %s",
                        (query, "user_id", "user7", 80))
        unfiltered = plan(conn, "SELECT id, vector <=> %s::vector AS distance, payload FROM "
                                "\"memories\" ORDER BY distance LIMIT %s", (query, 80))
        # mem0's keyword search, here across all users so only the GIN index can serve it
        keyword = plan(conn, "SELECT id, ts_rank_cd(to_tsvector('simple', "
                             "payload->>'text_lemmatized'), plainto_tsquery('simple', %s)) "
                             "AS score, payload FROM \"memories\" WHERE to_tsvector('simple', "
                             "payload->>'text_lemmatized') @@ plainto_tsquery('simple', %s) "
                             "ORDER BY score DESC LIMIT %s", ("memory 42", "memory 42", 80))
    # one user's 100 rows come from a user_id index and are sorted exactly, rather than
    # walking the HNSW graph and throwing away 99% of what it finds; the (user_id, agent_id)
    # index leads with mem0's user expression, so the planner may take either
    assert "Index Cond: ((payload ->> 'user_id'::text) = 'user7'::text)" in filtered
    assert any(f"on {index}" in filtered
               for index in ("memories_user_id_idx", "memories_user_agent_idx"))
    assert "memories_vector_idx" not in filtered
    assert "memories_vector_idx" in unfiltered
    assert "Bitmap Index Scan on memories_text_lemmatized_idx" in keyword
