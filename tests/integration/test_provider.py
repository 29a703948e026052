"""The SQL-object provider, called directly, against a real PostgreSQL with pgvector."""

from __future__ import annotations

import base64
from typing import Any

import dill
import psycopg
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.rpc import UNKNOWN

from components.connection import connect
from components.introspect import INVALID_INDEX_NOTE, live_ddl
from components.model import ObjectSpec, build_model
from components.provider import SqlObjectError, SqlObjectProvider, object_inputs
from tests.conftest import TestDatabase, stack_settings


def model(database: TestDatabase, **raw: object) -> dict[str, ObjectSpec]:
    """Every spec of a stack on the test database, by key."""
    settings = stack_settings(database, **raw)
    declared = {s.key: s for s in build_model(settings)}
    owner = declared.get(f"role:{settings.owner_role}")
    if owner is not None:  # tables and functions belong to it: have it before any of them
        with database.connect() as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                (owner.name,)).fetchone():
                conn.execute(owner.ddl)
    return declared


def specs(database: TestDatabase, **raw: object) -> dict[str, ObjectSpec]:
    """The first slice's three objects, by kind: the extension, memories, its vector index."""
    by_key = model(database, **raw)
    schema = "extensions" if raw.get("target") == "supabase" else "public"
    keys = {"extension": f"extension:{schema}.vector", "table": "table:public.memories",
            "index": "index:public.memories_vector_idx"}
    return {kind: by_key[key] for kind, key in keys.items() if key in by_key}


def props(database: TestDatabase, spec: ObjectSpec, **extra: Any) -> dict[str, Any]:
    return {**object_inputs(spec, database.dsn, "test", False), **extra}


def create_all(provider: SqlObjectProvider, database: TestDatabase,
               **raw: object) -> dict[str, dict[str, Any]]:
    return {kind: provider.create(props(database, spec)).outs
            for kind, spec in specs(database, **raw).items()}


def live(database: TestDatabase, kind: str, name: str, table: str = "") -> str | None:
    with connect(database.dsn) as conn, conn.cursor() as cur:
        return live_ddl(cur, {"kind": kind, "schema": "public", "name": name, "table": table})


@pytest.fixture
def provider() -> SqlObjectProvider:
    return SqlObjectProvider()


def test_create_then_read_reports_no_drift(provider: SqlObjectProvider,
                                           database: TestDatabase) -> None:
    outs = create_all(provider, database)
    assert all(o["adopted"] is False for o in outs.values())
    for kind, out in outs.items():
        result = provider.read(f"{kind}-id", out)
        assert result.id == f"{kind}-id"
        assert result.outs["ddl"] == out["ddl"]
        # refresh: diff(olds=read outputs, news=old inputs) must see no change
        assert provider.diff(result.id, result.outs, out).changes is False
    assert database.scalar("SELECT to_regclass('public.memories_vector_idx') IS NOT NULL") is True


def test_declared_ddl_is_exactly_what_the_catalog_prints(provider: SqlObjectProvider,
                                                         database: TestDatabase) -> None:
    for raw in ({}, {"vectorIndexMethod": "ivfflat", "vectorIndexMeasure": "l2"},
                {"vectorIndexMeasure": "l2"}, {"vectorIndexMethod": "ivfflat"},
                {"vectorIndexMeasure": "l1", "expectedRows": 5_000_000},
                {"vectorIndexMeasure": "ip", "dimensions": 3}):
        with database.connect() as conn:
            conn.execute("DROP TABLE IF EXISTS public.memories")
        for spec in specs(database, **raw).values():
            provider.create(props(database, spec))
            assert live(database, spec.kind, spec.name, spec.table) == spec.ddl


def test_an_index_dropped_by_hand_is_reported_and_healed(provider: SqlObjectProvider,
                                                         database: TestDatabase) -> None:
    outs = create_all(provider, database)
    with database.connect() as conn:
        conn.execute("DROP INDEX public.memories_vector_idx")
    result = provider.read("i", outs["index"])
    assert result.id is None and result.outs == {}
    provider.create(props(database, specs(database)["index"]))
    assert live(database, "index", "memories_vector_idx") == outs["index"]["ddl"]


def test_an_index_changed_by_hand_shows_as_a_ddl_diff_and_update_heals_it(
        provider: SqlObjectProvider, database: TestDatabase) -> None:
    outs = create_all(provider, database)
    with database.connect() as conn:
        conn.execute("DROP INDEX public.memories_vector_idx")
        conn.execute("CREATE INDEX memories_vector_idx ON public.memories USING hnsw "
                     "(vector vector_cosine_ops) WITH (m = 4)")
    result = provider.read("i", outs["index"])
    assert "m='4'" in result.outs["ddl"] and result.inputs["ddl"] == result.outs["ddl"]
    # Handed back as it was: the engine marks it secret again (docs/engine.md); left out,
    # refresh would read it as removed.
    assert result.inputs["connection"] == outs["index"]["connection"]
    assert provider.diff("i", result.outs, outs["index"]).changes is True
    healed = provider.update("i", result.outs, props(database, specs(database)["index"]))
    assert live(database, "index", "memories_vector_idx") == healed.outs["ddl"]
    assert "m='16'" in healed.outs["ddl"]


