"""What every migration source yields and every later step consumes: one `Record` per
memory, already in mem0's flat payload; or a `Problem` that says where and why not.

The shared contract between the sources (a Platform export file, a mem0 `pgvector` table,
a `vecs` collection), validation, embedding, staging and the batches: a source never
writes, the loader never parses a source's format.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from components.errors import ExitCode, Mem0InfraError

__all__ = ["Embedder", "MigrationError", "Problem", "Record", "Source", "SourceKind"]


class MigrationError(Mem0InfraError):
    """A migration could not run (arguments, source, database); nothing was written by
    the step that raised it."""

    exit_code: ClassVar[ExitCode] = ExitCode.UNUSABLE


class SourceKind(StrEnum):
    """Where records come from."""

    PLATFORM_FILE = "platform-file"  # JSON Lines written by `migrate export --from platform`
    TABLE = "table"                  # a table mem0's pgvector provider made (id, vector, payload)
    VECS = "vecs"                    # mem0's supabase provider made (id, vec, metadata)


@dataclass(frozen=True)
class Record:
    """One memory, transformed and ready to validate.

    `seq` is its 1-based position in the source, stable from one read to the next (a
    resume continues after the highest seq staged). `origin` says where it is for a
    person ("line 12", "row 7 (id ...)"). `payload` is mem0's flat payload: data, hash,
    user_id/agent_id/run_id when known, created_at/updated_at as ISO-8601 text, metadata
    keys flattened. `vector` is None when the source has none (to be embedded)."""

    seq: int
    origin: str
    id: str
    payload: Mapping[str, Any]
    vector: Sequence[float] | None


@dataclass(frozen=True)
class Problem:
    """A source entry that is not a valid record: where (`seq`, `origin`) and why."""

    seq: int
    origin: str
    reason: str


class Source(Protocol):
    """An import source. `read(after)` yields its entries with seq > `after`, in seq
    order, every time the same; `spec()` is what a run stores so that `resume` (perhaps
    on another machine) can open the source again with `sources.open_source`."""

    @property
    def kind(self) -> SourceKind: ...

    def describe(self) -> str: ...

    def spec(self) -> dict[str, str]: ...

    def count(self) -> int | None: ...

    def read(self, after: int = 0) -> Iterator[Record | Problem]: ...


class Embedder(Protocol):
    """The application's embedder: texts in, one vector per text out, all of `dims`."""

    name: str
    dims: int | None  # None until known (the first embedding tells)

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...
