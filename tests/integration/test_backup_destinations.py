"""Backups off the database host: to and from a real S3-compatible server (moto's server
mode, started here on a free port), encrypted, windowed with --from/--to, and pruned.

The database side reuses test_backup.py's deployment and data (its fixtures are imported),
so a round trip here is compared with the same bit-for-bit digests.
"""
# ruff: noqa: F811  (the imported fixtures are test parameters by the same names)

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from components.backup import (
    BackupError,
    Passphrase,
    RestoreRefused,
    run_prune,
)
from components.backup import destinations as destinations_module
from components.backup.destinations import (
    META_FORMAT,
    PART_BYTES,
    S3Destination,
    backup_name,
    parse_destination,
)
from components.backup.encryption import CHUNK_BYTES, MAGIC, EncryptingWriter
from components.cli import main
from tests.conftest import TestDatabase
from tests.integration.test_backup import (  # noqa: F401  (fixtures, used by name)
    ROWS,
    STACK,
    archive_members,
    backup,
    copy_of_source,
    count,
    digest,
    digests,
    empty,
    member_rows,
    project,
    query,
    restore,
    settings,
    source,
    template,
)

BUCKET = "mem0-backups"
SECRET = Passphrase("TEST_PASSPHRASE", "correct horse battery staple")


# --- the S3-compatible server -----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A moto S3 server on a free port with one bucket; its endpoint URL. Credentials are
    the fake ones moto accepts, set as the usual AWS variables."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        env.delenv("MEM0_BACKUP_PASSPHRASE", raising=False)
        client(endpoint).create_bucket(Bucket=BUCKET)
        try:
            yield endpoint
        finally:
            server.stop()


def client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint)


def keys(endpoint: str, prefix: str) -> list[str]:
    answer = client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in answer.get("Contents", []))


def pending_uploads(endpoint: str, prefix: str) -> list[str]:
    answer = client(endpoint).list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [u["Key"] for u in answer.get("Uploads", [])]


# --- round trips --------------------------------------------------------------------------

@pytest.mark.parametrize("passphrase", [None, SECRET], ids=["plain", "encrypted"])
def test_a_backup_to_s3_restores_bit_for_bit(
        s3: str, source: TestDatabase, empty: TestDatabase, settings: Any,
        passphrase: Passphrase | None) -> None:
    prefix = f"roundtrip-{'enc' if passphrase else 'plain'}/"
    result = backup(source, settings, f"s3://{BUCKET}/{prefix}", endpoint_url=s3,
                    passphrase=passphrase)
    name = result.location.rsplit("/", 1)[1]
    assert keys(s3, prefix) == [prefix + name]
    assert name == backup_name(STACK, datetime.fromisoformat(result.manifest.taken_at),
                               passphrase is not None)
    stored = client(s3).get_object(Bucket=BUCKET, Key=prefix + name)
    body = stored["Body"].read()
    assert stored["Metadata"][META_FORMAT] == "mem0infra-backup"
    assert len(body) == result.size
    # Encrypted: the envelope, and none of the rows' text in the clear; plain: gzip.
    assert body.startswith(MAGIC) == (passphrase is not None) == result.encrypted
    if passphrase:
        assert b"manifest.json" not in body and b"memories" not in body
    restored = restore(empty, settings, file=result.location, endpoint_url=s3,
                       passphrase=passphrase)
    assert sum(o.inserted for o in restored.outcomes) == sum(e.rows for e in
                                                             result.manifest.tables)
    for table in ROWS:
        assert digest(empty, table) == digest(source, table), table


