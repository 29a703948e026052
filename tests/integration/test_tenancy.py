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


# What orgAdmins and agentSpaces add besides policies: the identity functions, the grants
# that let only the policies' roles call the definer one, and each table's access matrix
# (the row-security resource's notes).
ACCESS_OPTION_OBJECTS = ("mem0_admin_org_ids", "mem0_agent_id")


def test_org_admins_and_agent_spaces_change_only_access(make_stack,
                                                        database: TestDatabase) -> None:
    """On an org stack, switching orgAdmins and agentSpaces on touches policies, the two
    functions (and who may call them) and the matrices; no table. The preview says
    exactly what the apply does, a second run changes nothing (the declared SQL is
    canonical), and switching them off again removes what they added."""
    make_stack(tenancy="org", appRoleIdentity=BOUND).up().raise_for_error()
    _add_memories(database)
    with database.connect() as conn:  # the role column is there before orgAdmins is on
        conn.execute("INSERT INTO public.memory_org_members (org_id, user_id, role) VALUES"
                     " ('acme', 'alice', 'admin'), ('acme', 'bob', 'member')")
    assert _visible_to(database, "bob") == ["alice", "bob"]  # read: the organisation's rows
    options = {"tenancy": "org", "appRoleIdentity": BOUND, "orgAdmins": True,
               "agentSpaces": True}
    preview = make_stack(**options).preview()
    report = make_stack(**options).up().raise_for_error()
    touched = changed(report)
    assert touched == changed(preview)
    for name, op in touched.items():
        family = name.rsplit("::", 1)[-1].split("-")[2]
        new_object = any(obj in name for obj in ACCESS_OPTION_OBJECTS)
        assert family in ("policies", "security") or new_object, (name, op)
        assert op != "replace" or family == "policies", (name, op)
    created = {n for n, op in touched.items() if op == "create"}
    assert all(any(obj in n for obj in ACCESS_OPTION_OBJECTS) for n in created
               if "policies" not in n), created
    assert any("mem0_admin_org_ids" in n for n in created)
    assert any("mem0_agent_id" in n for n in created)
    assert not [n for n in touched if "-tables-" in n]
    assert set(changed(make_stack(**options).up().raise_for_error()).values()) == set()

    url = role_url(database.dsn, app_role_for(database), APP_PASSWORD)
    with connect(url) as conn:  # alice, admin of acme, edits bob's memory
        conn.execute("SELECT pg_catalog.set_config('mem0.user_id', 'alice', false)")
        edited = conn.execute("UPDATE public.memories SET payload = payload || "
                              "'{\"data\": \"edited\"}' WHERE payload ->> 'user_id' = 'bob'")
        assert edited.rowcount == 1

    back = make_stack(tenancy="org", appRoleIdentity=BOUND).up().raise_for_error()
    assert {n for n, op in changed(back).items() if op == "delete"
            and "policies" not in n} and all(
        any(obj in n for obj in ACCESS_OPTION_OBJECTS)
        for n, op in changed(back).items() if op == "delete" and "policies" not in n)
    assert database.scalar("SELECT count(*) FROM pg_proc WHERE proname IN "
                           "('mem0_admin_org_ids', 'mem0_agent_id')") == 0
    assert database.scalar("SELECT count(*) FROM public.memory_org_members "
                           "WHERE role = 'admin'") == 1  # the column and its values stay
