"""Acceptance: mem0ai 2.2.1's own `Memory` against the deployed stack, as the app role.

The stack is deployed by the real program (through the Pulumi CLI) into a fresh
database; mem0 then runs offline (mem0-contract.md 6: hash embedder, infer=False, SQLite
history in memory) with the exported `mem0Config` and nothing but the app role's DML
grants. Nothing stands in for the database: every assertion reads real rows and catalogs.
"""

from __future__ import annotations

import hashlib
import importlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import errors

from components import mem0
from components.connection import connect, tls_url
from components.introspect import catalog_snapshot
from tests.conftest import APP_PASSWORD, TestDatabase, app_role_for

if TYPE_CHECKING:
    from mem0 import Memory

DIMS = 64
COLLECTION = "memories"  # the stack's default `collection`
# mem0's unfiltered semantic search, verbatim (mem0-contract.md 3; pgvector.py `search`).
MEM0_SEARCH_SQL = mem0.Statements.verbatim(COLLECTION).search(filtered=False)
LIMIT = mem0.DEFAULT_SEARCH_LIMIT  # 80: Memory.search's default top_k 20, over-fetched
# Rows for the LIMIT 80 test. Below this the planner sorts a sequential scan, which returns
# 80 rows whatever ef_search is and so proves nothing. pgvector costs an HNSW scan by
# ef_search, so the role's ef_search=100 keeps 64-dim searches off the index up to ~3000
# rows (measured: seq scan at 3000, index at 4000; with ef_search=40 the index wins from
# ~1000). The test asserts the plan, so a planner change fails it instead of hollowing it.
MANY = 5000


@dataclass(frozen=True)
class Deployment:
    database: TestDatabase
    role: str
    role_dsn: str  # the app role's URL, as the test builds it independently of the stack
    mem0_config: dict[str, Any]  # the stack's `mem0Config` output
    secret_outputs: list[str]  # paths of the outputs Pulumi marks secret

    def as_role(self) -> psycopg.Connection:
        return psycopg.connect(self.role_dsn, autocommit=True)


