"""The manifest: the first member of a backup, saying what the file holds and how to check
it (docs/backup.md lists every field).

Reading a manifest validates its shape before anything trusts it; a file whose first
member is not a manifest of this format is not a backup. Nothing read from a manifest ever
becomes SQL: restore compares it with the target's catalog and builds its statements from
the catalog alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from components.backup.catalog import portable_type
from components.backup.common import FORMAT, FORMAT_VERSION, RestoreRefused

KINDS = ("full", "user", "incremental")


@dataclass(frozen=True)
class TableEntry:
    table: str  # unqualified, in schema public
    member: str  # the archive member holding its rows
    columns: list[list[str]]  # [name, type as format_type prints it], in order
    rows: int
    sha256: str  # of the member's bytes
    bytes: int


@dataclass(frozen=True)
class Manifest:
    format: str
    version: int
    taken_at: str  # now() of the backup's transaction: its snapshot's time
    kind: str  # full | user | incremental (a window and a user_id: incremental)
    user_id: str | None
    since: str | None  # the window's start (--from, or --since)
    stack: str
    database: str  # host:port/dbname, never credentials
    server_version: str
    pgvector_version: str | None
    pgvector_schema: str | None
    settings: dict[str, Any]  # dimensions, collection, tenancy, clientProfile, ...
    layout_fingerprint: str
    tables: list[TableEntry]
    until: str | None = None  # the window's end (--to), exclusive; absent in older files

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n").encode()

    @property
    def scope(self) -> str:
        """What the backup selected, in words."""
        if self.since and self.until:
            words = [f"rows created or changed from {self.since} to {self.until}"]
        elif self.until:
            words = [f"rows created or changed before {self.until}"]
        else:
            words = [f"rows changed since {self.since}"] if self.since else []
        words += [f"user {self.user_id!r}"] if self.user_id is not None else []
        return ", ".join(words) or "every row"

    def describe(self) -> str:
        return (f"{self.kind} backup of stack {self.stack!r} ({self.database}; "
                f"{self.scope}), taken at {self.taken_at}")

    @property
    def dimensions(self) -> int:
        return int(self.settings["dimensions"])

    def entry(self, table: str) -> TableEntry | None:
        return next((t for t in self.tables if t.table == table), None)


def layout(tables: Sequence[tuple[str, Sequence[Sequence[str]]]],
           vector_schema: str | None) -> list[list[Any]]:
    """The tables' column lists with portable types: what must match between a backup
    and the database it is restored into."""
    return [[table, [[name, portable_type(type_, vector_schema)] for name, type_ in columns]]
            for table, columns in tables]


def fingerprint(tables: Sequence[tuple[str, Sequence[Sequence[str]]]],
                vector_schema: str | None) -> str:
    text = json.dumps(layout(tables, vector_schema), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --- reading --------------------------------------------------------------------------------

_TOP: dict[str, tuple[type, ...]] = {
    "format": (str,), "version": (int,), "taken_at": (str,), "kind": (str,),
    "user_id": (str, type(None)), "since": (str, type(None)), "stack": (str,),
    "database": (str,), "server_version": (str,), "pgvector_version": (str, type(None)),
    "pgvector_schema": (str, type(None)), "settings": (dict,),
    "layout_fingerprint": (str,), "tables": (list,)}
_OPTIONAL: dict[str, tuple[type, ...]] = {"until": (str, type(None))}
_TABLE: dict[str, tuple[type, ...]] = {
    "table": (str,), "member": (str,), "columns": (list,), "rows": (int,),
    "sha256": (str,), "bytes": (int,)}
_SETTINGS: dict[str, tuple[type, ...]] = {
    "dimensions": (int,), "collection": (str,), "tenancy": (str,), "clientProfile": (str,),
    "historyIncludesVectors": (bool,)}


def _fields(document: Mapping[str, Any], spec: Mapping[str, tuple[type, ...]],
            where: str) -> None:
    for key, types in spec.items():
        if key not in document:
            raise RestoreRefused(f"{where} has no field {key!r}")
        value = document[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise RestoreRefused(f"{where}: field {key!r} is {value!r}, not a "
                                 f"{' or '.join(t.__name__ for t in types)}")


def read_manifest(data: bytes, source: str) -> Manifest:
    """Parse and validate a manifest; RestoreRefused says why `source` is not a backup."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RestoreRefused(f"{source} is not a backup: its manifest is not JSON ({exc})") \
            from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise RestoreRefused(f"{source} is not a backup: its manifest does not say "
                             f"format {FORMAT!r}")
    if document.get("version") != FORMAT_VERSION:
        raise RestoreRefused(f"{source} is a backup of format version "
                             f"{document.get('version')!r}; this restore reads version "
                             f"{FORMAT_VERSION}")
    where = f"the manifest of {source}"
    _fields(document, _TOP, where)
    _fields({"until": None, **document}, _OPTIONAL, where)
    _fields(document["settings"], _SETTINGS, f"{where} (settings)")
    if document["kind"] not in KINDS:
        raise RestoreRefused(f"{where}: kind {document['kind']!r} is none of {KINDS}")
    entries = []
    for item in document["tables"]:
        if not isinstance(item, dict):
            raise RestoreRefused(f"{where}: a table entry is not an object")
        _fields(item, _TABLE, f"{where} (table {item.get('table')!r})")
        columns = item["columns"]
        if not all(isinstance(c, list) and len(c) == 2 and all(isinstance(p, str) for p in c)
                   for c in columns):
            raise RestoreRefused(f"{where}: the columns of {item['table']!r} are not "
                                 "[name, type] pairs")
        entries.append(TableEntry(**{key: item[key] for key in _TABLE}))
    members = [e.member for e in entries]
    if len(set(members)) != len(members) or len({e.table for e in entries}) != len(entries):
        raise RestoreRefused(f"{where} names a table or member twice")
    manifest = Manifest(**{**{key: document[key] for key in _TOP}, "tables": entries,
                           "until": document.get("until")})
    expected = fingerprint([(e.table, e.columns) for e in entries], manifest.pgvector_schema)
    if manifest.layout_fingerprint != expected:
        raise RestoreRefused(f"{where}: its layout_fingerprint does not match its own "
                             "column lists (the manifest was altered)")
    return manifest
