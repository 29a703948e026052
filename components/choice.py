"""Closed sets of strings: the base of every `StrEnum` a setting or a spec holds.

A member is its value everywhere a string is expected (`==`, hashing, `str()`, f-strings,
JSON, psycopg); this base makes `repr()` the value's too, because messages quote values
with `!r` (`target is 'supabase'`) and must read the same for a member as for its string.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Choice"]


class Choice(StrEnum):
    """A `StrEnum` whose repr is its value's repr: `'hnsw'`, not `<IndexMethod.HNSW: ...>`."""

    def __repr__(self) -> str:
        return repr(self.value)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """Every member's plain string, in declaration order (messages list them so)."""
        return tuple(member.value for member in cls)
