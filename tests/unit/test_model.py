"""The model is pure and deterministic, and its SQL says what it chose."""

from __future__ import annotations

import pytest

from components.kinds import Family
from components.model import ObjectSpec, build_model
from components.render import render_script
from components.settings import parse_settings

POSTGRES = {"target": "postgres", "databaseUrl": "postgresql://u@h/db", "appRolePassword": "pw",
            "readonlyRolePassword": "ro", "serviceRolePassword": "svc"}
SUPABASE = {"target": "supabase", "databaseUrl": "postgresql://u@h/db", "appRolePassword": "pw"}


def model(**raw: object) -> dict[str, ObjectSpec]:
    return {s.key: s for s in build_model(parse_settings(raw, "dev"))}


def test_dependencies_come_first_and_families_are_grouped() -> None:
    specs = build_model(parse_settings({}, "dev"))
    seen: set[str] = set()
    for spec in specs:
        assert set(spec.depends_on) <= seen, spec.key
        seen.add(spec.key)
    families = [s.family for s in specs]
    assert families == sorted(families, key=list(Family).index)
    assert specs[0].key == "extension:public.vector"


def test_python_profile_declares_mem0s_tables_history_and_graph() -> None:
    keys = set(model())
    assert {"table:public.memories", "table:public.memories_entities",
            "table:public.memory_history", "table:public.memory_relationships",
            "role:mem0_app", "role_settings:mem0_app-settings",
            "function:public.match_memories", "function:public.memory_neighbours",
            "function:public.mem0_record_history", "trigger:public.memories_history",
            "trigger:public.memories_touch", "trigger:public.memories_entities_touch"} <= keys


def test_same_settings_give_byte_identical_sql() -> None:
    a = render_script(parse_settings({"dimensions": 768}, "dev"))
    b = render_script(parse_settings({"dimensions": 768}, "dev"))
    assert a == b


def test_memories_table_is_mem0s_layout_with_generated_columns() -> None:
    table = model(dimensions=768, collection="agent_memory")["table:public.agent_memory"]
    lines = table.ddl.splitlines()
    # mem0 writes (id, vector, payload): those three come first, exactly as it creates them
    assert lines[:4] == ["CREATE TABLE public.agent_memory (", "    id uuid NOT NULL,",
                         "    vector public.vector(768),", "    payload jsonb,"]
    for key in ("user_id", "agent_id", "run_id", "org_id"):
        assert (f"    {key} text GENERATED ALWAYS AS ((payload ->> '{key}'::text)) STORED,"
                in lines)
    assert "    created_at timestamp with time zone DEFAULT now() NOT NULL," in lines
    assert table.data_bearing and table.drop_sql == "DROP TABLE IF EXISTS public.agent_memory;"
    entities = model(collection="agent_memory")["table:public.agent_memory_entities"]
    assert entities.ddl.replace("agent_memory_entities", "agent_memory") == \
        model(collection="agent_memory")["table:public.agent_memory"].ddl


def test_indexes_match_the_queries_mem0_sends() -> None:
    specs = model()
    assert specs["index:public.memories_user_id_idx"].ddl == (
        "CREATE INDEX memories_user_id_idx ON public.memories\n"
        "  USING btree (((payload ->> 'user_id'::text)));")
    assert specs["index:public.memories_text_lemmatized_idx"].ddl == (
        "CREATE INDEX memories_text_lemmatized_idx ON public.memories\n"
        "  USING gin (to_tsvector('simple'::regconfig, (payload ->> 'text_lemmatized'::text)));")
    assert specs["index:public.memories_user_created_idx"].ddl.endswith(
        "USING btree (user_id, created_at DESC);")
    assert "index:public.memories_fts_idx" not in specs
    fts = model(ftsLanguage="english")["index:public.memories_fts_idx"]
    assert "to_tsvector('english'::regconfig, (payload ->> 'data'::text))" in fts.ddl


def test_vector_index_carries_the_resolved_parameters() -> None:
    index = model(expectedRows=2_000_000)["index:public.memories_vector_idx"]
    # One clause a line: a preview shows a changed parameter as its own SQL line.
    assert index.ddl == (
        "CREATE INDEX memories_vector_idx ON public.memories\n"
        "  USING hnsw (vector public.vector_cosine_ops)\n"
        "  WITH (m='32', ef_construction='128');")
    assert "over 1M rows" in index.comment


