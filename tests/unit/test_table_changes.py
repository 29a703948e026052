"""Planning ALTER TABLE from two canonical definitions (pure)."""

from __future__ import annotations

import pytest

from components.table_changes import UnsupportedTableChange, parse_table, plan_table_change

BASE = """CREATE TABLE public.m (
    id uuid NOT NULL,
    vector public.vector(1536),
    payload jsonb,
    CONSTRAINT m_pkey PRIMARY KEY (id)
);"""


def test_parse_reads_columns_and_constraints() -> None:
    shape = parse_table(BASE)
    assert shape.table == "public.m" and not shape.unlogged
    assert list(shape.columns) == ["id", "vector", "payload"]
    assert shape.constraints == {"m_pkey": "PRIMARY KEY (id)"}


def test_identical_definitions_need_nothing() -> None:
    assert plan_table_change(BASE, BASE) == []


def test_dimension_change_is_lossy_and_clears_vectors_when_allowed() -> None:
    [step] = plan_table_change(BASE, BASE.replace("vector(1536)", "vector(768)"))
    assert step.sql == "ALTER TABLE public.m ALTER COLUMN vector TYPE public.vector(768);"
    assert step.lossy_sql.endswith("TYPE public.vector(768) USING NULL;")
    assert step.loses_data and "public.vector(1536) to public.vector(768)" in step.why


def test_added_column_is_safe_and_dropped_column_is_lossy() -> None:
    added = BASE.replace("    payload jsonb,\n",
                         "    payload jsonb,\n    note text DEFAULT ''::text,\n")
    [add] = plan_table_change(BASE, added)
    assert add.sql == "ALTER TABLE public.m ADD COLUMN note text DEFAULT ''::text;"
    assert not add.loses_data
    [drop] = plan_table_change(added, BASE)
    assert drop.sql == "ALTER TABLE public.m DROP COLUMN note;" and drop.loses_data


def test_default_and_nullability_changes() -> None:
    old = BASE.replace("payload jsonb,", "payload jsonb DEFAULT '{}'::jsonb,")
    new = BASE.replace("payload jsonb,", "payload jsonb NOT NULL,")
    assert [s.sql for s in plan_table_change(old, new)] == [
        "ALTER TABLE public.m ALTER COLUMN payload DROP DEFAULT;",
        "ALTER TABLE public.m ALTER COLUMN payload SET NOT NULL;"]


def test_constraint_change_drops_then_adds() -> None:
    new = BASE.replace("PRIMARY KEY (id)", "PRIMARY KEY (id, payload)")
    assert [s.sql for s in plan_table_change(BASE, new)] == [
        "ALTER TABLE public.m DROP CONSTRAINT m_pkey;",
        "ALTER TABLE public.m ADD CONSTRAINT m_pkey PRIMARY KEY (id, payload);"]


def test_generated_column_change_is_refused_with_a_reason() -> None:
    old = BASE.replace("payload jsonb,", "payload jsonb,\n    u text GENERATED ALWAYS AS "
                       "((payload ->> 'u'::text)) STORED,")
    new = old.replace("'u'::text", "'user'::text")
    with pytest.raises(UnsupportedTableChange, match="needs a hand-written migration"):
        plan_table_change(old, new)


def test_not_a_table_definition() -> None:
    with pytest.raises(ValueError, match="not a canonical CREATE TABLE"):
        parse_table("CREATE INDEX x ON y USING btree (z);")


