"""mem0's search as mem0 connects: the app role's login, its role settings and policies.

A stack per appRoleIdentity is deployed through the real CLI, filled with skewed users
(one with thousands of memories, one with a handful), analysed, and then mem0 2.2.1's own
statements are planned on a LOGIN connection of the app role (its role settings apply at
login, as they do for mem0's pool). What must hold, and why (docs/performance.md):

- trusted (the default): the app role's policy is a literal `true`, which the planner
  drops, so mem0's filter `payload->>'user_id' = %s` is an index condition and the
  unfiltered search walks the vector index: no search reads the whole table;
- required: the policy `user_id = (SELECT mem0_user_id())` is itself an index condition;
- optional: the rule `(identity IS NULL) OR (user_id = identity)` is opaque to the
  planner, and mem0's filter (`->>` is not leakproof) may not run before it: a
  sequential scan. Pinned so the documented cost stays true.

Where the vectors live is tested too: the stack keeps a 1536-dim vector in the row
(STORAGE MAIN and toast_tuple_target), so mem0's search reads no TOAST.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.types.json import Jsonb

from components.connection import role_url
from components.mem0 import DEFAULT_SEARCH_LIMIT as MEM0_DEFAULT_LIMIT
from components.mem0 import Statements
from components.plans import indexes_in
from tests.conftest import APP_PASSWORD, TestDatabase, app_role_for
from tests.support.supabase import deployed_stack
from tests.support.testbed import PgServer

DIMS = 16
BIG, SMALL = "user-big", "user-small"
ROWS_BIG, ROWS_SMALL, ROWS_OTHERS, OTHERS = 4000, 5, 16000, 400
# mem0's searches as it sends them: unqualified names, found through the app role's path.
SEARCH = Statements.verbatim("memories").search()
UNFILTERED = Statements.verbatim("memories").search(filtered=False)


def _fill(database: TestDatabase) -> None:
    """Skewed users, as the deployer (a superuser: row security does not bind it)."""
    with database.connect() as conn:
        conn.execute(
            "INSERT INTO public.memories (id, vector, payload)"
            " SELECT gen_random_uuid(), (SELECT array_agg(random())::vector"
            "   FROM generate_series(1, %(dims)s) WHERE k > 0),"
            " jsonb_build_object('data', 'memory ' || k, 'user_id', CASE"
            "   WHEN k <= %(big)s THEN %(big_user)s"
            "   WHEN k <= %(big)s + %(small)s THEN %(small_user)s"
            "   ELSE 'user-' || (k %% %(others)s) END)"
            " FROM generate_series(1, %(rows)s) AS k",
            {"dims": DIMS, "big": ROWS_BIG, "small": ROWS_SMALL, "others": OTHERS,
             "rows": ROWS_BIG + ROWS_SMALL + ROWS_OTHERS, "big_user": BIG,
             "small_user": SMALL})
        conn.execute("VACUUM ANALYZE public.memories")


@pytest.fixture(scope="module", params=["trusted", "required", "optional"])
def stack(request: pytest.FixtureRequest, pg_server: PgServer,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TestDatabase]]:
    identity: str = request.param
    with deployed_stack(pg_server, tmp_path_factory.mktemp("plans"), target="postgres",
                        dimensions=DIMS, vectorIndexMethod="hnsw",
                        appRoleIdentity=identity) as database:
        _fill(database)
        yield identity, database


def _app(database: TestDatabase, user: str | None = None) -> psycopg.Connection:
    """A LOGIN connection of the app role, naming `user` when given (mem0.user_id)."""
    url = role_url(database.dsn, app_role_for(database), APP_PASSWORD)
    options = {"options": f"-c mem0.user_id={user}"} if user else {}
    return psycopg.connect(url, autocommit=True, **options)  # type: ignore[arg-type]


def _plan(conn: psycopg.Connection, statement: str, params: tuple[object, ...]) -> list[str]:
    return [row[0] for row in conn.execute(f"EXPLAIN {statement}", params).fetchall()]


def _query() -> str:
    return "[" + ",".join("0.5" for _ in range(DIMS)) + "]"


def test_the_app_role_logs_in_with_planner_friendly_settings(
        stack: tuple[str, TestDatabase]) -> None:
    _, database = stack
    with _app(database) as conn:
        settings = dict(conn.execute(
            "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
            (["random_page_cost", "hnsw.ef_search", "hnsw.iterative_scan",
              "plan_cache_mode"],)).fetchall())
    assert settings == {"random_page_cost": "1.1", "hnsw.ef_search": "200",
                        "hnsw.iterative_scan": "relaxed_order",
                        "plan_cache_mode": "force_custom_plan"}


def test_mem0s_searches_use_an_index_unless_the_rule_is_optional(
        stack: tuple[str, TestDatabase]) -> None:
    identity, database = stack
    user = BIG if identity == "required" else None  # required: a connection bound to one
    with _app(database, user) as conn:
        plans = {
            who: _plan(conn, SEARCH, (_query(), "user_id", who, MEM0_DEFAULT_LIMIT))
            for who in (BIG, SMALL)}
        plans["unfiltered"] = _plan(conn, UNFILTERED, (_query(), MEM0_DEFAULT_LIMIT))
    scans = {who: " ".join(plan) for who, plan in plans.items()}
    if identity == "optional":
        for who, plan in scans.items():
            assert "Seq Scan on memories" in plan, (who, plan)
        return
    for who in (BIG, SMALL):
        assert "Seq Scan" not in scans[who], (identity, who, plans[who])
        assert indexes_in(plans[who]), (identity, who, plans[who])
    if identity == "trusted":
        # mem0's own filter is an index condition: its expression index is used.
        assert "memories_user_id_idx" in scans[SMALL], plans[SMALL]
        assert indexes_in(plans["unfiltered"]) == ["memories_vector_idx"], plans["unfiltered"]
    if identity == "required":
        # Bound to BIG: the bare identity call is estimated as BIG, and the extended
        # statistics make policy and filter one condition: thousands of rows, not a few.
        estimate = next(line for line in plans[BIG] if "Scan" in line)
        rows = int(estimate.split(" rows=")[1].split(" ")[0])
        assert rows > ROWS_BIG // 4, plans[BIG]


def test_results_are_what_each_rule_allows(stack: tuple[str, TestDatabase]) -> None:
    """The fast plans change nothing about who sees what: mem0's filter returns the
    user's rows only, and a connection bound to one user sees no one else's."""
    identity, database = stack
    with _app(database, SMALL if identity != "trusted" else None) as conn:
        own = conn.execute(SEARCH, (_query(), "user_id", SMALL, MEM0_DEFAULT_LIMIT)).fetchall()
        other = conn.execute(SEARCH, (_query(), "user_id", BIG, MEM0_DEFAULT_LIMIT)).fetchall()
    assert len(own) == ROWS_SMALL and {r[2]["user_id"] for r in own} == {SMALL}
    # trusted and optional (identity set here only for optional) differ: optional binds
    # once a user is named; trusted never binds.
    assert len(other) == (MEM0_DEFAULT_LIMIT if identity == "trusted" else 0)


def test_a_1536_dimension_memory_is_kept_in_the_row(pg_server: PgServer,
                                                    tmp_path_factory: pytest.TempPathFactory
                                                    ) -> None:
    """STORAGE MAIN and toast_tuple_target: the vector and the payload stay in the heap
    row, so a search that reads rows reads no TOAST (a 1536-dim vector is 6 KB; pgvector
    stores it out of line by default)."""
    with deployed_stack(pg_server, tmp_path_factory.mktemp("storage"), target="postgres",
                        dimensions=1536) as database:
        with _app(database) as conn:
            for _ in range(20):
                conn.execute("INSERT INTO memories (id, vector, payload) VALUES (%s, %s, %s)",
                             (uuid.uuid4(), "[" + ",".join(["0.25"] * 1536) + "]",
                              Jsonb({"user_id": "u", "data": "a memory " * 30})))
        with database.connect() as admin:
            toast = admin.execute(
                "SELECT pg_relation_size(reltoastrelid) FROM pg_class"
                " WHERE oid = 'public.memories'::regclass").fetchone()
            heap = admin.execute("SELECT pg_relation_size('public.memories')").fetchone()
    assert toast == (0,)
    assert heap is not None and heap[0] >= 20 * 6144  # one row per 8 KB page


def test_over_2000_dimensions_mem0s_unchanged_search_uses_a_halfvec_index(
        pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    """text-embedding-3-large's 3072 dimensions: pgvector indexes at most 2000 of type
    vector, so the column is halfvec(3072). mem0 inserts a float list and searches with
    `vector <=> %s::vector`: the list takes the assignment cast, the query vector the
    implicit cast to halfvec, and the HNSW index orders the scan."""
    dims = 3072
    with deployed_stack(pg_server, tmp_path_factory.mktemp("halfvec"), target="postgres",
                        dimensions=dims, vectorIndexMethod="hnsw") as database:
        vectors = [[((i * 31 + j * 7) % 97) / 97 + 0.01 for j in range(dims)]
                   for i in range(30)]
        ids = [uuid.uuid4() for _ in vectors]
        with _app(database) as conn:
            with conn.cursor() as cur:  # mem0's insert: the vector as a Python list
                cur.executemany(
                    "INSERT INTO memories (id, vector, payload) VALUES (%s, %s, %s)",
                    [(i, v, Jsonb({"user_id": "u", "data": f"m{n}"}))
                     for n, (i, v) in enumerate(zip(ids, vectors, strict=True))])
            query = "[" + ",".join(str(x) for x in vectors[7]) + "]"
            with conn.transaction():
                conn.execute("SET LOCAL enable_seqscan = off")  # 30 rows: force the choice
                plan = _plan(conn, UNFILTERED, (query, MEM0_DEFAULT_LIMIT))
            found = conn.execute(UNFILTERED, (query, MEM0_DEFAULT_LIMIT)).fetchall()
        with database.connect() as admin:
            column = admin.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid ="
                " 'public.memories'::regclass AND attname = 'vector'").fetchone()
    assert column == ("halfvec(3072)",)
    assert indexes_in(plan) == ["memories_vector_idx"], plan
    assert found[0][0] == ids[7] and found[0][1] < 1e-3  # the same memory, ~0 distance
    assert len(found) == len(vectors)
