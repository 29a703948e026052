"""The backup file's pieces without a database: the binary COPY row counter, the
manifest's validation, and the archive's layout, determinism and refusals."""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from components.backup.archive import open_archive, write_archive
from components.backup.common import BackupError, RestoreRefused
from components.backup.copystream import SIGNATURE, CopyFormatError, RowCounter
from components.backup.destinations import LocalDestination
from components.backup.manifest import Manifest, TableEntry, fingerprint, read_manifest


def copy_stream(rows: list[list[bytes | None]], extension: bytes = b"") -> bytes:
    """PostgreSQL's binary COPY format, built by hand."""
    out = SIGNATURE + struct.pack(">ii", 0, len(extension)) + extension
    for row in rows:
        out += struct.pack(">h", len(row))
        for field in row:
            out += struct.pack(">i", -1) if field is None else \
                struct.pack(">i", len(field)) + field
    return out + struct.pack(">h", -1)


ROWS = [[b"\x01" * 16, b"x" * 5000, None], [b"\x02" * 16, b"", b"{}"], [None, None, None]]


@pytest.mark.parametrize("size", [1, 3, 7, 19, 64, 4096, 10**6])
def test_the_counter_counts_rows_whatever_the_block_size(size: int) -> None:
    data = copy_stream(ROWS, extension=b"ext")
    counter = RowCounter()
    seen = [counter.feed(data[i:i + size]) for i in range(0, len(data), size)]
    assert sum(seen) == counter.rows == 3 and counter.finished


def test_the_counter_knows_an_unfinished_stream_and_a_foreign_one() -> None:
    counter = RowCounter()
    counter.feed(copy_stream(ROWS)[:-3])  # the end marker and a byte of the last row
    assert counter.rows == 2 and not counter.finished
    with pytest.raises(CopyFormatError):
        RowCounter().feed(b"id,vector\n" + b"1,[1,2]\n" * 4)
    done = RowCounter()
    done.feed(copy_stream([]))
    assert done.finished and done.rows == 0
    with pytest.raises(CopyFormatError):
        done.feed(b"more")


def manifest() -> Manifest:
    tables = [TableEntry("memories", "memories.pgcopy",
                         [["id", "uuid"], ["vector", "public.vector(16)"]], 2, "ab" * 32, 10)]
    return Manifest(
        format="mem0infra-backup", version=1, taken_at="2025-01-01T00:00:00+00:00",
        kind="full", user_id=None, since=None, stack="dev", database="h:5432/db",
        server_version="15.8", pgvector_version="0.8.0", pgvector_schema="public",
        settings={"dimensions": 16, "collection": "memories", "tenancy": "user",
                  "clientProfile": "python", "historyIncludesVectors": False},
        layout_fingerprint=fingerprint([("memories", tables[0].columns)], "public"),
        tables=tables)


def test_a_manifest_reads_back_as_written() -> None:
    assert read_manifest(manifest().to_json(), "f") == manifest()


def test_the_layout_fingerprint_ignores_pgvectors_schema() -> None:
    # A Supabase backup (pgvector in `extensions`) restores into a postgres target.
    here = fingerprint([("m", [["vector", "public.vector(3)"]])], "public")
    there = fingerprint([("m", [["vector", "extensions.vector(3)"]])], "extensions")
    other = fingerprint([("m", [["vector", "public.vector(4)"]])], "public")
    assert here == there != other


@pytest.mark.parametrize(("data", "message"), [
    (b"\xff\xfe", "is not JSON"),
    (b"[]", "does not say format 'mem0infra-backup'"),
    (b'{"format": "mem0infra-backup", "version": 2}', "format version 2"),
    (replace(manifest(), kind="weekly").to_json(), "kind 'weekly' is none of"),
    (replace(manifest(), stack=3).to_json(), "field 'stack' is 3, not a str"),  # type: ignore[arg-type]
    (replace(manifest(), layout_fingerprint="0" * 64).to_json(), "manifest was altered"),
    (manifest().to_json().replace(b'"rows": 2', b'"rows": true'), "field 'rows' is True"),
    (json.dumps({**asdict(manifest()), "settings": {"dimensions": 16}}).encode(),
     "no field 'collection'"),
], ids=["binary", "list", "version", "kind", "type", "fingerprint", "bool", "missing"])
def test_a_bad_manifest_says_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(RestoreRefused, match=message):
        read_manifest(data, "f")


def test_an_archive_is_manifest_first_deterministic_and_private(tmp_path: Path) -> None:
    member = tmp_path / "memories.pgcopy"
    member.write_bytes(copy_stream(ROWS))
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    for path in (first, second):
        with LocalDestination(path, container=False).writer({}) as sink:
            write_archive(sink, b'{"format": "x"}', [("memories.pgcopy", member)],
                          1_700_000_000)
    assert first.read_bytes() == second.read_bytes()
    assert first.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with open_archive(first, None, None) as archive:
        assert archive.manifest_bytes() == b'{"format": "x"}'
        assert [(name, size, stream.read()) for name, size, stream in archive.members()] == [
            ("memories.pgcopy", member.stat().st_size, member.read_bytes())]
        archive.finish()


def test_a_file_that_does_not_read_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a backup\n")
    with pytest.raises(RestoreRefused, match="is not a readable backup"):
        open_archive(text, None, None).__enter__()
    with pytest.raises(BackupError, match="cannot open"):
        open_archive(tmp_path / "missing", None, None).__enter__()
