"""Hand-made changes to the new object kinds show as drift and the next apply heals them.

Issue 5's validation will name these faults too; here the provider's own `read` must see
them, because `pulumi refresh --preview-only --expect-no-changes` is the drift job in CI.
"""

from __future__ import annotations

import re

from components.connection import connect
from components.introspect import DISABLED_TRIGGER_NOTE, live_ddl
from tests.conftest import TestDatabase, app_role_for


def resource_name(urn: str) -> str:
    return urn.rsplit("::", 1)[1]


def test_function_trigger_grant_and_search_setting_drift_is_reported_and_healed(
        make_stack, database: TestDatabase) -> None:
    driver = make_stack(dimensions=3)
    driver.up().raise_for_error()
    role = app_role_for(database)
    with database.connect() as conn:
        # a "fix" pasted into the SQL editor, a trigger switched off for a bulk load and
        # never switched on, a grant revoked by a cleanup script, a setting reset
        conn.execute("CREATE OR REPLACE FUNCTION public.match_memories(query vector, "
                     "match_count integer DEFAULT 10, filter jsonb DEFAULT '{}'::jsonb) "
                     "RETURNS TABLE(id uuid, similarity double precision, payload jsonb) "
                     "LANGUAGE sql STABLE SET search_path TO '' AS $$ SELECT m.id, 1.0::float8,"
                     " m.payload FROM public.memories m LIMIT match_count $$")
        conn.execute("ALTER TABLE public.memories DISABLE TRIGGER memories_history")
        conn.execute(f"REVOKE DELETE ON public.memories FROM {role}")
        conn.execute(f"ALTER ROLE {role} RESET hnsw.ef_search")
        # the vector sent back to TOAST, and the user statistics rebuilt with other kinds
        conn.execute("ALTER TABLE public.memories ALTER COLUMN vector SET STORAGE EXTERNAL")
        conn.execute("DROP STATISTICS public.memories_user_stats")
        conn.execute("CREATE STATISTICS public.memories_user_stats (ndistinct) ON user_id,"
                     " (payload ->> 'user_id') FROM public.memories")
    drift = {resource_name(d["urn"]): d for d in driver.refresh().raise_for_error().drift}
    assert set(drift) == {"mem0-dev-functions-public.match_memories",
                          "mem0-dev-triggers-public.memories_history",
                          f"mem0-dev-grants-public.memories-to-{role}",
                          f"mem0-dev-search_settings-{role}-settings",
                          "mem0-dev-tables-public.memories",
                          "mem0-dev-indexes-public.memories_user_stats"}
    assert all(d["change"] == "updated" and d["keys"] == ["ddl"] for d in drift.values())
    trigger = drift["mem0-dev-triggers-public.memories_history"]["live"]["ddl"]
    assert trigger.endswith(DISABLED_TRIGGER_NOTE)
    grant = drift[f"mem0-dev-grants-public.memories-to-{role}"]["live"]["ddl"]
    assert grant == f"GRANT INSERT, SELECT, UPDATE ON TABLE public.memories TO {role};"
    settings = drift[f"mem0-dev-search_settings-{role}-settings"]["live"]["ddl"]
    assert "ef_search" not in settings and "iterative_scan" in settings
    table = drift["mem0-dev-tables-public.memories"]["live"]["ddl"]
    assert "SET STORAGE MAIN" not in table and "toast_tuple_target=8160" in table
    stats = drift["mem0-dev-indexes-public.memories_user_stats"]["live"]["ddl"]
    assert "(ndistinct)" in stats

    healed = driver.up().raise_for_error()
    updated = {resource_name(u) for u, op in healed.ops_by_type("SqlObject").items()
               if op != "same"}
    assert updated == set(drift)
    assert driver.refresh().raise_for_error().drift == []
    with connect(database.dsn) as conn, conn.cursor() as cur:
        body = live_ddl(cur, {"kind": "function", "schema": "public", "name": "match_memories",
                              "arguments": "public.vector, integer, jsonb"}) or ""
    assert re.search(r"ORDER BY m\.vector OPERATOR\(public\.<=>\) query", body)
    assert database.scalar("SELECT tgenabled FROM pg_trigger WHERE tgname = "
                           "'memories_history'") == "O"
    assert database.scalar("SELECT has_table_privilege(%s, 'public.memories', 'DELETE')",
                           (role,)) is True
    assert database.scalar("SELECT attstorage FROM pg_attribute WHERE attrelid ="
                           " 'public.memories'::regclass AND attname = 'vector'") == "m"
    # dependencies (f) again, not ndistinct (d); e: an expression's own statistics
    assert database.scalar("SELECT stxkind::text FROM pg_statistic_ext"
                           " WHERE stxname = 'memories_user_stats'") == "{f,e}"


def test_a_dropped_trigger_and_function_come_back(make_stack, database: TestDatabase) -> None:
    driver = make_stack(dimensions=3)
    driver.up().raise_for_error()
    with database.connect() as conn:
        conn.execute("DROP TRIGGER memories_history ON public.memories")
        conn.execute("DROP FUNCTION public.memory_neighbours(uuid, integer)")
    changes = {resource_name(d["urn"]): d["change"]
               for d in driver.refresh().raise_for_error().drift}
    assert changes == {"mem0-dev-triggers-public.memories_history": "deleted",
                       "mem0-dev-functions-public.memory_neighbours": "deleted"}
    driver.up().raise_for_error()
    assert driver.refresh().raise_for_error().drift == []
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories (id, payload) VALUES (gen_random_uuid(), "
                     "'{\"user_id\": \"u\"}')")
    assert database.scalar("SELECT count(*) FROM public.memory_history") == 1