def test_an_invalid_index_is_drift(provider: SqlObjectProvider, database: TestDatabase) -> None:
    outs = create_all(provider, database)
    with database.connect() as conn:
        conn.execute("UPDATE pg_index SET indisvalid = false "
                     "WHERE indexrelid = 'public.memories_vector_idx'::regclass")
    result = provider.read("i", outs["index"])
    assert result.outs["ddl"].endswith(INVALID_INDEX_NOTE)
    provider.update("i", result.outs, props(database, specs(database)["index"]))
    assert database.scalar("SELECT indisvalid FROM pg_index WHERE "
                           "indexrelid = 'public.memories_vector_idx'::regclass") is True


def test_create_adopts_an_identical_object_and_refuses_a_different_one(
        provider: SqlObjectProvider, database: TestDatabase) -> None:
    declared = specs(database)
    with database.connect() as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute(declared["table"].ddl)  # made by hand, exactly as declared
        conn.execute("CREATE INDEX memories_vector_idx ON public.memories USING hnsw "
                     "(vector vector_l2_ops)")
    assert provider.create(props(database, declared["extension"])).outs["adopted"] is True
    assert provider.create(props(database, declared["table"])).outs["adopted"] is True
    with pytest.raises(SqlObjectError) as refused:
        provider.create(props(database, declared["index"]))
    message = str(refused.value)
    assert "already exists with a different definition" in message
    # a line diff of the canonical text: the USING line is the one that differs
    assert "\n CREATE INDEX memories_vector_idx ON public.memories\n" in message
    assert "\n-  USING hnsw (vector public.vector_cosine_ops)\n" in message
    assert "\n+  USING hnsw (vector public.vector_l2_ops);" in message
    # nothing was changed
    assert "vector_l2_ops" in (live(database, "index", "memories_vector_idx") or "")


def test_adopted_extension_survives_delete(provider: SqlObjectProvider,
                                           database: TestDatabase) -> None:
    with database.connect() as conn:
        conn.execute("CREATE EXTENSION vector")
    outs = provider.create(props(database, specs(database)["extension"])).outs
    provider.delete("e", outs)
    assert database.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 1


def test_extension_used_by_unmanaged_objects_is_kept(provider: SqlObjectProvider,
                                                     database: TestDatabase) -> None:
    outs = provider.create(props(database, specs(database)["extension"])).outs
    with database.connect() as conn:
        conn.execute("CREATE TABLE public.notes (v vector(3))")
    provider.delete("e", outs)
    assert database.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 1
    with database.connect() as conn:
        conn.execute("DROP TABLE public.notes")
    provider.delete("e", outs)
    assert database.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 0


def test_extension_moves_schema_in_place(provider: SqlObjectProvider,
                                         database: TestDatabase) -> None:
    with database.connect() as conn:
        conn.execute("CREATE SCHEMA extensions")
    outs = provider.create(props(database, specs(database)["extension"])).outs
    supa = specs(database, target="supabase")["extension"]
    provider.update("e", outs, props(database, supa))
    assert database.scalar("SELECT extnamespace::regnamespace::text FROM pg_extension "
                           "WHERE extname = 'vector'") == "extensions"


def test_index_on_a_table_with_rows_is_rebuilt_concurrently(provider: SqlObjectProvider,
                                                            database: TestDatabase) -> None:
    outs = create_all(provider, database, dimensions=3)
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories SELECT gen_random_uuid(), "
                     "ARRAY[random(), random(), random()]::vector, '{}' "
                     "FROM generate_series(1, 500)")
    changed = specs(database, dimensions=3, vectorIndexM=32)["index"]
    result = provider.update("i", outs["index"], props(database, changed))
    assert live(database, "index", "memories_vector_idx") == changed.ddl == result.outs["ddl"]
    # the temporary build is gone and exactly one vector index remains
    assert database.scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'memories' "
                           "AND indexname LIKE 'memories_vector_idx%'") == 1


def test_dimension_change_on_an_empty_table_is_applied(provider: SqlObjectProvider,
                                                       database: TestDatabase) -> None:
    outs = create_all(provider, database)
    provider.update("t", outs["table"], props(database, specs(database, dimensions=768)["table"]))
    assert database.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                           "attrelid = 'public.memories'::regclass AND attname = 'vector'"
                           ) == "vector(768)"
    # the vector index survives the ALTER (PostgreSQL rebuilds it)
    assert live(database, "index", "memories_vector_idx") == outs["index"]["ddl"]