@pytest.mark.parametrize(("rows", "options", "why"), [
    (50_000, "m='16', ef_construction='64'", "under 100K rows"),
    (500_000, "m='16', ef_construction='64'", "100K to 1M rows"),
    (5_000_000, "m='32', ef_construction='128'", "over 1M rows"),
])
def test_auto_follows_the_seeds_sizing_guide_and_says_so(rows: int, options: str,
                                                         why: str) -> None:
    script = render_script(parse_settings({"expectedRows": rows}, "dev"))
    assert f"USING hnsw (vector public.vector_cosine_ops)\n  WITH ({options});" in script
    assert f"vectorIndexMethod=auto with expectedRows={rows} ({why}" in script


def test_ivfflat_and_measures() -> None:
    index = model(vectorIndexMethod="ivfflat", vectorIndexMeasure="ip",
                  expectedRows=200_000)["index:public.memories_vector_idx"]
    assert index.ddl.endswith("USING ivfflat (vector public.vector_ip_ops)\n  WITH (lists='200');")


def test_indexed_stacks_above_2000_dimensions_use_halfvec() -> None:
    """halfvec(N) columns and a halfvec_<measure>_ops index: pgvector indexes vector up to
    2000 dimensions, halfvec up to 4000 (pgvector 0.7.0, required where it is used)."""
    specs = model(dimensions=3072, **POSTGRES)
    for table in ("public.memories", "public.memories_entities", "mem0_backup.memories",
                  "mem0_backup.memories_entities"):
        spec = specs[f"table:{table}"]
        assert "    vector public.halfvec(3072),\n" in spec.ddl
        assert [(r.extension, r.min_version) for r in spec.requires] == [("vector", "0.7.0")]
    index = specs["index:public.memories_vector_idx"]
    assert "USING hnsw (vector public.halfvec_cosine_ops)" in index.ddl
    assert index.requires == specs["table:public.memories"].requires
    assert "halfvec(3072)" in index.comment
    # Functions keep their vector arguments: a vector casts to halfvec implicitly.
    assert specs["function:public.match_memories"].arguments == \
        "public.vector, integer, jsonb"
    # halfvec has no default ivfflat class: unlike vector_l2_ops, it is always named.
    ivfflat = model(dimensions=3072, vectorIndexMethod="ivfflat", vectorIndexMeasure="l2",
                    **POSTGRES)["index:public.memories_vector_idx"]
    assert "USING ivfflat (vector public.halfvec_l2_ops)" in ivfflat.ddl
    ts = model(dimensions=3072, clientProfile="typescript", **POSTGRES)
    assert "embedding public.halfvec(3072)" in ts["table:public.memories"].ddl
    assert "(embedding public.halfvec_cosine_ops)" in ts["index:public.memories_vector_idx"].ddl
    # Up to 2000, or without an index: vector, no requirement.
    plain = model(dimensions=3072, vectorIndexMethod="none", **POSTGRES)
    assert "vector public.vector(3072)" in plain["table:public.memories"].ddl
    assert plain["table:public.memories"].requires == ()


def test_no_vector_index_when_method_is_none() -> None:
    kinds = [s.name for s in model(vectorIndexMethod="none").values() if s.kind == "index"]
    assert not [name for name in kinds if name.endswith("_vector_idx")]


def test_search_settings_cover_mem0s_limit_and_follow_the_target() -> None:
    postgres = model(**POSTGRES)["role_settings:mem0_app-settings"]
    assert postgres.ddl == ("ALTER ROLE mem0_app SET hnsw.ef_search TO '200';\n"
                            "ALTER ROLE mem0_app SET hnsw.iterative_scan TO 'relaxed_order';\n"
                            "ALTER ROLE mem0_app SET plan_cache_mode TO 'force_custom_plan';\n"
                            "ALTER ROLE mem0_app SET random_page_cost TO '1.1';")
    [requirement] = postgres.requires
    assert (requirement.extension, requirement.min_version) == ("vector", "0.8.0")
    assert "iterativeScan" in requirement.hint
    # the embedded server's pgvector 0.6 has no iterative scans: auto turns them off there
    embedded = model()["role_settings:mem0_app-settings"]
    assert embedded.ddl == ("ALTER ROLE mem0_app SET hnsw.ef_search TO '200';\n"
                            "ALTER ROLE mem0_app SET plan_cache_mode TO 'force_custom_plan';\n"
                            "ALTER ROLE mem0_app SET random_page_cost TO '1.1';")
    assert embedded.requires == ()
    supabase = model(**SUPABASE)["role_settings:mem0_app-settings"]
    assert "ALTER ROLE mem0_app SET search_path TO public, extensions;" in supabase.ddl


