"""forget() covers every table the stack declares that can hold a person: each table's
rule comes from where the model declares it, and a table with a column that can hold an
id or a text (components.erasure.PERSON_COLUMNS) must be erased, not kept."""

from __future__ import annotations

import dataclasses

import pytest

from components.erasure import PERSON_COLUMNS, Erase, Erasure, forget_statements
from components.kinds import Kind
from components.model import ObjectSpec, build_model
from components.settings import parse_settings

PYTHON_STACKS = ({}, {"tenancy": "org"}, {"sessionScope": True}, {"collection": "mem"},
                 {"tenancy": "org", "target": "supabase", "databaseUrl": "postgresql://u@h/db",
                  "appRolePassword": "pw"})


def columns(table: ObjectSpec) -> set[str]:
    """The table's columns, less those its rule says are only named like a person's."""
    unrelated = table.erase.unrelated if table.erase else frozenset()
    return {line.split(" ", 1)[0] for line in table.fields.columns} - unrelated


def uncovered(specs: list[ObjectSpec]) -> list[str]:
    """Tables that can hold a person's id or texts but which forget() does not erase."""
    forget = next(s for s in specs if s.kind == Kind.FUNCTION and s.name == "forget")
    return [t.qualified_name for t in specs if t.kind == Kind.TABLE and (
        t.erase is None or (columns(t) & PERSON_COLUMNS and (
            t.erase.how == Erase.KEEP
            or f"DELETE FROM {t.qualified_name} t WHERE" not in forget.ddl)))]


@pytest.mark.parametrize("raw", PYTHON_STACKS)
def test_forget_erases_every_declared_table_that_can_hold_a_person(
        raw: dict[str, object]) -> None:
    specs = build_model(parse_settings(raw, "dev"))
    tables = [s for s in specs if s.kind == Kind.TABLE]
    assert uncovered(specs) == []
    # Tables kept whole hold no column of a person: counts, hashes, the salt.
    kept = {t.qualified_name for t in tables if t.erase and t.erase.how == Erase.KEEP}
    assert kept == {"mem0_backup.memories_snapshots" if "collection" not in raw else
                    "mem0_backup.mem_snapshots", "mem0_erasure.salt", "mem0_erasure.erasures",
                    "mem0_migration.runs", "mem0_migration.batches",
                    "mem0_migration.history_marks"}
    # The memory tables of every schema are erased: live, snapshot copies, migration's
    # staged records and pre-images.
    schemas = {t.schema for t in tables if t.erase and t.erase.how != Erase.KEEP}
    assert schemas == {"public", "mem0_backup", "mem0_migration"}


def test_the_check_fails_on_a_table_left_out() -> None:
    specs = build_model(parse_settings({"tenancy": "org"}, "dev"))
    keep = Erasure(Erase.KEEP, "forgotten on purpose")
    for name in ("public.memories", "public.memory_org_members", "mem0_backup.memories",
                 "mem0_migration.staged", "mem0_migration.preimages"):
        changed = [dataclasses.replace(s, erase=keep) if s.kind == Kind.TABLE and
                   s.qualified_name == name else s for s in specs]
        assert uncovered(changed) == [name]
    # A table the function's body does not name (declared after forget was rendered).
    memories = next(s for s in specs if s.key == "table:public.memories")
    extra = dataclasses.replace(memories, name="memories_archive")
    assert uncovered([*specs, extra]) == ["public.memories_archive"]


def test_every_table_must_say_how_it_is_erased() -> None:
    with pytest.raises(ValueError, match="says why"):
        Erasure(Erase.KEEP)
    with pytest.raises(ValueError, match="says why"):
        Erasure(Erase.PAYLOAD, "no reason needed")
    with pytest.raises(ValueError, match="nothing to erase"):
        forget_statements([("public.t", Erasure(Erase.EDGES))])


def test_the_typescript_profile_declares_no_forget() -> None:
    specs = build_model(parse_settings({"clientProfile": "typescript"}, "dev"))
    assert not [s for s in specs if s.schema == "mem0_erasure"]
    assert {s.erase.how for s in specs if s.kind == Kind.TABLE and s.erase} == {Erase.KEEP}


def test_edges_go_before_memories_and_history_after() -> None:
    specs = build_model(parse_settings({"tenancy": "org"}, "dev"))
    ddl = next(s for s in specs if s.key == "function:mem0_erasure.forget").ddl
    order = [ddl.index(f"DELETE FROM {t} t") for t in (
        "public.memory_relationships", "public.memories", "public.memory_history",
        "public.memory_org_members")]
    assert order == sorted(order)