def test_dimension_change_with_rows_is_refused_then_allowed(provider: SqlObjectProvider,
                                                            database: TestDatabase) -> None:
    outs = create_all(provider, database, dimensions=3)
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories VALUES (gen_random_uuid(), '[1,2,3]', "
                     "'{\"data\": \"kept\"}')")
    wider = props(database, specs(database, dimensions=4)["table"])
    with pytest.raises(SqlObjectError, match="holds rows and the change would lose data"):
        provider.update("t", outs["table"], wider)
    assert "vector(3)" in (live(database, "table", "memories") or "")
    provider.update("t", outs["table"], {**wider, "allow_data_loss": True})
    assert database.scalar("SELECT payload->>'data' FROM public.memories") == "kept"
    assert database.scalar("SELECT count(vector) FROM public.memories") == 0


def test_table_with_rows_is_not_dropped_without_opt_in(provider: SqlObjectProvider,
                                                       database: TestDatabase) -> None:
    outs = create_all(provider, database, dimensions=3)
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories VALUES (gen_random_uuid(), '[1,2,3]', '{}')")
    with pytest.raises(SqlObjectError, match=r"refusing to drop table public\.memories"):
        provider.delete("t", outs["table"])
    assert database.scalar("SELECT count(*) FROM public.memories") == 1
    provider.delete("t", {**outs["table"], "allow_data_loss": True})
    assert live(database, "table", "memories") is None


def test_configured_allow_data_loss_beats_state(provider: SqlObjectProvider,
                                                database: TestDatabase) -> None:
    from pulumi.dynamic import ConfigureRequest
    from pulumi.dynamic.config import Config

    outs = create_all(provider, database, dimensions=3)
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories VALUES (gen_random_uuid(), '[1,2,3]', '{}')")
    provider.configure(ConfigureRequest(Config({"mem0infra:allowDataLoss": "true"},
                                               "mem0infra")))
    provider.delete("t", outs["table"])
    assert live(database, "table", "memories") is None


def test_diff_treats_unknowns_as_changes_and_identity_as_replacement(
        provider: SqlObjectProvider, database: TestDatabase) -> None:
    outs = create_all(provider, database)
    index = outs["index"]
    assert provider.diff("i", index, {**index, "ddl": UNKNOWN}).changes is True
    renamed = provider.diff("i", index, {**index, "name": "other_idx"})
    assert renamed.replaces == ["name"] and renamed.delete_before_replace is False
    moved = provider.diff("i", index, {**index, "database": "elsewhere"})
    assert moved.replaces == ["database"] and moved.delete_before_replace is True
    rotated = provider.diff("i", index, {**index, "connection": database.dsn + "&x=1"})
    assert rotated.changes is False  # new credentials are not a new object


def test_check_names_missing_inputs(provider: SqlObjectProvider) -> None:
    result = provider.check({}, {"kind": "view", "schema": "public"})
    reasons = {f.property: f.reason for f in result.failures}
    assert reasons["name"] == "name is required"
    assert reasons["kind"] == ("unknown kind 'view'; allowed: extension, role, schema, table, "
                               "function, index, statistics, trigger, grant, "
                               "default_privileges, "
                               "row_security, policy, role_settings, cron_job")


def test_provider_pickles_by_reference_and_deterministically() -> None:
    first = serialize_provider(SqlObjectProvider())
    assert first == serialize_provider(SqlObjectProvider())
    assert len(base64.b64decode(first)) < 200  # a reference, not the code
    assert isinstance(dill.loads(base64.b64decode(first)), SqlObjectProvider)


def test_a_role_under_rls_cannot_be_fooled_about_rows(provider: SqlObjectProvider,
                                                      database: TestDatabase) -> None:
    outs = create_all(provider, database, dimensions=3)
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories VALUES (gen_random_uuid(), '[1,2,3]', '{}')")
        conn.execute("CREATE ROLE deployer LOGIN")
        conn.execute("ALTER TABLE public.memories OWNER TO deployer")
        conn.execute("ALTER TABLE public.memories ENABLE ROW LEVEL SECURITY, "
                     "FORCE ROW LEVEL SECURITY")
    as_owner = database.server.dsn_for(database.name, user="deployer")
    with pytest.raises(SqlObjectError, match="subject to row-level security"):
        provider.delete("t", {**outs["table"], "connection": as_owner})
    with database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.memories").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET ROLE deployer; SET row_security = off; "
                         "SELECT count(*) FROM public.memories")