def test_supabase_keeps_extensions_in_their_schema_and_lets_the_app_role_use_them() -> None:
    specs = model(**SUPABASE)
    assert specs["extension:extensions.vector"].ddl == \
        "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions;"
    assert "vector extensions.vector(1536)" in specs["table:public.memories"].ddl
    assert "extensions.vector_cosine_ops" in specs["index:public.memories_vector_idx"].ddl
    assert specs["grant:extensions-to-mem0_app"].ddl == \
        "GRANT USAGE ON SCHEMA extensions TO mem0_app;"
    assert "OPERATOR(extensions.<=>)" in specs["function:public.match_memories"].ddl


def _grants(specs: dict[str, ObjectSpec]) -> dict[tuple[str, str], str]:
    return {(s.role, s.on): s.ddl for s in specs.values() if s.kind == "grant"}


def _python_table_grants(app: str, readonly: str, service: str) -> dict[tuple[str, str], str]:
    """app: DML on the memory tables, SELECT on history; readonly: SELECT; service: DML,
    SELECT on history (history is written by its trigger only)."""
    grants: dict[tuple[str, str], str] = {}
    for table in ("memories", "memories_entities", "memory_relationships", "memory_history"):
        on = f"TABLE public.{table}"
        dml = "SELECT" if table == "memory_history" else "DELETE, INSERT, SELECT, UPDATE"
        grants[(app, on)] = f"GRANT {dml} ON {on} TO {app};"
        grants[(readonly, on)] = f"GRANT SELECT ON {on} TO {readonly};"
        grants[(service, on)] = f"GRANT {dml} ON {on} TO {service};"
    return grants


def _history_function_revokes(*roles: str) -> dict[tuple[str, str], str]:
    """The SECURITY DEFINER history function: nobody's to call (its trigger runs it)."""
    on = "FUNCTION public.mem0_record_history()"
    return {(role, on): f"REVOKE ALL ON {on} FROM {role};" for role in ("PUBLIC", *roles)}


def _backup_grants(service: str, *others: str) -> dict[tuple[str, str], str]:
    """Restore's history function is the service role's alone; the snapshot function is
    nobody's (pg_cron runs it as the deploying role); the service role reads the snapshots."""
    restore = "FUNCTION public.mem0_restore_history(jsonb)"
    snapshot = "FUNCTION mem0_backup.take_snapshot(interval)"
    grants = {(service, restore): f"GRANT EXECUTE ON {restore} TO {service};",
              (service, "SCHEMA mem0_backup"):
                  f"GRANT USAGE ON SCHEMA mem0_backup TO {service};"}
    for role in ("PUBLIC", *others):
        grants[(role, restore)] = f"REVOKE ALL ON {restore} FROM {role};"
    for role in ("PUBLIC", *others, service):
        grants[(role, snapshot)] = f"REVOKE ALL ON {snapshot} FROM {role};"
    for table in ("memories_snapshots", "memories", "memories_entities", "memory_relationships"):
        on = f"TABLE mem0_backup.{table}"
        grants[(service, on)] = f"GRANT SELECT ON {on} TO {service};"
    return grants