@pytest.fixture(scope="session")
def mem0_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """tests.support.mem0_client, imported only now: mem0 reads MEM0_TELEMETRY and MEM0_DIR
    once, at import, and writes config.json into MEM0_DIR."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MEM0_TELEMETRY", "False")
        env.setenv("MEM0_DIR", str(tmp_path_factory.mktemp("mem0-dir")))
        env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        yield importlib.import_module("tests.support.mem0_client")


@pytest.fixture
def deployment(make_stack, database: TestDatabase) -> Deployment:
    report = make_stack(dimensions=DIMS).up().raise_for_error()
    role = app_role_for(database)
    return Deployment(database, role,
                      database.server.dsn_for(database.name, user=role, password=APP_PASSWORD),
                      report.outputs["mem0Config"], report.secret_outputs)


@pytest.fixture
def make_memory(deployment: Deployment, mem0_client: ModuleType
                ) -> Iterator[Callable[..., Memory]]:
    """Builds mem0 Memories from the exported config, unchanged except for `overrides` of its
    vector_store.config; closes their connection pools before the database is dropped."""
    built: list[Memory] = []

    def make(embedder_dims: int = DIMS, **overrides: Any) -> Memory:
        vector_store = {**deployment.mem0_config["vector_store"]}
        vector_store["config"] = {**vector_store["config"], **overrides}
        memory = mem0_client.memory(vector_store, embedder_dims)
        built.append(memory)
        return memory

    yield make
    for memory in built:
        mem0_client.close(memory)


def admin_rows(database: TestDatabase, query: str, params: tuple[object, ...] = ()
               ) -> list[tuple[Any, ...]]:
    with database.connect() as conn:
        return conn.execute(query, params or None).fetchall()


def history_rows(database: TestDatabase) -> list[tuple[Any, ...]]:
    return admin_rows(database, "SELECT id, memory_id::text, operation, old_value, new_value,"
                      " vector_changed, user_id, login_role FROM public.memory_history"
                      " ORDER BY id")


# --- 1. the whole API through mem0 -------------------------------------------------------------

def test_mem0_api_works_as_the_app_role(deployment: Deployment, make_memory) -> None:
    vs_config = deployment.mem0_config["vector_store"]["config"]
    # The exported config is the app role's, asking for TLS (sslMode auto: require on
    # target postgres), and mem0 takes it as-is.
    assert vs_config["connection_string"] == tls_url(deployment.role_dsn, "require")
    assert vs_config["connection_string"].endswith("sslmode=require")
    assert "mem0Config.vector_store.config.connection_string" in deployment.secret_outputs
    assert vs_config["collection_name"] == COLLECTION
    m = make_memory()
    assert m.vector_store.embedding_model_dims == DIMS
    assert m.vector_store.collection_name == COLLECTION

    text = "I love hiking in the Alps"
    added = m.add(text, user_id="alice", infer=False, metadata={"score": 7, "category": "hobby"})
    [item] = added["results"]
    assert item["memory"] == text and item["event"] == "ADD" and item["role"] == "user"
    memory_id = item["id"]
    assert str(uuid.UUID(memory_id)) == memory_id

    # The row as the database holds it: 64 dims, flat payload (contract 7), generated user_id.
    [(payload, dims, user_id)] = admin_rows(
        deployment.database, "SELECT payload, vector_dims(vector), user_id"
        " FROM public.memories WHERE id = %s", (memory_id,))
    assert dims == DIMS and user_id == "alice"
    assert set(payload) == {"data", "hash", "role", "score", "category", "user_id",
                            "created_at", "updated_at", "text_lemmatized"}
    assert payload["data"] == text and payload["score"] == 7
    assert payload["hash"] == hashlib.md5(text.encode()).hexdigest()
    assert payload["text_lemmatized"] == text  # no spaCy: the raw text

    got = m.get(memory_id)
    assert got is not None
    assert got["id"] == memory_id and got["memory"] == text and got["user_id"] == "alice"
    assert got["metadata"] == {"score": 7, "category": "hobby"}  # flattened, then regrouped
    assert got["score"] is None and got["hash"] == payload["hash"]

    bob = m.add("Bob keeps bees", user_id="bob", infer=False)["results"][0]["id"]
    scoped = m.add("Alice plans the Dolomites trip", user_id="alice", agent_id="planner",
                   run_id="trip-1", infer=False)["results"][0]["id"]

    [hit, *_] = m.search(text, filters={"user_id": "alice"}, explain=True)["results"]
    assert hit["id"] == memory_id and hit["memory"] == text
    assert hit["score_details"]["semantic_score"] == pytest.approx(1.0, abs=1e-5)
    assert hit["score_details"]["bm25_score"] > 0  # the keyword search ran too

    listed = m.get_all(filters={"user_id": "alice"})["results"]
    assert {r["id"] for r in listed} == {memory_id, scoped}
    assert all("score" not in r for r in listed)
    [planned] = [r for r in listed if r["id"] == scoped]
    assert (planned["agent_id"], planned["run_id"]) == ("planner", "trip-1")
    assert [r["id"] for r in m.get_all(filters={"user_id": "bob"})["results"]] == [bob]

    new_text = "I love climbing in the Dolomites"
    m.update(memory_id, text=new_text)
    updated = m.get(memory_id)
    assert updated is not None and updated["memory"] == new_text
    assert updated["hash"] == hashlib.md5(new_text.encode()).hexdigest()
    assert updated["created_at"] == got["created_at"] and updated["updated_at"] != got["updated_at"]
    assert updated["metadata"] == {"score": 7, "category": "hobby"}  # kept by the update

    m.delete(memory_id)
    assert m.get(memory_id) is None

    m.delete_all(user_id="alice")
    assert m.get_all(filters={"user_id": "alice"})["results"] == []
    assert admin_rows(deployment.database,
                      "SELECT id::text, user_id FROM public.memories") == [(bob, "bob")]

    history = m.history(memory_id)  # mem0's own (SQLite) history
    assert sorted(h["event"] for h in history) == ["ADD", "DELETE", "UPDATE"]
    by_event = {h["event"]: h for h in history}
    assert (by_event["ADD"]["old_memory"], by_event["ADD"]["new_memory"]) == (None, text)
    assert (by_event["UPDATE"]["old_memory"], by_event["UPDATE"]["new_memory"]) == (text,
                                                                                     new_text)
    assert by_event["DELETE"]["old_memory"] == new_text and by_event["DELETE"]["is_deleted"]
    assert [h["event"] for h in m.history(scoped)] == ["ADD", "DELETE"]  # from delete_all


# --- 2. no DDL ---------------------------------------------------------------------------------

def test_mem0_issues_no_ddl(deployment: Deployment, make_memory,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    role, database = deployment.role, deployment.database
    # (a) The role could not create anything even if mem0 tried.
    [(schema_create, database_create, owned)] = admin_rows(
        database, "SELECT has_schema_privilege(%s, 'public', 'CREATE'),"
        " has_database_privilege(%s, current_database(), 'CREATE'),"
        " (SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles"
        "  WHERE rolname = %s))", (role, role, role))
    assert (schema_create, database_create, owned) == (False, False, 0)
    with deployment.as_role() as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("CREATE TABLE public.x (i int)")

    # (b) mem0 took the "table exists" path for both of its stores, and the catalog (tables,
    # ACLs, indexes, triggers, functions, extensions) is the same after a full session.
    from mem0.vector_stores.pgvector import PGVector

    created: list[str] = []
    real_create_col = PGVector.create_col

    def watched_create_col(self: PGVector) -> None:
        created.append(self.collection_name)
        real_create_col(self)

    monkeypatch.setattr(PGVector, "create_col", watched_create_col)
    with connect(database.dsn) as conn, conn.cursor() as cur:
        before = catalog_snapshot(cur)
    assert f"table:public.{COLLECTION}" in before and "table:public.memory_history" in before

    m = make_memory()
    ids = [m.add(f"note {i}", user_id="dana", infer=False)["results"][0]["id"] for i in range(3)]
    m.search("note 1", filters={"user_id": "dana"})
    m.get_all(filters={"user_id": "dana"})
    m.update(ids[0], text="note zero")
    m.delete(ids[1])
    m.delete_all(user_id="dana")
    # The entity store (memories_entities) is lazy and only used with spaCy: reach it anyway.
    assert m.entity_store.list(filters={"user_id": "dana"}) == [[]]

    with connect(database.dsn) as conn, conn.cursor() as cur:
        after = catalog_snapshot(cur)
    assert created == []
    assert after == before


# --- 3. LIMIT 80 -------------------------------------------------------------------------------

def test_limit_80_returns_80_rows(deployment: Deployment, make_memory,
                                  mem0_client: ModuleType) -> None:
    m = make_memory()
    embed = mem0_client.HashEmbedder(DIMS).embed
    texts = [f"memory number {i}" for i in range(MANY)]
    # One executemany through mem0's own store (about 4 s): what add() does per memory,
    # without 5000 round trips, SQLite history rows and pool checkouts.
    m.vector_store.insert(vectors=[embed(t) for t in texts],
                          ids=[str(uuid.uuid4()) for _ in texts],
                          payloads=[{"data": t, "user_id": "erin"} for t in texts])
    # Fresh statistics, so the plan does not depend on when autovacuum last analyzed.
    with deployment.database.connect() as conn:
        conn.execute("ANALYZE public.memories")
        # The deployment's validation inserted 4 rows into the empty table and rolled them
        # back. pgvector keeps deleted elements in the hnsw graph (vacuum marks them, later
        # inserts reuse them), where they take places of the ef_search candidates: the
        # control below would return 36, not 40. A rebuilt index has none.
        conn.execute(f"REINDEX INDEX public.{COLLECTION}_vector_idx")
    query = embed("what does erin remember?")

    # A fresh app-role session carries the role's settings (the library must be loaded for
    # SHOW to report pgvector's own variables), and plans mem0's query on the HNSW index.
    with deployment.as_role() as conn:
        conn.execute("SELECT NULL::vector")
        assert conn.execute("SHOW hnsw.ef_search").fetchone() == ("200",)
        assert conn.execute("SHOW hnsw.iterative_scan").fetchone() == ("relaxed_order",)
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + MEM0_SEARCH_SQL,
                                                     (query, LIMIT)))
    assert f"Index Scan using {COLLECTION}_vector_idx" in plan, plan

    unfiltered = m.vector_store.search(query="q", vectors=query, top_k=LIMIT, filters=None)
    filtered = m.vector_store.search(query="q", vectors=query, top_k=LIMIT,
                                     filters={"user_id": "erin"})
    assert len({r.id for r in unfiltered}) == LIMIT == 80
    assert len({r.id for r in filtered}) == LIMIT

    # Memory.search itself asks for LIMIT 80 (top_k 20, over-fetched 4x) and gets 80 rows.
    asked: list[tuple[int, int]] = []
    real_search = m.vector_store.search

    def watched_search(**kwargs: Any) -> Any:
        found = real_search(**kwargs)
        asked.append((kwargs["top_k"], len(found)))
        return found

    m.vector_store.search = watched_search
    assert len(m.search("what does erin remember?", filters={"user_id": "erin"})["results"]) \
        == mem0.DEFAULT_TOP_K == 20
    assert asked == [(LIMIT, LIMIT)]

    # Control: pgvector's defaults in the same role's session cap the same SQL at 40 rows.
    with deployment.as_role() as conn:
        conn.execute("SET hnsw.ef_search = 40")
        conn.execute("SET hnsw.iterative_scan = off")
        assert len(conn.execute(MEM0_SEARCH_SQL, (query, LIMIT)).fetchall()) == 40


# --- 4. memory_history -------------------------------------------------------------------------

def test_every_change_lands_in_memory_history(deployment: Deployment, make_memory) -> None:
    m = make_memory()
    database = deployment.database
    old_text, new_text = "Frank drinks his coffee black", "Frank switched to green tea"
    memory_id = m.add(old_text, user_id="frank", infer=False)["results"][0]["id"]

    [create] = history_rows(database)
    _, target, operation, old_value, new_value, vector_changed, user_id, login_role = create
    assert (target, operation, old_value, vector_changed) == (memory_id, "create", None, False)
    assert new_value["payload"]["data"] == old_text and new_value["id"] == memory_id
    assert new_value["user_id"] == "frank"  # the generated column is part of the row
    assert "vector" not in new_value  # historyIncludesVectors is off by default
    assert (user_id, login_role) == ("frank", deployment.role)

    m.update(memory_id, text=new_text)
    updates = [r for r in history_rows(database) if r[2] == "update"]
    # mem0 runs `SET vector` then `SET payload`: two row versions, two history rows.
    assert [(r[1], r[5]) for r in updates] == [(memory_id, True), (memory_id, False)]
    vector_only, payload_change = updates
    assert vector_only[3]["payload"] == vector_only[4]["payload"]
    assert vector_only[3]["payload"]["data"] == old_text
    assert payload_change[3]["payload"]["data"] == old_text
    assert payload_change[4]["payload"]["data"] == new_text
    assert all("vector" not in r[3] and "vector" not in r[4] for r in updates)
    assert all(r[6] == "frank" and r[7] == deployment.role for r in updates)

    m.delete(memory_id)
    rows = history_rows(database)
    assert [r[2] for r in rows] == ["create", "update", "update", "delete"]
    _, target, operation, old_value, new_value, vector_changed, user_id, _ = rows[-1]
    assert (target, new_value, vector_changed, user_id) == (memory_id, None, False, "frank")
    assert old_value["payload"]["data"] == new_text and "vector" not in old_value


# --- 5. the history is append-only for the app role --------------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE public.memory_history SET operation = 'delete'",
    "DELETE FROM public.memory_history",
    "INSERT INTO public.memory_history (memory_id, operation) "
    "VALUES (gen_random_uuid(), 'create')",
    "TRUNCATE public.memory_history",
])
def test_app_role_cannot_rewrite_history(deployment: Deployment, make_memory,
                                         statement: str) -> None:
    m = make_memory()
    memory_id = m.add("Gina collects stamps", user_id="gina", infer=False)["results"][0]["id"]
    m.update(memory_id, text="Gina collects coins")
    before = history_rows(deployment.database)
    assert len(before) == 3

    with deployment.as_role() as conn:
        # The role may read its history...
        assert conn.execute("SELECT count(*) FROM public.memory_history").fetchone() == (3,)
        # ...but not change it.
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)
    assert history_rows(deployment.database) == before


# --- 6. wrong dimensions -----------------------------------------------------------------------

def test_wrong_dimension_insert_fails_with_pgvectors_error(deployment: Deployment,
                                                           make_memory) -> None:
    m = make_memory(embedder_dims=32, embedding_model_dims=32)
    with pytest.raises(errors.DataException, match="expected 64 dimensions, not 32"):
        m.add("Hal has a 32-dimensional mind", user_id="hal", infer=False)
    assert admin_rows(deployment.database, "SELECT (SELECT count(*) FROM public.memories),"
                      " (SELECT count(*) FROM public.memory_history)") == [(0, 0)]
    assert m.db.connection.execute("SELECT count(*) FROM history").fetchone() == (0,)

