"""Changing a stack's tenancy through the Pulumi CLI: only access changes, no row is lost."""

from __future__ import annotations

import json

import psycopg

from components.connection import connect, role_url
from tests.conftest import APP_PASSWORD, TestDatabase, app_role_for
from tests.integration.test_deploy import changed

# The membership table and what reads it; forget() also erases a person's memberships once
# the table exists, so its body changes with the tenancy.
MEMBERSHIP_OBJECTS = ("memory_org_members", "mem0_org_ids", "mem0_erasure.forget")


def _add_memories(database: TestDatabase) -> None:
    with database.connect() as conn:
        for user, org in (("alice", "acme"), ("bob", "acme"), ("carol", "globex")):
            conn.execute(
                "INSERT INTO public.memories (id, vector, payload) VALUES"
                " (gen_random_uuid(), NULL, %s)",
                (json.dumps({"user_id": user, "org_id": org, "data": f"{user}'s memory"}),))


# The app role binds to the user its connection names only when it is not trusted with
# every row (the default): these tests read each tenancy's rules through it.
BOUND = "optional"


def _visible_to(database: TestDatabase, user: str) -> list[str]:
    """What the app role sees once its connection names a user (mem0.user_id)."""
    url = role_url(database.dsn, app_role_for(database), APP_PASSWORD)
    with connect(url) as conn:
        conn.execute("SELECT pg_catalog.set_config('mem0.user_id', %s, false)", (user,))
        rows = conn.execute("SELECT payload ->> 'user_id' FROM public.memories"
                            " ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def test_user_to_org_changes_only_access_and_keeps_every_row(make_stack,
                                                             database: TestDatabase) -> None:
    make_stack(tenancy="user", appRoleIdentity=BOUND).up().raise_for_error()
    _add_memories(database)
    assert _visible_to(database, "alice") == ["alice"]
    history_rows = database.scalar("SELECT count(*) FROM public.memory_history")

    preview = make_stack(tenancy="org", appRoleIdentity=BOUND).preview()
    report = make_stack(tenancy="org", appRoleIdentity=BOUND).up().raise_for_error()
    touched = changed(report)
    assert touched == changed(preview)  # the preview said exactly what the apply did
    for name, op in touched.items():
        kind_family = name.rsplit("::", 1)[-1].split("-")[2]  # mem0-dev-<family>-<object>
        membership = any(obj in name for obj in MEMBERSHIP_OBJECTS)
        assert kind_family == "policies" or membership, (name, op)
        if not membership:
            assert op in ("update", "create", "delete", "replace"), (name, op)
    assert any("memory_org_members" in n and op == "create" for n, op in touched.items())
    assert not [n for n in touched if "-tables-" in n and "memory_org_members" not in n]

    assert database.scalar("SELECT count(*) FROM public.memories") == 3
    assert database.scalar("SELECT count(*) FROM public.memory_history") == history_rows
    assert _visible_to(database, "alice") == []  # no organisation yet
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memory_org_members (org_id, user_id) VALUES"
                     " ('acme', 'alice')")
    assert _visible_to(database, "alice") == ["alice", "bob"]
    assert _visible_to(database, "carol") == []

    # the membership table holds a row
    back = make_stack(tenancy="user", appRoleIdentity=BOUND).up()
    assert back.error and "memory_org_members" in back.error and "allowDataLoss" in back.error
    assert database.scalar("SELECT count(*) FROM public.memory_org_members") == 1


def test_org_edges_carry_their_memories_organisation(make_stack,
                                                     database: TestDatabase) -> None:
    """A member of two organisations cannot label an edge between one organisation's
    memories with the other, where that other's members would read it."""
    make_stack(tenancy="org", appRoleIdentity=BOUND).up().raise_for_error()
    ids = {}
    with database.connect() as conn:
        for org in ("acme", "globex"):
            conn.execute("INSERT INTO public.memory_org_members (org_id, user_id) VALUES"
                         " (%s, 'alice')", (org,))
        for name in ("a1", "a2"):
            ids[name] = conn.execute(
                "INSERT INTO public.memories (id, vector, payload) VALUES"
                " (gen_random_uuid(), NULL, %s) RETURNING id::text",
                (json.dumps({"user_id": "alice", "org_id": "acme", "data": name}),)
            ).fetchone()[0]
    url = role_url(database.dsn, app_role_for(database), APP_PASSWORD)
    insert = ("INSERT INTO public.memory_relationships (source_memory_id, target_memory_id,"
              " relationship_type, user_id, org_id) VALUES (%s, %s, %s, 'alice', %s)")
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_catalog.set_config('mem0.user_id', 'alice', false)")
        conn.execute(insert, (ids["a1"], ids["a2"], "same org", "acme"))  # allowed
        try:
            conn.execute(insert, (ids["a1"], ids["a2"], "relabelled", "globex"))
            raise AssertionError("an acme edge labelled globex was accepted")
        except psycopg.errors.InsufficientPrivilege as exc:
            assert "row-level security" in str(exc)
    assert database.scalar("SELECT count(*) FROM public.memory_relationships") == 1