def _erasure_grants(service: str, *others: str) -> dict[tuple[str, str], str]:
    """forget() and erased() are the service role's alone; it reads the erasure records,
    never the salt."""
    grants = {(service, "SCHEMA mem0_erasure"):
              f"GRANT USAGE ON SCHEMA mem0_erasure TO {service};",
              (service, "TABLE mem0_erasure.salt"):
              f"REVOKE ALL ON TABLE mem0_erasure.salt FROM {service};",
              (service, "TABLE mem0_erasure.erasures"):
              f"GRANT SELECT ON TABLE mem0_erasure.erasures TO {service};"}
    for function in ("FUNCTION mem0_erasure.forget(text, text)",
                     "FUNCTION mem0_erasure.erased(text, text[])"):
        grants[(service, function)] = f"GRANT EXECUTE ON {function} TO {service};"
        for role in ("PUBLIC", *others):
            grants[(role, function)] = f"REVOKE ALL ON {function} FROM {role};"
    return grants


def _migration_grants(service: str) -> dict[tuple[str, str], str]:
    """mem0_migration is the service role's alone: the DML `migrate` needs, nothing more
    (no DELETE: runs, pre-images and history marks are kept)."""
    grants = {(service, "SCHEMA mem0_migration"):
              f"GRANT USAGE ON SCHEMA mem0_migration TO {service};"}
    for table, dml in (("runs", "INSERT, SELECT, UPDATE"), ("staged", "INSERT, SELECT"),
                       ("batches", "INSERT, SELECT"), ("preimages", "INSERT, SELECT"),
                       ("history_marks", "INSERT, SELECT")):
        on = f"TABLE mem0_migration.{table}"
        grants[(service, on)] = f"GRANT {dml} ON {on} TO {service};"
    return grants


def _promote_grants(writers: tuple[str, ...], others: tuple[str, ...]
                    ) -> dict[tuple[str, str], str]:
    """mem0_promote_session (invoker rights): the roles that may update memories call it;
    PUBLIC and the others hold nothing."""
    on = "FUNCTION public.mem0_promote_session(text, uuid[])"
    grants = {(role, on): f"GRANT EXECUTE ON {on} TO {role};" for role in writers}
    grants.update({(role, on): f"REVOKE ALL ON {on} FROM {role};"
                   for role in ("PUBLIC", *others)})
    return grants


def test_app_role_gets_rows_only_and_history_read_only() -> None:
    specs = model()
    assert specs["role:mem0_app"].ddl == (
        "CREATE ROLE mem0_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT "
        "NOREPLICATION NOBYPASSRLS;")
    assert _grants(specs) == {
        **_python_table_grants("mem0_app", "mem0_readonly", "mem0_service"),
        **_history_function_revokes("mem0_app", "mem0_readonly", "mem0_service"),
        **_backup_grants("mem0_service", "mem0_app", "mem0_readonly"),
        **_erasure_grants("mem0_service", "mem0_app", "mem0_readonly"),
        **_migration_grants("mem0_service"),
        **_promote_grants(("mem0_app", "mem0_service"), ("mem0_readonly",)),
        ("mem0_owner", "SCHEMA public"): "GRANT CREATE, USAGE ON SCHEMA public TO mem0_owner;",
    }


def test_project_roles_each_have_one_job() -> None:
    specs = model(**POSTGRES)
    roles = {s.name: s.ddl for s in specs.values() if s.kind == "role"}
    attributes = "NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION"
    assert roles == {
        "mem0_owner": f"CREATE ROLE mem0_owner WITH NOLOGIN {attributes} NOBYPASSRLS;",
        "mem0_app": f"CREATE ROLE mem0_app WITH LOGIN {attributes} NOBYPASSRLS;",
        "mem0_readonly": f"CREATE ROLE mem0_readonly WITH LOGIN {attributes} NOBYPASSRLS;",
        "mem0_service": f"CREATE ROLE mem0_service WITH LOGIN {attributes} BYPASSRLS;",
    }
    # the owner owns every table and function, and its later functions are nobody's to call
    for spec in specs.values():
        if spec.kind in ("table", "function"):
            assert spec.ddl.endswith(" OWNER TO mem0_owner;"), spec.key
            assert "role:mem0_owner" in spec.depends_on, spec.key
    assert specs["default_privileges:mem0_owner-functions"].ddl == (
        "ALTER DEFAULT PRIVILEGES FOR ROLE mem0_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;")


