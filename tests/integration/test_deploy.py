"""The real program, applied through the Pulumi CLI to a real database.

These are the foundation's acceptance runs: create, no-op, change, drift and heal,
destroy, all with the dev stack file (pointed at the test database).
"""

from __future__ import annotations

import re

from components.connection import connect, role_url
from components.introspect import live_ddl
from components.model import build_model
from tests.conftest import APP_PASSWORD, TestDatabase, app_role_for, stack_settings

EXT = ("mem0:index:Mem0Backend$mem0:index:Extensions$pulumi-python:dynamic/mem0:SqlObject::"
       "mem0-dev-extensions-public.vector")
TABLE = ("mem0:index:Mem0Backend$mem0:index:MemoryTables$pulumi-python:dynamic/mem0:SqlObject::"
         "mem0-dev-tables-public.memories")
INDEX = ("mem0:index:Mem0Backend$mem0:index:Indexes$pulumi-python:dynamic/mem0:SqlObject::"
         "mem0-dev-indexes-public.memories_vector_idx")
ENTITIES_INDEX = INDEX.replace("memories_vector_idx", "memories_entities_vector_idx")


def sql_ops(report) -> dict[str, str]:
    return {u.split("::", 2)[2]: op for u, op in report.ops_by_type("SqlObject").items()}


def changed(report) -> dict[str, str]:
    """The SQL objects an operation touched (everything but `same`)."""
    return {name: op for name, op in sql_ops(report).items() if op != "same"}


def index_def(database: TestDatabase) -> str | None:
    with connect(database.dsn) as conn, conn.cursor() as cur:
        return live_ddl(cur, {"kind": "index", "schema": "public", "name": "memories_vector_idx",
                              "table": "memories"})


def test_dev_stack_creates_every_declared_object(make_stack, database) -> None:
    report = make_stack().up().raise_for_error()
    declared = build_model(stack_settings(database, "dev"))
    assert len(declared) > 30
    assert set(sql_ops(report).values()) == {"create"}
    assert len(sql_ops(report)) == len(declared)
    assert {EXT, TABLE, INDEX} <= set(sql_ops(report))
    assert database.scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    assert database.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                           "attrelid = 'public.memories'::regclass AND attname = 'vector'"
                           ) == "vector(1536)"
    assert database.scalar("SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                           "WHERE c.oid = 'public.memories_vector_idx'::regclass") == "hnsw"
    assert report.outputs["tables"] == ["memories", "memories_entities", "memory_history",
                                        "memory_relationships"]
    assert report.outputs["target"] == "postgres"
    config = report.outputs["mem0Config"]["vector_store"]
    assert config["provider"] == "pgvector"
    assert config["config"]["collection_name"] == "memories"
    assert config["config"]["embedding_model_dims"] == 1536
    # mem0 gets the app role, never the deployer
    role = app_role_for(database)
    # over TLS: target postgres resolves sslMode auto to require
    assert config["config"]["connection_string"] == role_url(
        database.dsn + "?sslmode=require", role, APP_PASSWORD)
    assert report.outputs["appRole"] == role
    assert "prepare_threshold" in report.outputs["poolerGuidance"]
    assert report.secret_outputs == ["mem0Config.vector_store.config.connection_string"]


def test_second_run_changes_nothing(make_stack) -> None:
    driver = make_stack()
    driver.up().raise_for_error()
    again = driver.up().raise_for_error()
    assert set(sql_ops(again).values()) == {"same"}
    assert again.drift == []


def test_changing_m_updates_only_the_index(make_stack, database) -> None:
    make_stack(vectorIndexM=16).up().raise_for_error()
    preview = make_stack(vectorIndexM=32).preview().raise_for_error()
    assert changed(preview) == {INDEX: "update", ENTITIES_INDEX: "update"}
    assert "m='16'" in (index_def(database) or "")  # a preview changes nothing
    report = make_stack(vectorIndexM=32).up().raise_for_error()
    assert changed(report) == {INDEX: "update", ENTITIES_INDEX: "update"}
    # What the preview would list: the DDL (and, after a refresh dropped it from the
    # stored inputs, the secret connection, which read never hands back).
    for keys in [o["keys"] for o in report.operations
                 if o["op"] == "update" and "SqlObject" in o["urn"]]:
        assert "ddl" in keys and set(keys) <= {"ddl", "connection"}
    # The schema changed, so both checks ran again (their fingerprint changed).
    assert set(report.ops_by_type("CheckRun").values()) == {"update"}
    assert "WITH (m='32', ef_construction='64')" in (index_def(database) or "")


def test_index_dropped_by_hand_is_reported_and_recreated(make_stack, database) -> None:
    driver = make_stack()
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


def test_index_altered_by_hand_shows_the_sql_and_is_healed(make_stack, database) -> None:
    driver = make_stack()
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


def test_destroy_removes_what_the_stack_created_and_nothing_else(make_stack, database) -> None:
    driver = make_stack()
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


def test_destroy_refuses_to_drop_memories(make_stack, database) -> None:
    driver = make_stack()
    driver.up().raise_for_error()
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories VALUES (gen_random_uuid(), NULL, "
                     "'{\"data\": \"precious\"}')")
    report = driver.destroy()
    # the history trigger recorded the insert, so either table may be the first refusal
    assert report.error and re.search(
        r"refusing to drop table public\.(memories|memory_history): it holds rows", report.error)
    assert database.scalar("SELECT payload->>'data' FROM public.memories") == "precious"
    # `pulumi config set allowDataLoss true` alone changes nothing: without the program
    # the engine configures the provider with the config of the last `up`.
    again = make_stack(allowDataLoss=True).destroy()
    assert again.error and "pulumi destroy --run-program" in again.error
    make_stack(allowDataLoss=True).destroy(run_program=True).raise_for_error()
    assert database.scalar("SELECT to_regclass('public.memories') IS NULL") is True


def test_invalid_settings_apply_nothing(make_stack, database) -> None:
    report = make_stack(dimensions=0).up()
    assert report.error and "dimensions: 0 is not allowed" in report.error
    assert report.operations == []
    assert database.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 0


def test_a_refused_change_leaves_the_database_as_it_was(make_stack, database) -> None:
    make_stack(dimensions=3).up().raise_for_error()
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories VALUES (gen_random_uuid(), '[1,2,3]', '{}')")
    report = make_stack(dimensions=4).up()
    assert report.error and "allowDataLoss" in report.error
    assert "Migration path that keeps every memory: deploy the new dimensions under a new " \
           "`collection`" in report.error
    assert database.scalar("SELECT vector::text FROM public.memories") == "[1,2,3]"
    assert database.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                           "attrelid = 'public.memories_entities'::regclass "
                           "AND attname = 'vector'") == "vector(3)"
    allowed = make_stack(dimensions=4, allowDataLoss=True).up().raise_for_error()
    assert sql_ops(allowed)[TABLE] == "update"
    assert database.scalar("SELECT count(*) FROM public.memories WHERE vector IS NULL") == 1
