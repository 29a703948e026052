"""Every record checked before the first write: what mem0 would refuse or the stack's table
could not hold becomes a `Problem` with the record's origin and the reason.

The rules are mem0's own (mem0-contract.md 7, 8) and the stack table's: an id that is a
UUID (the table's `id uuid` column; a `vecs` id is free text, so only UUID text passes),
non-empty text in `data`, at least one of user_id/agent_id/run_id (mem0's `add` rule),
entity ids without whitespace (mem0 rejects them in filters, so such a memory could never
be found), times that parse, and a vector of finite floats with the stack's dimensions,
unless an embedder will replace it.
"""

from __future__ import annotations

import math
import uuid
from typing import Final

from components.migrate.records import Problem, Record
from components.migrate.transform import ENTITY_KEYS, iso_time

__all__ = ["Validator"]

_TIME_KEYS: Final = ("created_at", "updated_at")


class Validator:
    """Checks records one by one, remembering ids to report a duplicate with the origin of
    the first record that carried it."""

    def __init__(self, dims: int, can_embed: bool) -> None:
        self.dims = dims
        self.can_embed = can_embed
        self.seen: dict[str, str] = {}  # id -> origin of its first occurrence

    def needs_embedding(self, record: Record) -> bool:
        """True when the record has no vector, or one of other dimensions than the stack's."""
        return record.vector is None or len(record.vector) != self.dims

    def check(self, record: Record) -> Problem | None:
        """The record's first problem, or None when it can be written."""
        reason = self._reason(record)
        if reason is None:
            key = str(uuid.UUID(record.id))
            first = self.seen.get(key)
            if first is not None:
                reason = f"duplicate id {record.id}: first seen at {first}"
            else:
                self.seen[key] = record.origin
        return None if reason is None else Problem(record.seq, record.origin, reason)

    def _reason(self, record: Record) -> str | None:
        try:
            uuid.UUID(record.id)
        except ValueError:
            return (f"id {record.id!r} is not a UUID: the stack's id column is uuid, as "
                    "mem0's table is (a vecs id is free text; only UUID text can move)")
        payload = record.payload
        data = payload.get("data")
        if not isinstance(data, str) or not data.strip():
            return "no memory text: `data` must be non-empty text"
        entities = {key: payload.get(key) for key in ENTITY_KEYS
                    if payload.get(key) not in (None, "")}
        if not entities:
            return ("none of user_id, agent_id, run_id: mem0 needs at least one to store "
                    "and find a memory")
        for key, value in entities.items():
            if not isinstance(value, str):
                return f"{key} is {type(value).__name__}, not text"
            if any(ch.isspace() for ch in value):
                return f"{key} {value!r} contains whitespace, which mem0 rejects in entity ids"
        for key in _TIME_KEYS:
            if payload.get(key) is None:
                continue
            try:
                iso_time(payload[key])
            except ValueError as exc:
                return f"{key} {payload[key]!r} is not an ISO-8601 time ({exc})"
        return self._vector_reason(record)

    def _vector_reason(self, record: Record) -> str | None:
        vector = record.vector
        if vector is None:
            return None if self.can_embed else (
                "no vector, and no embedder to make one (give the import an embedder config file)")
        # A finite sum means finite values (NaN and infinities carry into it); only an
        # overflowing sum needs the value-by-value look.
        if not math.isfinite(sum(vector)) and not all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in vector):
            return "the vector has a value that is not a finite number"
        if len(vector) != self.dims and not self.can_embed:
            return (f"the vector has {len(vector)} dimensions, the stack's have {self.dims}; "
                    "give the import an embedder config file to embed the text again")
        return None