def test_named_project_roles_get_the_same_grants() -> None:
    specs = model(**POSTGRES, appRole="app", ownerRole="own", readonlyRole="ro",
                  serviceRole="svc")
    assert {s.name for s in specs.values() if s.kind == "role"} == {"own", "app", "ro", "svc"}
    assert _grants(specs) == {
        **_python_table_grants("app", "ro", "svc"),
        **_history_function_revokes("app", "ro", "svc"),
        **_backup_grants("svc", "app", "ro"),
        **_erasure_grants("svc", "app", "ro"),
        **_migration_grants("svc"),
        **_promote_grants(("app", "svc"), ("ro",)),
        ("own", "SCHEMA public"): "GRANT CREATE, USAGE ON SCHEMA public TO own;",
    }


def test_supabase_creates_only_the_app_role_and_grants_to_its_own_roles() -> None:
    specs = model(**SUPABASE)
    assert [s.name for s in specs.values() if s.kind == "role"] == ["mem0_app"]
    assert not [s for s in specs.values() if s.kind == "default_privileges"]
    table = specs["table:public.memories"]  # owned by Supabase's postgres, not created here
    assert table.ddl.endswith("\nALTER TABLE public.memories OWNER TO postgres;")
    assert not [d for d in table.depends_on if d.startswith("role:")]
    grants = _grants(specs)
    expected = _python_table_grants("mem0_app", "authenticated", "service_role")
    for table in ("memories", "memories_entities", "memory_relationships"):
        on = f"TABLE public.{table}"
        expected[("authenticated", on)] = \
            f"GRANT DELETE, INSERT, SELECT, UPDATE ON {on} TO authenticated;"
    for table in ("memories", "memories_entities", "memory_relationships", "memory_history"):
        on = f"TABLE public.{table}"
        expected[("anon", on)] = f"REVOKE ALL ON {on} FROM anon;"
    assert grants == {
        **expected,
        **_history_function_revokes("mem0_app", "anon", "authenticated", "service_role"),
        **_backup_grants("service_role", "mem0_app", "anon", "authenticated"),
        **_erasure_grants("service_role", "mem0_app", "anon", "authenticated"),
        **_migration_grants("service_role"),
        **_promote_grants(("mem0_app", "authenticated", "service_role"), ("anon",)),
        ("mem0_app", "SCHEMA extensions"): "GRANT USAGE ON SCHEMA extensions TO mem0_app;",
        ("mem0_app", "SCHEMA auth"): "GRANT USAGE ON SCHEMA auth TO mem0_app;",
        **{(role, "SEQUENCE public.memory_history_id_seq"):
           f"REVOKE ALL ON SEQUENCE public.memory_history_id_seq FROM {role};"
           for role in ("anon", "authenticated", "service_role")},
    }


def test_history_leaves_the_vector_out_unless_asked() -> None:
    default = model()["function:public.mem0_record_history"].ddl
    assert "pg_catalog.to_jsonb(NEW) - 'vector'::text;" in default
    kept = model(historyIncludesVectors=True)["function:public.mem0_record_history"].ddl
    assert "pg_catalog.to_jsonb(NEW);" in kept
    assert "SECURITY DEFINER" in default and " SET search_path TO ''" in default


def test_functions_pin_their_search_path() -> None:
    for spec in model().values():
        if spec.kind == "function":
            assert "\n SET search_path TO ''\n" in spec.ddl, spec.key


def test_typescript_profile_is_the_ts_sdks_contract() -> None:
    specs = model(clientProfile="typescript")
    tables = {s.name: s.ddl for s in specs.values() if s.kind == "table"}
    assert set(tables) == {"memories", "memory_migrations", "memory_history"}
    assert "    id text NOT NULL,\n    embedding public.vector(1536),\n    metadata jsonb," \
        in tables["memories"]
    assert "previous_value text" in tables["memory_history"]
    match = specs["function:public.match_vectors"]
    assert match.ddl.startswith(
        "CREATE OR REPLACE FUNCTION public.match_vectors(query_embedding public.vector, "
        "match_count integer, filter jsonb DEFAULT '{}'::jsonb)\n"
        " RETURNS TABLE(id text, similarity double precision, metadata jsonb)")
    assert "function:public.match_memories" not in specs
    assert "USING hnsw (embedding public.vector_cosine_ops)" in \
        specs["index:public.memories_vector_idx"].ddl