def test_the_commands_write_to_and_read_from_s3(
        s3: str, source: TestDatabase, empty: TestDatabase, settings: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    directory = project(tmp_path, settings)
    base = ["--stack", STACK, "--project-dir", str(directory)]
    # No passphrase: a loud warning, and the JSON says so.
    assert main(["backup", *base, "--dsn", source.dsn, "--output", f"s3://{BUCKET}/cli/",
                 "--endpoint-url", s3, "--json"]) == 0
    out, err = capsys.readouterr()
    plain = json.loads(out)
    assert plain["encrypted"] is False and plain["encryption"] is None
    assert "WARNING: THIS BACKUP IS NOT ENCRYPTED" in err
    # A passphrase in MEM0_BACKUP_PASSPHRASE encrypts by default; the endpoint from the
    # environment as AWS's tools take it.
    monkeypatch.setenv("MEM0_BACKUP_PASSPHRASE", SECRET.secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)
    assert main(["backup", *base, "--dsn", source.dsn, "--output",
                 f"s3://{BUCKET}/cli/", "--json"]) == 0
    out, err = capsys.readouterr()
    sealed = json.loads(out)
    assert sealed["encrypted"] is True and "NOT ENCRYPTED" not in err
    assert sealed["encryption"]["algorithm"] == "AES-256-GCM"
    assert sealed["encryption"]["kdf"]["name"] == "scrypt"
    assert "salt" not in sealed["encryption"]["kdf"] and SECRET.secret not in out
    assert sealed["location"].endswith(".tar.gz.enc")
    assert main(["restore", *base, "--dsn", empty.dsn, sealed["location"]]) == 0
    assert "committed" in capsys.readouterr().out
    for table in ROWS:
        assert digest(empty, table) == digest(source, table), table
    # The same backup with another passphrase: refused (exit 1), nothing written.
    monkeypatch.setenv("OTHER_PASSPHRASE", "not the passphrase")
    assert main(["restore", *base, "--dsn", empty.dsn, sealed["location"],
                 "--passphrase-env", "OTHER_PASSPHRASE"]) == 1
    assert "is not the one this backup was encrypted with" in capsys.readouterr().err
    # No passphrase at all: it cannot run (exit 2) and says which variable to set.
    monkeypatch.delenv("MEM0_BACKUP_PASSPHRASE")
    assert main(["restore", *base, "--dsn", empty.dsn, sealed["location"]]) == 2
    assert "set MEM0_BACKUP_PASSPHRASE" in capsys.readouterr().err


# --- failed uploads -------------------------------------------------------------------------

class Failing(Exception):
    pass


def test_an_upload_that_fails_midway_leaves_no_object(
        s3: str, settings: Any, empty: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = parse_destination(f"s3://{BUCKET}/failed/backup.tar.gz", s3)
    sent = 0
    with pytest.raises(Failing):
        with target.writer({META_FORMAT: "mem0infra-backup"}) as sink:
            for _ in range(5 * PART_BYTES // CHUNK_BYTES):
                sink.write(os.urandom(CHUNK_BYTES))
                sent += CHUNK_BYTES
                if sent >= 3 * PART_BYTES:  # three parts are on the server by now
                    raise Failing("the stream broke")
    assert keys(s3, "failed/") == [] and pending_uploads(s3, "failed/") == []
    directory = project(tmp_path, settings)
    assert main(["restore", "--stack", STACK, "--project-dir", str(directory), "--dsn",
                 empty.dsn, "--endpoint-url", s3, f"s3://{BUCKET}/failed/backup.tar.gz"]) == 1
    assert "does not exist (no complete backup" in capsys.readouterr().err
    assert all(count(empty, table) == 0 for table in ROWS)


def test_a_backup_whose_upload_breaks_leaves_no_object(
        s3: str, source: TestDatabase, settings: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import EndpointConnectionError

    def broken(self: Any, body: bytes) -> None:
        raise EndpointConnectionError(endpoint_url=s3)

    # The network fails as the (only, last) part goes out: after the last byte was
    # written, before the upload could complete.
    monkeypatch.setattr(destinations_module._MultipartWriter, "_send", broken)
    with pytest.raises(BackupError, match="cannot upload s3://"):
        backup(source, settings, f"s3://{BUCKET}/broken/", endpoint_url=s3, passphrase=SECRET)
    assert keys(s3, "broken/") == [] and pending_uploads(s3, "broken/") == []


def test_the_upload_buffer_is_bounded(s3: str) -> None:
    """64 MiB through the multipart writer: it never holds more than a part and one
    write, and the object is whole."""
    target = S3Destination(BUCKET, "bounded/big.bin", s3)
    total = 64 * 1024 * 1024
    with target.writer({}) as sink:
        for _ in range(total // CHUNK_BYTES):
            sink.write(b"\x5a" * CHUNK_BYTES)
    assert isinstance(sink, destinations_module._MultipartWriter)
    assert sink.peak_buffer <= PART_BYTES + CHUNK_BYTES < total // 4
    assert client(s3).head_object(Bucket=BUCKET, Key="bounded/big.bin")["ContentLength"] \
        == total


# The resident size is sampled after every write (ru_maxrss would keep scrypt's 128 MiB,
# spent and freed before the first byte, and hide any growth below it).
STREAM_SCRIPT = """
import os, sys
import psutil
from components.backup.destinations import S3Destination
from components.backup.encryption import EncryptingWriter, Passphrase
process = psutil.Process()
target = S3Destination(sys.argv[1], "rss/stream.enc", sys.argv[2])
block = os.urandom(1024 * 1024)
with target.writer({}) as sink:
    envelope = EncryptingWriter(sink, Passphrase("X", "secret"))
    envelope.write(block)
    before = peak = process.memory_info().rss
    for _ in range(int(sys.argv[3]) - 1):
        envelope.write(block)
        peak = max(peak, process.memory_info().rss)
    envelope.finish()
print(before, peak)
"""


def test_streaming_an_encrypted_upload_does_not_grow_with_its_size(s3: str) -> None:
    """The resident size of a separate process that encrypts and uploads 192 MiB: it grows
    by about one part and one chunk, not by the size of the stream."""
    mebibytes = 192
    answer = subprocess.run([sys.executable, "-c", STREAM_SCRIPT, BUCKET, s3, str(mebibytes)],
                            capture_output=True, text=True, check=True, env=os.environ,
                            cwd=Path(__file__).parents[2])
    before, after = (int(n) for n in answer.stdout.split())
    assert after - before < 32 * 1024 * 1024 < mebibytes * 1024 * 1024 // 4, (before, after)
    size = client(s3).head_object(Bucket=BUCKET, Key="rss/stream.enc")["ContentLength"]
    assert size > mebibytes * 1024 * 1024


# --- encryption: refusals before any write --------------------------------------------------

@pytest.fixture(scope="module")
def sealed(source: TestDatabase, settings: Any, tmp_path_factory: pytest.TempPathFactory
           ) -> Path:
    return backup(source, settings, tmp_path_factory.mktemp("sealed") / "b.tar.gz.enc",
                  passphrase=SECRET).path


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


@pytest.mark.parametrize("damage", ["flip-body", "flip-header", "flip-last", "truncate",
                                    "drop-last-chunk", "append"])
def test_a_tampered_encrypted_backup_is_refused_and_nothing_changes(
        sealed: Path, empty: TestDatabase, settings: Any, tmp_path: Path,
        damage: str) -> None:
    data = sealed.read_bytes()
    header_end = len(MAGIC) + 4 + int.from_bytes(data[len(MAGIC):len(MAGIC) + 4], "big")
    edited = {"flip-body": lambda: _flip(data, header_end + 100),
              "flip-header": lambda: _flip(data, header_end - 5),
              "flip-last": lambda: _flip(data, len(data) - 1),
              "truncate": lambda: data[:-40],
              "drop-last-chunk": lambda: data[:header_end],
              "append": lambda: data + b"\x00" * 32}[damage]()
    bad = tmp_path / "bad.tar.gz.enc"
    bad.write_bytes(edited)
    before = digests(empty)
    with pytest.raises(RestoreRefused):
        restore(empty, settings, file=bad, passphrase=SECRET)
    assert digests(empty) == before and all(count(empty, table) == 0 for table in ROWS)
    # The untouched file restores: the refusal was the damage's.
    restore(empty, settings, file=sealed, passphrase=SECRET)
    assert count(empty, "memories") > 0


def test_a_wrong_passphrase_is_refused_before_the_database_is_touched(
        sealed: Path, empty: TestDatabase, settings: Any) -> None:
    with pytest.raises(RestoreRefused, match="passphrase in WRONG is not the one"):
        restore(empty, settings, file=sealed, passphrase=Passphrase("WRONG", "guess"))
    with pytest.raises(BackupError, match="is encrypted"):
        restore(empty, settings, file=sealed)
    assert all(count(empty, table) == 0 for table in ROWS)


def test_an_encryption_key_is_new_for_every_file(tmp_path: Path) -> None:
    """Two envelopes of the same bytes under the same passphrase share nothing but the
    magic and the header's shape (a fresh salt each: a fresh key)."""
    outputs = []
    for n in range(2):
        target = parse_destination(tmp_path / f"{n}.enc")
        with target.writer({}) as sink:
            envelope = EncryptingWriter(sink, SECRET)
            envelope.write(b"the same plaintext" * 1000)
            envelope.finish()
        outputs.append((tmp_path / f"{n}.enc").read_bytes())
    assert outputs[0][-1000:] != outputs[1][-1000:]


# --- the window ---------------------------------------------------------------------------

WINDOW = ("2025-01-15T00:00:00+00:00", "2025-03-01T00:00:00+00:00")
# (created_at, updated_at) and whether the window [from, to) holds the memory.
TIMES = {"before": ("2025-01-01T12:00Z", "2025-01-02T12:00Z", False),
         "inside": ("2025-02-01T12:00Z", "2025-02-01T12:00Z", True),
         "created inside, changed after": ("2025-02-10T12:00Z", "2025-06-01T12:00Z", True),
         "created before, changed inside": ("2024-12-01T12:00Z", "2025-02-20T12:00Z", True),
         "after": ("2025-04-01T12:00Z", "2025-04-01T12:00Z", False),
         "at the end": ("2025-03-01T00:00Z", "2025-03-01T00:00Z", False)}


def test_from_and_to_select_rows_created_or_changed_in_the_window(
        copy_of_source: TestDatabase, settings: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    db = copy_of_source
    ids = [r[0] for r in query(db, "SELECT id::text FROM public.memories ORDER BY id")]
    chosen = dict(zip(TIMES, ids, strict=False))
    with db.connect() as admin, admin.transaction():
        # As a superuser with triggers off: the touch trigger would keep the times current.
        admin.execute("SET LOCAL session_replication_role = replica")
        for label, memory in chosen.items():
            created, updated, _ = TIMES[label]
            admin.execute("UPDATE public.memories SET created_at = %s, updated_at = %s "
                          "WHERE id = %s", (created, updated, memory))
        admin.execute("UPDATE public.memory_history SET at = '2025-02-02T00:00:00+00:00' "
                      "WHERE memory_id::text = %s", (chosen["inside"],))
    directory = project(tmp_path, settings)
    out = tmp_path / "window.tar.gz"
    assert main(["backup", "--stack", STACK, "--project-dir", str(directory), "--dsn", db.dsn,
                 "--output", str(out), "--from", WINDOW[0], "--to", WINDOW[1], "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["window"] == {"from": WINDOW[0], "to": WINDOW[1]}
    assert printed["kind"] == "incremental"
    expected = {chosen[label] for label, (_, _, inside) in TIMES.items() if inside}
    got = {str(r["id"]) for r in member_rows(db, out, "memories")}
    assert got == expected and len(expected) == 3
    history = member_rows(db, out, "memory_history")
    assert {str(r["memory_id"]) for r in history} == {chosen["inside"]}
    manifest = json.loads(archive_members(out)["manifest.json"])
    assert (manifest["since"], manifest["until"]) == WINDOW
    # --since is --from; --to alone; an empty window is refused before connecting.
    assert main(["backup", "--stack", STACK, "--project-dir", str(directory), "--dsn", db.dsn,
                 "--output", str(tmp_path / "since.tar.gz"), "--since", WINDOW[0],
                 "--to", WINDOW[1]]) == 0
    assert "rows created or changed from 2025-01-15" in capsys.readouterr().out
    assert main(["backup", "--stack", STACK, "--project-dir", str(directory), "--dsn", db.dsn,
                 "--output", str(tmp_path / "empty.tar.gz"), "--from", WINDOW[1],
                 "--to", WINDOW[0]]) == 2
    assert "the window is empty" in capsys.readouterr().err
    assert not (tmp_path / "empty.tar.gz").exists()


# --- prune --------------------------------------------------------------------------------

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _aged(days: int, stack: str = STACK, encrypted: bool = False) -> str:
    return backup_name(stack, NOW - timedelta(days=days), encrypted)


@pytest.fixture(scope="module")
def plain_file(source: TestDatabase, settings: Any,
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    return backup(source, settings, tmp_path_factory.mktemp("plain") / "p.tar.gz").path


def test_prune_deletes_old_backups_only_and_keeps_the_newest_locally(
        plain_file: Path, sealed: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    for name, original in [(_aged(30), plain_file), (_aged(20, encrypted=True), sealed),
                           (_aged(2), plain_file), (_aged(40, "other"), plain_file)]:
        (folder / name).write_bytes(original.read_bytes())
    impostor = _aged(50)  # a backup's name, not a backup's content
    (folder / impostor).write_bytes(b"not a backup at all")
    (folder / "notes.txt").write_text("keep me")
    dry = run_prune(parse_destination(folder), 7, dry_run=True, now=NOW)
    assert sorted(c.name for c in dry.deleted) == sorted([_aged(30), _aged(20, encrypted=True)])
    assert len(list(folder.iterdir())) == 6  # a dry run deletes nothing
    assert main(["backup-prune", "--output", str(folder), "--keep-days", "7", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    # The real clock is today; the names are a few days before NOW, so same outcome.
    assert sorted(c["name"] for c in printed["deleted"]) == sorted(
        [_aged(30), _aged(20, encrypted=True)])
    assert [i["name"] for i in printed["ignored"]] == [impostor]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [_aged(2), _aged(40, "other"), impostor, "notes.txt"])


def test_prune_at_an_s3_prefix_uses_the_metadata_and_keeps_the_newest(
        s3: str, source: TestDatabase, settings: Any) -> None:
    prefix = "pruned/"
    first = backup(source, settings, f"s3://{BUCKET}/{prefix}", endpoint_url=s3,
                   passphrase=SECRET)
    made = first.location.rsplit("/", 1)[1]
    s3client = client(s3)
    for name in (_aged(30, encrypted=True), _aged(10, encrypted=True),
                 _aged(60, "other", encrypted=True)):
        s3client.copy_object(Bucket=BUCKET, Key=prefix + name,
                             CopySource={"Bucket": BUCKET, "Key": prefix + made})
    s3client.put_object(Bucket=BUCKET, Key=prefix + _aged(90), Body=b"someone else's")
    s3client.put_object(Bucket=BUCKET, Key=prefix + "deeper/" + _aged(90), Body=b"x")
    result = run_prune(parse_destination(f"s3://{BUCKET}/{prefix}", s3), 7, dry_run=False,
                       now=NOW + timedelta(days=30))
    # The backup just made is the newest of its stack; "other" has only its one.
    assert sorted(c.name for c in result.deleted) == sorted(
        [_aged(30, encrypted=True), _aged(10, encrypted=True)])
    assert [i.name for i in result.ignored] == [_aged(90)]
    assert keys(s3, prefix) == sorted(prefix + n for n in (
        made, _aged(60, "other", encrypted=True), _aged(90), "deeper/" + _aged(90)))
    # Everything old, even the newest: the newest of each stack stays.
    again = run_prune(parse_destination(f"s3://{BUCKET}/{prefix}", s3), 0, dry_run=False,
                      now=NOW + timedelta(days=3650))
    assert again.deleted == []
    with pytest.raises(BackupError, match="names one file or object"):
        run_prune(parse_destination(f"s3://{BUCKET}/{prefix}{made}", s3), 7, dry_run=True)