def test_a_first_slice_table_grows_into_the_full_layout_without_loss() -> None:
    """A stack deployed before the schema issue (id, vector, payload only) is upgraded in
    place: the generated and time columns are added, nothing is dropped or rewritten, and
    the table passes to the owner role."""
    from components.model import build_model
    from components.settings import parse_settings

    full = {s.key: s for s in build_model(parse_settings({}, "dev"))}["table:public.memories"]
    first_slice = BASE.replace("public.m ", "public.memories ").replace("m_pkey",
                                                                        "memories_pkey")
    steps = plan_table_change(first_slice, full.ddl)
    *columns, storage, options, owner = steps
    assert [s.sql.split(" ADD COLUMN ")[1].split(" ")[0] for s in columns] == [
        "user_id", "agent_id", "run_id", "org_id", "created_at", "updated_at"]
    assert storage.sql == "ALTER TABLE public.memories ALTER COLUMN vector SET STORAGE MAIN;"
    assert options.sql == "ALTER TABLE public.memories SET (toast_tuple_target=8160);"
    assert owner.sql == "ALTER TABLE public.memories OWNER TO mem0_owner;"
    assert not any(s.loses_data for s in steps)


def test_parse_reads_the_ownership_line_and_a_new_owner_is_one_step() -> None:
    owned = BASE + "\nALTER TABLE public.m OWNER TO mem0_owner;"
    assert parse_table(owned).owner == "mem0_owner"
    assert parse_table(owned).columns == parse_table(BASE).columns
    assert parse_table(BASE).owner is None
    assert plan_table_change(owned, owned) == []
    [step] = plan_table_change(owned, owned.replace("mem0_owner", "other_owner"))
    assert step.sql == "ALTER TABLE public.m OWNER TO other_owner;" and not step.loses_data


def test_storage_lines_parse_and_change_in_place() -> None:
    """Column storage and storage parameters ride after the table (as introspection prints
    them); a change is a catalog step, never a loss, and a removed one is reset."""
    main = (BASE + "\nALTER TABLE public.m ALTER COLUMN vector SET STORAGE MAIN;"
            "\nALTER TABLE public.m SET (toast_tuple_target=8160, fillfactor=90);")
    shape = parse_table(main)
    assert shape.storage == {"vector": "MAIN"}
    assert shape.options == {"toast_tuple_target": "8160", "fillfactor": "90"}
    assert shape.columns == parse_table(BASE).columns
    assert [s.sql for s in plan_table_change(BASE, main)] == [
        "ALTER TABLE public.m ALTER COLUMN vector SET STORAGE MAIN;",
        "ALTER TABLE public.m SET (toast_tuple_target=8160, fillfactor=90);"]
    back = plan_table_change(main, BASE)
    assert [s.sql for s in back] == [
        "ALTER TABLE public.m ALTER COLUMN vector SET STORAGE EXTERNAL;",
        "ALTER TABLE public.m RESET (fillfactor, toast_tuple_target);"]
    assert not any(s.loses_data for s in back)
    assert plan_table_change(main, main) == []


def test_vector_and_halfvec_of_the_same_dimensions_convert_in_place() -> None:
    """An indexed stack crossing 2000 dimensions' limit, or its index turning none: pgvector
    casts each embedding, so nothing is lost; the indexes on the column go first (their
    operator classes belong to the old type) and their own resources rebuild them."""
    vector = BASE.replace("vector(1536)", "vector(3072)")
    half = BASE.replace("public.vector(1536)", "public.halfvec(3072)")
    [to_half] = plan_table_change(vector, half)
    assert to_half.sql == "ALTER TABLE public.m ALTER COLUMN vector TYPE public.halfvec(3072);"
    assert not to_half.loses_data and to_half.drop_indexes_on == "vector"
    assert "16-bit" in to_half.why
    [back] = plan_table_change(half, vector)
    assert back.sql == "ALTER TABLE public.m ALTER COLUMN vector TYPE public.vector(3072);"
    assert not back.loses_data and back.drop_indexes_on == "vector"


def test_a_dimension_change_across_types_drops_the_indexes_and_is_lossy() -> None:
    [step] = plan_table_change(BASE, BASE.replace("public.vector(1536)", "public.halfvec(3072)"))
    assert step.loses_data and step.drop_indexes_on == "vector"
    assert step.lossy_sql.endswith("TYPE public.halfvec(3072) USING NULL;")
    [same_type] = plan_table_change(BASE, BASE.replace("vector(1536)", "vector(768)"))
    assert same_type.drop_indexes_on == ""  # PostgreSQL rebuilds those itself

