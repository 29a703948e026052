"""A stack deployed by the previous provider updates in place under this one.

The state of existing stacks was written by the provider of commit bf91f37, the last one
before the real engine: provider_version 3, one-line index DDL, refreshed inputs without
the connection. The first `up` with this code must touch no object but to rewrite its
state or change it in place: no delete or replace, no index rebuilt, and no create but
the objects added since (the extended statistics, and what test_state_compat lists:
schemas mem0_migration and mem0_erasure, their tables, functions and grants, the
owner's erase policies, mem0_promote_session with its grants, and the (user_id, agent_id)
index).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TestDatabase
from tests.e2e.test_state_compat import ADDED_SINCE
from tests.support.versions import deployed_by

pytestmark = pytest.mark.e2e

PREVIOUS = "bf91f37"
DIMS = 8



def index_oids(database: TestDatabase) -> dict[str, int]:
    with database.connect() as conn:
        rows = conn.execute("SELECT relname::text, oid::int FROM pg_class WHERE relkind = 'i' "
                            "AND relnamespace = 'public'::regnamespace").fetchall()
    return dict(rows)


def test_a_stack_deployed_by_the_previous_provider_updates_in_place(
        make_stack, database: TestDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The previous code's defaults, as its Pulumi.yaml gave them; the upgrade then runs with
    # this version's (a trusted app role, ef_search 200): both change in place.
    stack = make_stack(dimensions=DIMS, appRoleIdentity="optional", hnswEfSearch=100)
    with deployed_by(PREVIOUS, stack, tmp_path / "previous", monkeypatch):
        stack.up().raise_for_error()
    versions = {r["inputs"].get("provider_version") for r in stack.state().values()
                if r["type"].endswith("mem0:SqlObject")}
    assert versions == {"3"}, "the first up ran the previous provider"
    before = index_oids(database)

    stack = make_stack(dimensions=DIMS)
    upgraded = stack.up().raise_for_error()
    # Only the objects added since are created.
    added = ("_user_stats", *ADDED_SINCE)
    created = [urn for urn, op in upgraded.ops().items() if op == "create"]
    assert created and all(any(a in urn for a in added) for urn in created), \
        [urn for urn in created if not any(a in urn for a in added)]
    assert any("_user_stats" in urn for urn in created), created
    assert set(upgraded.ops().values()) <= {"update", "same", "create"}, upgraded.ops()
    assert upgraded.ops("update"), "provider_version 4 is written to every object's state"
    after = index_oids(database)
    assert {k: v for k, v in after.items() if k in before} == before, "no index was rebuilt"
    assert set(after) - set(before) == {"memories_user_agent_idx"}, "the only index added"
    ddl = {r["inputs"]["name"]: r["inputs"]["ddl"] for r in stack.state().values()
           if r["type"].endswith("mem0:SqlObject") and r["inputs"]["kind"] == "index"}
    assert ddl["memories_vector_idx"].splitlines()[1].strip().startswith("USING hnsw")
    assert stack.refresh().raise_for_error().drift == []


BEFORE_ROLE = "2fd364f"  # the last commit whose membership table had no role column
SINCE_ROLE = ("mem0_promote_session", "_user_agent_idx")  # declared since, by every stack


def test_an_org_stack_gains_the_membership_role_column_in_place(
        make_stack, database: TestDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The role column came with orgAdmins, and every org stack has it: the first up with
    this code adds it (a constant default: a catalog change, no rewrite) and its CHECK to
    the live table, keeps every membership as a member, and changes no other object but
    the row-security notes (the access is the same while orgAdmins is off)."""
    stack = make_stack(dimensions=DIMS, tenancy="org")
    with deployed_by(BEFORE_ROLE, stack, tmp_path / "before-role", monkeypatch):
        stack.up().raise_for_error()
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memory_org_members (org_id, user_id) "
                     "VALUES ('acme', 'alice'), ('acme', 'bob')")
    table_oid = database.scalar("SELECT 'public.memory_org_members'::regclass::oid::int")
    upgraded = stack.up().raise_for_error()
    changed = {urn.rsplit("::", 1)[-1]: op
               for urn, op in upgraded.ops_by_type("mem0:SqlObject").items() if op != "same"}
    assert changed.pop("mem0-dev-tables-public.memory_org_members") == "update", changed
    # Besides: the objects added since (session promotion, the user/agent index), and the
    # tables' row-security notes, in place (the owner's words, per target, changed since).
    added = {urn: op for urn, op in changed.items() if any(a in urn for a in SINCE_ROLE)}
    assert added and set(added.values()) == {"create"}, added
    others = {urn: op for urn, op in changed.items() if urn not in added}
    assert others and all("-policies-" in urn and op == "update"
                          for urn, op in others.items()), others
    assert not upgraded.ops("delete") and not upgraded.ops("replace"), upgraded.ops()
    assert database.scalar("SELECT 'public.memory_org_members'::regclass::oid::int") \
        == table_oid, "the table was altered in place, not replaced"
    assert database.scalar("SELECT string_agg(user_id || ':' || role, ',' ORDER BY user_id) "
                           "FROM public.memory_org_members") == "alice:member,bob:member"
    assert set(stack.up().raise_for_error().ops().values()) == {"same"}
