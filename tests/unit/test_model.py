"""The model is pure and deterministic, and its SQL says what it chose."""

from __future__ import annotations

from components.model import build_model
from components.render import render_script
from components.settings import parse_settings


def model(**raw: object):
    return build_model(parse_settings(raw, "dev"))


def test_first_slice_in_dependency_order() -> None:
    specs = model()
    assert [s.key for s in specs] == [
        "extension:public.vector", "table:public.memories", "index:public.memories_vector_idx"]
    assert specs[1].depends_on == ("extension:public.vector",)
    assert specs[2].depends_on == ("table:public.memories",)


def test_same_settings_give_byte_identical_sql() -> None:
    a = render_script(parse_settings({"dimensions": 768}, "dev"))
    b = render_script(parse_settings({"dimensions": 768}, "dev"))
    assert a == b


def test_memories_table_is_mem0s_layout() -> None:
    table = model(dimensions=768, collection="agent_memory")[1]
    assert table.ddl == (
        "CREATE TABLE public.agent_memory (\n"
        "    id uuid NOT NULL,\n"
        "    vector public.vector(768),\n"
        "    payload jsonb,\n"
        "    CONSTRAINT agent_memory_pkey PRIMARY KEY (id)\n"
        ");")
    assert table.data_bearing and table.drop_sql == "DROP TABLE IF EXISTS public.agent_memory;"


def test_vector_index_carries_the_resolved_parameters() -> None:
    index = model(expectedRows=2_000_000)[2]
    assert index.ddl == (
        "CREATE INDEX memories_vector_idx ON public.memories USING hnsw "
        "(vector public.vector_cosine_ops) WITH (m='32', ef_construction='128');")
    assert "over 1M rows" in index.comment


def test_ivfflat_and_measures() -> None:
    index = model(vectorIndexMethod="ivfflat", vectorIndexMeasure="ip", expectedRows=200_000)[2]
    assert index.ddl.endswith("USING ivfflat (vector public.vector_ip_ops) WITH (lists='200');")


def test_no_index_when_method_is_none() -> None:
    assert [s.kind for s in model(vectorIndexMethod="none")] == ["extension", "table"]


def test_supabase_keeps_extensions_in_their_schema() -> None:
    specs = build_model(parse_settings({"target": "supabase",
                                        "databaseUrl": "postgresql://u:p@h/db"}, "prod"))
    assert specs[0].ddl == "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions;"
    assert "vector extensions.vector(1536)" in specs[1].ddl
    assert "extensions.vector_cosine_ops" in specs[2].ddl


def test_render_shows_the_auto_choice_and_warnings() -> None:
    script = render_script(parse_settings({"vectorIndexMeasure": "l2"}, "dev"))
    assert "-- index:public.memories_vector_idx: hnsw chosen by vectorIndexMethod=auto" in script
    assert "-- WARNING: vectorIndexMeasure is 'l2'" in script
    assert script.index("CREATE EXTENSION") < script.index("CREATE TABLE") < script.index(
        "CREATE INDEX")
    assert script.rstrip().endswith("COMMIT;")
