"""The import sources read back what mem0's own providers wrote: a table made by its
`pgvector` provider, a `vecs` collection made by its `supabase` provider (vecs 0.4.5), and
a Platform export file; each entry a Record equal to what mem0 stored, or a Problem with
its origin."""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from components.migrate.records import MigrationError, Problem, Record, SourceKind
from components.migrate.sources import open_source, source_from_arguments
from components.migrate.validate import Validator
from tests.conftest import TestDatabase
from tests.support.platform_server import synthetic_memories

DIMS = 16
ENTITIES: list[dict[str, Any]] = [
    {"user_id": "alice"},
    {"user_id": "alice", "agent_id": "helper"},
    {"agent_id": "helper"},
    {"user_id": "bob", "run_id": "run-1"},
]


@pytest.fixture(scope="module")
def mem0_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """mem0's offline recipe, imported only now (it reads MEM0_DIR at import)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MEM0_TELEMETRY", "False")
        env.setenv("MEM0_DIR", str(tmp_path_factory.mktemp("mem0-dir")))
        env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        yield importlib.import_module("tests.support.mem0_client")


def add_memories(mem0_client: ModuleType, vector_store: dict[str, Any], count: int) -> None:
    """`count` memories through mem0's own Memory.add(infer=False), with metadata."""
    memory = mem0_client.memory(vector_store, DIMS)
    try:
        for n in range(count):
            memory.add(f"memory number {n} about tea and hiking", infer=False,
                       metadata={"turn": n, "source": "chat"}, **ENTITIES[n % len(ENTITIES)])
    finally:
        mem0_client.close(memory)


def stored(database: TestDatabase, sql: str) -> dict[str, tuple[list[float], dict[str, Any]]]:
    with database.connect() as conn:
        rows = conn.execute(sql).fetchall()
    return {str(i): ([float(v) for v in json.loads(vec)], payload) for i, vec, payload in rows}


def records_of(source: Any, after: int = 0) -> list[Record]:
    found = list(source.read(after))
    assert all(isinstance(r, Record) for r in found), [r for r in found
                                                        if isinstance(r, Problem)]
    return found


def test_a_table_made_by_mem0s_pgvector_provider(database: TestDatabase,
                                                 mem0_client: ModuleType) -> None:
    add_memories(mem0_client, {"provider": "pgvector", "config": {
        "connection_string": database.dsn, "collection_name": "legacy_mem0",
        "embedding_model_dims": DIMS}}, 9)
    rows = stored(database, "SELECT id, vector::text, payload FROM public.legacy_mem0")
    source = source_from_arguments(None, "public.legacy_mem0", None, database.dsn)
    assert source.kind is SourceKind.TABLE and source.count() == 9
    found = records_of(source)
    assert [r.seq for r in found] == list(range(1, 10))
    assert [r.id for r in found] == sorted(rows)  # id order: seq is stable
    for record in found:
        vector, payload = rows[record.id]
        assert dict(record.payload) == payload
        assert record.vector == pytest.approx(vector, rel=1e-6)
        assert record.origin == f"row {record.seq} (id {record.id})"
    # What mem0 wrote is flat: metadata keys at the top, entity ids kept.
    first = found[0].payload
    assert {"data", "hash", "turn", "source", "created_at", "updated_at"} <= set(first)
    assert "metadata" not in first
    # The same text embeds to the same vector mem0 stored.
    embedder = mem0_client.HashEmbedder(DIMS)
    assert found[3].vector == pytest.approx(embedder.embed(found[3].payload["data"]),
                                            rel=1e-5, abs=1e-6)
    validator = Validator(DIMS, can_embed=False)
    assert [validator.check(r) for r in found] == [None] * 9
    # A resume reads from where it stopped, the same records; and a run's spec reopens it.
    assert [r.id for r in records_of(source, after=6)] == [r.id for r in found[6:]]
    again = open_source(source.spec(), database.dsn)
    assert source.spec() == {"kind": "table", "table": "public.legacy_mem0"}
    assert [r.id for r in records_of(again)] == [r.id for r in found]


