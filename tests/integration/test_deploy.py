"""The real program, applied through the deploy driver to a real database.

These are the foundation's acceptance runs: create, no-op, change, drift and heal,
destroy, all with the dev stack file (pointed at the test database).
"""

from __future__ import annotations

from components.connection import connect
from components.introspect import live_ddl
from tests.conftest import TestDatabase

EXT = ("mem0:index:Extensions$pulumi-python:dynamic/mem0:SqlObject::"
       "mem0-dev-extensions-public.vector")
TABLE = ("mem0:index:MemoryTables$pulumi-python:dynamic/mem0:SqlObject::"
         "mem0-dev-tables-public.memories")
INDEX = ("mem0:index:Indexes$pulumi-python:dynamic/mem0:SqlObject::"
         "mem0-dev-indexes-public.memories_vector_idx")


def sql_ops(report) -> dict[str, str]:
    return {u.split("::", 2)[2]: op for u, op in report.ops_by_type("SqlObject").items()}


def index_def(database: TestDatabase) -> str | None:
    with connect(database.dsn) as conn, conn.cursor() as cur:
        return live_ddl(cur, "index", "public", "memories_vector_idx", "memories")


def test_dev_stack_creates_extension_table_and_hnsw_index(make_driver, database) -> None:
    report = make_driver().up().raise_for_error()
    assert sql_ops(report) == {EXT: "create", TABLE: "create", INDEX: "create"}
    assert database.scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    assert database.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                           "attrelid = 'public.memories'::regclass AND attname = 'vector'"
                           ) == "vector(1536)"
    assert database.scalar("SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                           "WHERE c.oid = 'public.memories_vector_idx'::regclass") == "hnsw"
    assert report.outputs["tables"] == ["memories"]
    assert report.outputs["target"] == "postgres"
    config = report.outputs["mem0Config"]["vector_store"]
    assert config["provider"] == "pgvector"
    assert config["config"]["collection_name"] == "memories"
    assert config["config"]["connection_string"] == database.dsn
    assert report.secret_outputs == ["mem0Config.vector_store.config.connection_string"]


def test_second_run_changes_nothing(make_driver) -> None:
    driver = make_driver()
    driver.up().raise_for_error()
    again = driver.up().raise_for_error()
    assert set(sql_ops(again).values()) == {"same"}
    assert again.drift == []


def test_changing_m_updates_only_the_index(make_driver, database) -> None:
    make_driver(vectorIndexM=16).up().raise_for_error()
    preview = make_driver(vectorIndexM=32).preview().raise_for_error()
    assert sql_ops(preview) == {EXT: "same", TABLE: "same", INDEX: "update"}
    assert "m='16'" in (index_def(database) or "")  # a preview changes nothing
    report = make_driver(vectorIndexM=32).up().raise_for_error()
    assert sql_ops(report) == {EXT: "same", TABLE: "same", INDEX: "update"}
    # What the preview would list: the DDL (and, after a refresh dropped it from the
    # stored inputs, the secret connection, which read never hands back).
    [keys] = [o["keys"] for o in report.operations if o["op"] == "update"]
    assert "ddl" in keys and set(keys) <= {"ddl", "connection"}
    assert "WITH (m='32', ef_construction='64')" in (index_def(database) or "")


def test_index_dropped_by_hand_is_reported_and_recreated(make_driver, database) -> None:
    driver = make_driver()
    driver.up().raise_for_error()
    with database.connect() as conn:
        conn.execute("DROP INDEX public.memories_vector_idx")
    drift = driver.refresh().raise_for_error().drift  # refresh --preview-only
    assert drift == [{"urn": f"urn:pulumi:dev::mem0infra::{INDEX}", "change": "deleted"}]
    assert driver.refresh().drift == drift  # preview-only wrote nothing
    healed = driver.up().raise_for_error()
    assert sql_ops(healed)[INDEX] == "create"
    assert index_def(database) is not None
    assert driver.refresh().raise_for_error().drift == []


def test_index_altered_by_hand_shows_the_sql_and_is_healed(make_driver, database) -> None:
    driver = make_driver()
    driver.up().raise_for_error()
    with database.connect() as conn:
        conn.execute("DROP INDEX public.memories_vector_idx")
        conn.execute("CREATE INDEX memories_vector_idx ON public.memories USING ivfflat "
                     "(vector vector_cosine_ops) WITH (lists = 5)")
    [drift] = driver.refresh().raise_for_error().drift
    assert drift["change"] == "updated" and drift["keys"] == ["ddl"]
    assert "USING ivfflat" in drift["live"]["ddl"]
    healed = driver.up().raise_for_error()
    assert sql_ops(healed)[INDEX] == "update"
    assert "USING hnsw" in (index_def(database) or "")


def test_destroy_removes_what_the_stack_created_and_nothing_else(make_driver, database) -> None:
    driver = make_driver()
    driver.up().raise_for_error()
    with database.connect() as conn:
        conn.execute("CREATE TABLE public.made_by_hand (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO public.made_by_hand VALUES (1, 'keep me')")
    report = driver.destroy().raise_for_error()
    assert set(sql_ops(report).values()) == {"delete"}
    assert driver.state() == {}
    assert database.scalar("SELECT to_regclass('public.memories') IS NULL") is True
    assert database.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 0
    assert database.scalar("SELECT note FROM public.made_by_hand") == "keep me"


def test_destroy_refuses_to_drop_memories(make_driver, database) -> None:
    driver = make_driver()
    driver.up().raise_for_error()
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories VALUES (gen_random_uuid(), NULL, "
                     "'{\"data\": \"precious\"}')")
    report = driver.destroy()
    assert report.error and "refusing to drop table public.memories: it holds rows" in report.error
    assert database.scalar("SELECT payload->>'data' FROM public.memories") == "precious"
    # `pulumi config set allowDataLoss true`: the provider reads the current config, so
    # destroy proceeds without an `up` first.
    make_driver(allowDataLoss=True).destroy().raise_for_error()
    assert database.scalar("SELECT to_regclass('public.memories') IS NULL") is True


def test_invalid_settings_apply_nothing(make_driver, database) -> None:
    report = make_driver(dimensions=0).up()
    assert report.error and "dimensions: 0 is not allowed" in report.error
    assert report.operations == []
    assert database.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 0


def test_a_refused_change_leaves_the_database_as_it_was(make_driver, database) -> None:
    make_driver(dimensions=3).up().raise_for_error()
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories VALUES (gen_random_uuid(), '[1,2,3]', '{}')")
    report = make_driver(dimensions=4).up()
    assert report.error and "allowDataLoss" in report.error
    assert database.scalar("SELECT vector::text FROM public.memories") == "[1,2,3]"
    allowed = make_driver(dimensions=4, allowDataLoss=True).up().raise_for_error()
    assert sql_ops(allowed)[TABLE] == "update"
    assert database.scalar("SELECT count(*) FROM public.memories WHERE vector IS NULL") == 1