def test_scratch_schema_builds_the_same_objects_elsewhere() -> None:
    settings = parse_settings({}, "dev")
    scratch = {s.key: s for s in build_model(settings, schema="bench")}
    assert "table:bench.memories" in scratch and "function:bench.memory_neighbours" in scratch
    assert "FROM bench.memory_relationships r" in scratch["function:bench.memory_neighbours"].ddl
    assert "extension:public.vector" in scratch  # the extension stays where it is


def test_render_shows_the_auto_choice_and_warnings() -> None:
    script = render_script(parse_settings({"vectorIndexMeasure": "l2"}, "dev"))
    assert "-- index:public.memories_vector_idx: hnsw chosen by vectorIndexMethod=auto" in script
    assert "-- WARNING: vectorIndexMeasure is 'l2'" in script
    assert script.index("CREATE EXTENSION") < script.index("CREATE TABLE") < script.index(
        "CREATE INDEX")
    assert script.rstrip().endswith("COMMIT;")


def test_requirements_compare_versions_as_numbers() -> None:
    from components.model import Requirement

    iterative = Requirement("vector", "0.8.0", "hint")
    assert iterative.met_by("0.8.0") and iterative.met_by("0.10.1")
    assert not iterative.met_by("0.7.4") and not iterative.met_by(None)


@pytest.mark.parametrize("raw", [{}, POSTGRES, SUPABASE, {"clientProfile": "typescript"},
                                 {**POSTGRES, "tenancy": "org", "analyzeSchedule": "@daily",
                                  "snapshotSchedule": "0 3 * * *"}])
def test_every_spec_carries_fields_that_render_its_ddl_and_survive_json(
        raw: dict[str, object]) -> None:
    """The provider applies from the fields it gets back from state: they must come back
    equal through JSON (Pulumi keeps lists, not tuples), and render the DDL a preview
    diffs, byte for byte."""
    import json

    from components.kinds import REGISTRY, Kind, fields_from_json, fields_json
    from components.provider import object_inputs

    assert list(REGISTRY) == list(Kind)
    for spec in build_model(parse_settings(raw, "dev")):
        kind = REGISTRY[spec.kind]
        assert spec.family == kind.family, spec.key
        # What apply reads: the model's fields, or (an index) the part its inputs carry.
        sent = spec.fields if kind.to_inputs is None else kind.to_inputs(spec.fields)
        assert isinstance(sent, kind.fields), spec.key
        stored = json.loads(json.dumps(object_inputs(spec, "dsn", "db", False)["fields"]))
        assert fields_from_json(kind.fields, stored) == sent, spec.key
        assert kind.fields_of({"fields": stored}) == sent, spec.key
        assert stored == fields_json(sent)
        if spec.kind == Kind.INDEX:
            # The statement that builds it under another name is the declared one renamed.
            assert sent.statement(spec.ddl, "x_new", False) == \
                spec.ddl.replace(f"INDEX {spec.name} ON", "INDEX x_new ON", 1)
        if spec.kind == Kind.FUNCTION:
            assert spec.ddl.endswith(f"\nALTER FUNCTION {spec.fields.signature} OWNER TO "
                                     f"{spec.fields.owner};")
        else:
            assert spec.fields.ddl() == spec.ddl, spec.key
            drop = spec.fields.drop_sql(spec.schema) if spec.kind == Kind.INDEX \
                else spec.fields.drop_sql()
            assert drop == spec.drop_sql, spec.key


def test_inputs_without_fields_still_give_what_apply_needs() -> None:
    """State written before fields existed (provider version 4): the kinds that need
    fields there derive them from the other inputs."""
    from components.kinds import REGISTRY, Kind

    specs = model(**POSTGRES, analyzeSchedule="@daily")
    for key in ("role_settings:mem0_app-settings", "cron_job:mem0:dev:memories:analyze",
                "extension:public.vector"):
        spec = specs[key]
        old = {**spec.__dict__, "fields": None}
        derived = REGISTRY[Kind(spec.kind)].fields_of(old)
        assert derived is not None, key
        if spec.kind == Kind.ROLE_SETTINGS:
            assert derived.names == spec.fields.names  # only the names: resets and reads
        else:
            assert derived == spec.fields, key
