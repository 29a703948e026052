"""Each source's raw entry → a `Record` in mem0's flat payload (mem0-contract.md 7, 11, 13).

- A Platform memory (what `get_all` returned, kept raw by `migrate export`): the text
  becomes `data` with mem0's MD5 `hash`, the entity ids stay, `session_id` becomes the
  `run_id` when there is none, `categories` stays as a payload key, metadata keys are
  flattened as mem0 OSS flattens them, and the times are kept, as ISO-8601 with a zone.
- A row of a table mem0's `pgvector` provider made (`id, vector, payload`): the payload
  is already flat and is kept whole.
- A row of a `vecs` collection mem0's `supabase` provider made (`id, vec, metadata`): the
  provider upserts `(id, vector, payload)` tuples, so `metadata` is the same flat payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from components import mem0
from components.migrate.records import Problem, Record

__all__ = ["ENTITY_KEYS", "RESERVED_KEYS", "from_platform", "from_table_row",
           "from_vecs_row", "iso_time"]

ENTITY_KEYS: Final = ("user_id", "agent_id", "run_id")
# Keys mem0's payload owns (contract 7): a metadata key with one of these names would
# overwrite them when flattened, so such a record is reported, never silently changed.
RESERVED_KEYS: Final = frozenset({
    "data", "hash", "text_lemmatized", "created_at", "updated_at", "role", "actor_id",
    "attributed_to", "expiration_date", "memory_type", "categories", "app_id",
    "immutable", *ENTITY_KEYS})
# Platform fields that are not memories' content: who owns it on the Platform, what the
# add call received, its score in a search. Left behind (docs/migration.md lists them).
_PLATFORM_ONLY: Final = frozenset({"owner", "organization", "input", "score",
                                   "structured_attributes"})


def iso_time(value: object) -> str:
    """`value` (ISO-8601 text) as ISO-8601 with a time zone; a time without one is taken
    as UTC, the zone mem0 writes. Raises ValueError when it is not a time."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not ISO-8601 text")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z")
                                    else value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def from_platform(seq: int, origin: str, raw: Mapping[str, Any]) -> Record | Problem:
    """One Platform memory as mem0 OSS would have stored it; a Problem when it cannot be
    one without losing or overwriting something."""
    memory_id = raw.get("id")
    if not isinstance(memory_id, str) or not memory_id:
        return Problem(seq, origin, "no `id` (a Platform memory always has one)")
    where = f"{origin} (id {memory_id})"
    text = raw.get("memory")
    if not isinstance(text, str):
        return Problem(seq, where, "no `memory` text")
    times: dict[str, str] = {}
    for key in ("created_at", "updated_at"):
        if raw.get(key) is None:
            continue
        try:
            times[key] = iso_time(raw[key])
        except ValueError as exc:
            return Problem(seq, where, f"`{key}` is not an ISO-8601 time: {exc}")
    if "created_at" not in times:
        return Problem(seq, where, "no `created_at` (a Platform memory always has one)")
    times.setdefault("updated_at", times["created_at"])

    extra: dict[str, Any] = {}
    for key in ("agent_id", "app_id"):
        if _text(raw.get(key)):
            extra[key] = raw[key]
    run = _text(raw.get("run_id")) or _text(raw.get("session_id"))
    if run:
        extra["run_id"] = run
    for key in ("categories",):
        if raw.get(key):
            extra[key] = list(raw[key])
    if raw.get("expiration_date") is not None:
        extra["expiration_date"] = raw["expiration_date"]
    if raw.get("immutable") is True:
        extra["immutable"] = True
    metadata = raw.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        return Problem(seq, where, f"`metadata` is {type(metadata).__name__}, not an object")
    for key, value in (metadata or {}).items():
        if key in RESERVED_KEYS:
            return Problem(seq, where, f"metadata key {key!r} collides with mem0's payload "
                                       f"key of that name; rename it on the Platform or "
                                       f"drop it from this record")
        extra[key] = value
    payload = mem0.payload(text, user_id=_text(raw.get("user_id")),
                           role=_text(raw.get("role")), **times, **extra)
    return Record(seq, where, memory_id, payload, None)


def _vector(value: object) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, str):  # pgvector's text form, '[1,2,3]'
        return [float(v) for v in value.strip("[]").split(",") if v.strip()]
    if hasattr(value, "to_list"):  # pgvector.Vector: its numpy array's tolist() is floats
        return list(value.to_list())
    if hasattr(value, "tolist"):  # a numpy array
        return [float(v) for v in value.tolist()]
    return [float(v) for v in value]  # type: ignore[attr-defined]  # a sequence


def _row(seq: int, kind: str, row_id: object, vector: object,
         payload: object) -> Record | Problem:
    ident = str(row_id)
    origin = f"{kind} {seq} (id {ident})"
    if not isinstance(payload, Mapping):
        return Problem(seq, origin, f"the payload is {type(payload).__name__}, not a JSON "
                                    "object")
    try:
        values = _vector(vector)
    except (TypeError, ValueError) as exc:
        return Problem(seq, origin, f"the vector is not a list of numbers: {exc}")
    return Record(seq, origin, ident, dict(payload), values)


def from_table_row(seq: int, row_id: object, vector: object,
                   payload: object) -> Record | Problem:
    """A row of a mem0 `pgvector` table: the payload as mem0 wrote it, the vector as a list."""
    return _row(seq, "row", row_id, vector, payload)


def from_vecs_row(seq: int, row_id: object, vec: object,
                  metadata: object) -> Record | Problem:
    """A row of a `vecs` collection: `metadata` is the payload mem0's supabase provider
    gave `upsert`."""
    return _row(seq, "vecs row", row_id, vec, metadata)

