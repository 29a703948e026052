"""Provider behaviour specific to roles, functions and requirements (called directly)."""

from __future__ import annotations

import pytest

from components.model import ObjectSpec, Requirement
from components.provider import SqlObjectError, SqlObjectProvider
from tests.conftest import TestDatabase, app_role_for
from tests.integration.test_provider import model, props


def role_spec(database: TestDatabase) -> ObjectSpec:
    return model(database)[f"role:{app_role_for(database)}"]


def test_role_password_is_stored_as_a_scram_verifier(database: TestDatabase) -> None:
    provider = SqlObjectProvider()
    outs = provider.create(props(database, role_spec(database), password="first-pw")).outs
    role = app_role_for(database)
    verifier = database.scalar("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
    assert isinstance(verifier, str) and verifier.startswith("SCRAM-SHA-256$")
    assert "first-pw" not in verifier
    # a new password alone is an update that changes the verifier and nothing else
    assert provider.diff("r", outs, {**outs, "password": "second-pw"}).changes is True
    provider.update("r", outs, {**outs, "password": "second-pw"})
    assert database.scalar("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                           (role,)) != verifier
    # handed back as stored (the engine marks it secret again), never read from the server
    assert provider.read("r", outs).inputs["password"] == outs["password"]


def test_role_drift_changes_only_the_attributes_that_differ(database: TestDatabase) -> None:
    provider = SqlObjectProvider()
    spec = role_spec(database)
    outs = provider.create(props(database, spec)).outs
    role = app_role_for(database)
    with database.connect() as conn:
        conn.execute(f"ALTER ROLE {role} CREATEDB BYPASSRLS")
    live = provider.read("r", outs)
    assert "CREATEDB" in live.outs["ddl"] and "NOBYPASSRLS" not in live.outs["ddl"]
    provider.update("r", live.outs, props(database, spec))
    assert database.scalar("SELECT rolcreatedb OR rolbypassrls FROM pg_roles WHERE rolname = %s",
                           (role,)) is False


def test_a_missing_server_feature_is_refused_before_anything_changes(
        database: TestDatabase) -> None:
    provider = SqlObjectProvider()
    role = provider.create(props(database, role_spec(database))).outs
    provider.create(props(database, model(database)["extension:public.vector"]))
    settings = model(database)[f"role_settings:{app_role_for(database)}-settings"]
    future = [{"extension": "vector", "min_version": "99.0",
               "hint": "iterativeScan needs it: set iterativeScan to off"}]
    with pytest.raises(SqlObjectError, match=r"needs extension vector >= 99\.0 \(version "
                                             r"[0-9.]+ on this server\): iterativeScan"):
        provider.create(props(database, settings, requires=future))
    assert database.scalar("SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r "
                           "ON r.oid = s.setrole WHERE r.rolname = %s", (role["name"],)) == 0
    assert isinstance(settings.requires[0], Requirement)
    provider.create(props(database, settings))  # the real requirement (0.8.0) is met here


def test_a_function_whose_result_changes_is_replaced_in_one_transaction(
        database: TestDatabase) -> None:
    provider = SqlObjectProvider()
    specs = model(database)
    for key in ("extension:public.vector", "table:public.memories",
                "table:public.memory_relationships"):
        provider.create(props(database, specs[key]))
    spec = specs["function:public.memory_neighbours"]
    with database.connect() as conn:
        conn.execute("CREATE FUNCTION public.memory_neighbours(start_id uuid, max_depth integer "
                     "DEFAULT 2) RETURNS SETOF uuid LANGUAGE sql AS 'SELECT start_id'")
    with pytest.raises(SqlObjectError, match="cannot be adopted"):
        provider.create(props(database, spec))
    old = {**props(database, spec), "ddl": "old", "adopted": True}
    provider.update("f", old, props(database, spec))  # CREATE OR REPLACE cannot: drop first
    assert database.scalar("SELECT count(*) FROM public.memory_neighbours("
                           "gen_random_uuid(), 1)") == 0


def test_a_first_slice_table_with_rows_is_upgraded_in_place(database: TestDatabase) -> None:
    provider = SqlObjectProvider()
    specs = model(database, dimensions=3)
    provider.create(props(database, specs["extension:public.vector"]))
    table = specs["table:public.memories"]
    old_ddl = ("CREATE TABLE public.memories (\n    id uuid NOT NULL,\n"
               "    vector public.vector(3),\n    payload jsonb,\n"
               "    CONSTRAINT memories_pkey PRIMARY KEY (id)\n);")
    with database.connect() as conn:  # as the first slice's provider left it
        conn.execute(old_ddl)
    outs = props(database, table, ddl=old_ddl)
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories VALUES (gen_random_uuid(), '[1,2,3]', "
                     "'{\"user_id\": \"alice\", \"run_id\": \"r1\"}')")
    provider.update("t", outs, props(database, table))
    row = database.scalar("SELECT row(user_id, run_id, agent_id, created_at IS NOT NULL)::text"
                          " FROM public.memories")
    assert row == "(alice,r1,,t)"
