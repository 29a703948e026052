"""The Platform → mem0 payload transform and the validator, without a database."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from components.migrate.records import Problem, Record
from components.migrate.transform import from_platform, from_table_row, from_vecs_row, iso_time
from components.migrate.validate import Validator
from tests.support.platform_server import synthetic_memories

MEMORY_ID = "0b6f1c1e-5d1a-4b55-9d6a-2a8f5e0f6a11"


def platform(**fields: object) -> dict[str, object]:
    """A Platform memory with the documented fields (get_all v3)."""
    raw: dict[str, object] = {
        "id": MEMORY_ID, "memory": "Prefers green tea", "user_id": "alice",
        "agent_id": None, "app_id": None, "run_id": None, "session_id": None,
        "metadata": {"source": "chat", "turn": 3}, "categories": ["food"],
        "immutable": False, "expiration_date": None,
        "created_at": "2025-03-01T02:00:00.123456-07:00",
        "updated_at": "2025-03-02T02:00:00-07:00"}
    raw.update(fields)
    return raw


def record(raw: dict[str, object]) -> Record:
    found = from_platform(4, "line 4", raw)
    assert isinstance(found, Record), found
    return found


def test_platform_memory_becomes_mem0s_flat_payload() -> None:
    found = record(platform())
    assert found.id == MEMORY_ID and found.seq == 4 and found.vector is None
    assert found.origin == f"line 4 (id {MEMORY_ID})"
    assert dict(found.payload) == {
        "data": "Prefers green tea",
        "hash": hashlib.md5(b"Prefers green tea").hexdigest(),
        "user_id": "alice",
        "created_at": "2025-03-01T02:00:00.123456-07:00",
        "updated_at": "2025-03-02T02:00:00-07:00",
        "text_lemmatized": "Prefers green tea",
        "categories": ["food"], "source": "chat", "turn": 3}
    assert "role" not in found.payload  # absent unless the record gives one
    assert "metadata" not in found.payload  # flattened, as mem0 OSS stores it


def test_session_id_is_the_run_id_unless_there_is_one() -> None:
    assert record(platform(session_id="s-1")).payload["run_id"] == "s-1"
    assert record(platform(session_id="s-1", run_id="r-9")).payload["run_id"] == "r-9"
    both = record(platform(user_id=None, agent_id="helper", session_id="s-2")).payload
    assert both["agent_id"] == "helper" and both["run_id"] == "s-2" and "user_id" not in both


def test_optional_platform_fields_are_kept_only_when_set() -> None:
    kept = record(platform(expiration_date="2030-01-01", immutable=True, role="user",
                           app_id="support")).payload
    assert (kept["expiration_date"], kept["immutable"], kept["role"], kept["app_id"]) == (
        "2030-01-01", True, "user", "support")
    bare = record(platform(metadata=None, categories=[])).payload
    assert not {"expiration_date", "immutable", "categories", "app_id", "source"} & set(bare)


def test_times_get_a_zone_and_updated_defaults_to_created() -> None:
    found = record(platform(created_at="2025-03-01T09:00:00Z", updated_at=None)).payload
    assert found["created_at"] == found["updated_at"] == "2025-03-01T09:00:00+00:00"
    naive = record(platform(created_at="2025-03-01T09:00:00")).payload
    assert naive["created_at"] == "2025-03-01T09:00:00+00:00"
    assert iso_time("2025-03-01T02:00:00-07:00") == "2025-03-01T02:00:00-07:00"


@pytest.mark.parametrize(("fields", "reason"), [
    ({"metadata": {"user_id": "mallory"}}, "metadata key 'user_id' collides"),
    ({"metadata": {"data": "other text"}}, "metadata key 'data' collides"),
    ({"metadata": ["not", "an", "object"]}, "`metadata` is list"),
    ({"created_at": "yesterday"}, "`created_at` is not an ISO-8601 time"),
    ({"created_at": None}, "no `created_at`"),
    ({"memory": None}, "no `memory` text"),
    ({"id": None}, "no `id`"),
])
def test_platform_records_that_cannot_move_are_problems(fields: dict[str, object],
                                                        reason: str) -> None:
    found = from_platform(9, "line 9", platform(**fields))
    assert isinstance(found, Problem), found
    assert found.seq == 9 and found.origin.startswith("line 9")
    assert reason in found.reason


def test_table_and_vecs_rows_keep_the_payload_whole() -> None:
    payload = {"data": "x", "hash": "h", "user_id": "u", "odd": {"nested": 1}}
    row = from_table_row(3, uuid.UUID(MEMORY_ID), "[1,2.5,3]", payload)
    assert isinstance(row, Record)
    assert (row.id, row.vector, dict(row.payload)) == (MEMORY_ID, [1.0, 2.5, 3.0], payload)
    assert row.origin == f"row 3 (id {MEMORY_ID})"
    vecs = from_vecs_row(5, "free-text-id", [0.5, 0.25], payload)
    assert isinstance(vecs, Record) and vecs.origin == "vecs row 5 (id free-text-id)"
    bad = from_table_row(6, MEMORY_ID, None, ["not", "a", "payload"])
    assert isinstance(bad, Problem) and "not a JSON object" in bad.reason


def valid(**payload: object) -> Record:
    body: dict[str, object] = {"data": "text", "user_id": "alice",
                               "created_at": "2025-03-01T09:00:00+00:00"}
    body.update(payload)
    return Record(1, "line 1", str(uuid.uuid4()), body, [0.1, 0.2, 0.3])


@pytest.mark.parametrize(("change", "reason"), [
    ({"id": "mem-17"}, "is not a UUID"),
    ({"payload": {"user_id": "alice"}}, "no memory text"),
    ({"payload": {"data": "  ", "user_id": "alice"}}, "no memory text"),
    ({"payload": {"data": "text"}}, "none of user_id, agent_id, run_id"),
    ({"payload": {"data": "text", "user_id": "al ice"}}, "contains whitespace"),
    ({"payload": {"data": "text", "agent_id": 7}}, "agent_id is int"),
    ({"payload": {"data": "t", "run_id": "r", "updated_at": "soon"}}, "not an ISO-8601"),
    ({"vector": [0.1, float("nan"), 0.3]}, "not a finite number"),
    ({"vector": [float("inf"), float("-inf"), 0.3]}, "not a finite number"),
    ({"vector": [0.1, 0.2]}, "has 2 dimensions, the stack's have 3"),
    ({"vector": None}, "no vector, and no embedder"),
])
def test_validator_reports_each_rule(change: dict[str, object], reason: str) -> None:
    base = valid()
    fields = {"seq": 1, "origin": "line 1", "id": base.id, "payload": base.payload,
              "vector": base.vector, **change}
    problem = Validator(dims=3, can_embed=False).check(Record(**fields))  # type: ignore[arg-type]
    assert problem is not None and problem.origin == "line 1" and reason in problem.reason


def test_validator_accepts_what_it_should_and_embeds_what_lacks_or_misfits() -> None:
    validator = Validator(dims=3, can_embed=True)
    good = valid()
    assert validator.check(good) is None and not validator.needs_embedding(good)
    short = Record(2, "line 2", str(uuid.uuid4()), good.payload, [0.1, 0.2])
    none = Record(3, "line 3", str(uuid.uuid4()), good.payload, None)
    for needy in (short, none):
        assert validator.check(needy) is None and validator.needs_embedding(needy)


def test_finite_values_whose_sum_overflows_are_accepted() -> None:
    huge = Record(1, "line 1", str(uuid.uuid4()), valid().payload, [1e308, 1e308, -1e308])
    assert Validator(dims=3, can_embed=False).check(huge) is None


def test_duplicate_id_names_the_first_occurrence() -> None:
    validator = Validator(dims=3, can_embed=False)
    first = valid()
    again = Record(8, "line 8", first.id.upper(), first.payload, first.vector)
    assert validator.check(first) is None
    problem = validator.check(again)
    assert problem is not None and problem.seq == 8
    assert problem.reason == f"duplicate id {first.id.upper()}: first seen at line 1"


def test_every_synthetic_platform_memory_transforms_and_validates() -> None:
    validator = Validator(dims=384, can_embed=True)
    for seq, raw in enumerate(synthetic_memories(60), start=1):
        found = from_platform(seq, f"line {seq}", raw)
        assert isinstance(found, Record), found
        assert validator.check(found) is None
