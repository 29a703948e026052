"""The migration store's pure parts: run ids, batch ranges, payload times, the SQL names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from components.migrate.importer import same_vectors, user_of
from components.migrate.staging import parse_time
from components.migrate.store import Names, Run, RunState, new_run_id
from components.settings import parse_settings


def run(**options: object) -> Run:
    return Run("m1", "table", {}, "public.memories", 8, dict(options), RunState.RUNNING, 0, 0,
               False, [], None, datetime.now(UTC), None, "me")


def test_run_ids_sort_by_start_and_differ() -> None:
    at = datetime(2026, 12, 6, 21, 15, 0, tzinfo=UTC)
    ids = {new_run_id(at) for _ in range(20)}
    assert all(re.fullmatch(r"m20261206-211500-[0-9a-f]{4}", i) for i in ids)
    assert len(ids) > 1
    assert new_run_id(at) < new_run_id(at + timedelta(seconds=1))


def test_batches_cover_every_seq_once_in_order() -> None:
    r = run(batch_size=7, last_seq=120)
    assert r.total_batches == 18
    ranges = [r.batch_range(b) for b in range(1, r.total_batches + 1)]
    assert ranges[0] == (1, 7) and ranges[-1] == (120, 120)
    covered = [seq for first, last in ranges for seq in range(first, last + 1)]
    assert covered == list(range(1, 121))
    assert run(last_seq=0).total_batches == 0
    assert run(last_seq=1000).total_batches == 1  # default batch size 1000


def test_payload_times_parse_as_mem0_writes_them() -> None:
    pacific = timezone(timedelta(hours=-7))
    assert parse_time("2024-07-20T08:32:08.675366-07:00") == \
        datetime(2024, 7, 20, 8, 32, 8, 675366, tzinfo=pacific)
    assert parse_time("2024-07-20T08:32:08Z") == datetime(2024, 7, 20, 8, 32, 8, tzinfo=UTC)
    assert parse_time("2024-07-20T08:32:08") == datetime(2024, 7, 20, 8, 32, 8, tzinfo=UTC)
    assert parse_time("yesterday") is None and parse_time(None) is None and parse_time(5) is None


def test_per_user_key_and_vector_equality() -> None:
    assert user_of({"user_id": "alice", "agent_id": "a"}) == "alice"
    assert user_of({"agent_id": "planner"}) == "agent:planner"
    assert user_of({"run_id": "r1"}) == "run:r1"
    assert user_of({}) == "(none)"
    assert same_vectors([0.1, 0.2], [0.1, 0.2]) and not same_vectors([0.1, 0.2], [0.1, 0.3])
    assert same_vectors(None, None) and not same_vectors(None, [0.1])


def test_names_are_qualified_and_pgvector_equality_names_its_schema() -> None:
    names = Names.of(parse_settings({"target": "supabase", "databaseUrl": "postgresql://u@h/db",
                                     "appRolePassword": "pw", "collection": "mem"}, "prod"))
    assert names.memories == "public.mem" and names.runs == "mem0_migration.runs"
    assert names.marks == "mem0_migration.history_marks"
    assert names.vectors_differ("a", "b") == (
        "NOT COALESCE(a OPERATOR(extensions.=) b, a IS NULL AND b IS NULL)")