def test_a_vecs_collection_made_by_mem0s_supabase_provider(database: TestDatabase,
                                                           mem0_client: ModuleType) -> None:
    add_memories(mem0_client, {"provider": "supabase", "config": {
        "connection_string": database.dsn, "collection_name": "legacy_vecs",
        "embedding_model_dims": DIMS}}, 7)
    rows = stored(database, "SELECT id, vec::text, metadata FROM vecs.legacy_vecs")
    source = source_from_arguments(None, None, "vecs.legacy_vecs", database.dsn)
    assert source.kind is SourceKind.VECS and source.count() == 7
    found = records_of(source)
    assert {r.id for r in found} == set(rows) and len(found) == 7
    for record in found:
        vector, payload = rows[record.id]
        assert dict(record.payload) == payload and "data" in payload
        assert record.vector == pytest.approx(vector, rel=1e-6)
    validator = Validator(DIMS, can_embed=False)
    assert [validator.check(r) for r in found] == [None] * 7
    # A vecs id is free text: one that is no UUID cannot go into the stack's uuid column.
    with database.connect() as conn:
        conn.execute("INSERT INTO vecs.legacy_vecs (id, vec, metadata) SELECT 'note-1', vec,"
                     " metadata FROM vecs.legacy_vecs LIMIT 1")
    odd = [r for r in records_of(source) if r.id == "note-1"]
    problem = Validator(DIMS, can_embed=False).check(odd[0])
    assert problem is not None and "not a UUID" in problem.reason
    assert problem.origin.startswith("vecs row") and "note-1" in problem.origin


def test_a_platform_file_reports_lines_that_are_not_memories(tmp_path: Path) -> None:
    memories = synthetic_memories(5)
    lines = [json.dumps(m) for m in memories]
    lines.insert(2, "{not json")
    lines.insert(4, json.dumps(["a", "list"]))
    lines.insert(5, '{"id": "caf\xe9"}')
    metadata = dict(memories[0], id=str(uuid.uuid4()), metadata={"user_id": "mallory"})
    lines.append(json.dumps(metadata))
    path = tmp_path / "platform.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    source = source_from_arguments(path, None, None, None)
    assert source.count() == 9
    found = list(source.read())
    problems = {p.seq: p for p in found if isinstance(p, Problem)}
    assert sorted(problems) == [3, 5, 6, 9]
    assert problems[6].reason.startswith("not UTF-8 text")
    assert problems[3].origin == "line 3" and problems[3].reason.startswith("not JSON")
    assert "not an object" in problems[5].reason
    assert "metadata key 'user_id' collides" in problems[9].reason
    assert [r.id for r in found if isinstance(r, Record)] == [m["id"] for m in memories]
    assert [r.seq for r in source.read(after=6)] == [7, 8, 9]
    assert open_source(source.spec(), None) == source


def test_source_arguments_name_the_allowed_forms(database: TestDatabase,
                                                 tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="exactly one source: FILE"):
        source_from_arguments(None, None, None, None)
    with pytest.raises(MigrationError, match="exactly one source"):
        source_from_arguments(tmp_path / "a.jsonl", "public.mem0", None, database.dsn)
    with pytest.raises(MigrationError, match=r"--from-table 'mem0': give SCHEMA.TABLE"):
        source_from_arguments(None, "mem0", None, database.dsn)
    with pytest.raises(MigrationError, match=r"--from-vecs 'vecs\.Mem0'"):
        source_from_arguments(None, None, "vecs.Mem0", database.dsn)
    with pytest.raises(MigrationError, match="--from-table needs a database"):
        source_from_arguments(None, "public.mem0", None, None)
    with pytest.raises(MigrationError, match=r"FILE .*no such file"):
        source_from_arguments(tmp_path / "missing.jsonl", None, None, None)
    missing = source_from_arguments(None, "public.nothing_here", None, database.dsn)
    with pytest.raises(MigrationError, match=r"public\.nothing_here: no such table"):
        missing.count()
    with database.connect() as conn:
        conn.execute("CREATE TABLE public.not_mem0 (id uuid, body text)")
    with pytest.raises(MigrationError, match=r"lacks column.*vector, payload"):
        list(source_from_arguments(None, "public.not_mem0", None, database.dsn).read())
    with pytest.raises(MigrationError, match="no known kind"):
        open_source({"kind": "csv"}, None)
