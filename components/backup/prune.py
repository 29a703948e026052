"""`backup-prune`: retention at a destination, deleting backups older than N days.

Only this project's backups are candidates, recognised twice: by the generated name
(`mem0-backup-<stack>-<time>.tar.gz[.enc]`, whose time, the backup's snapshot, is the age
that counts) and by their content: an object's metadata says it was written by `backup`,
a local file is an encryption envelope or a tar whose manifest is a backup's. Anything
else in the directory or prefix is left alone and listed as ignored. The newest backup of
each stack is never deleted, however old, so a stack whose backups stopped keeps its last.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from components.backup.archive import ArchiveReader
from components.backup.common import FORMAT, BackupError, RestoreRefused
from components.backup.destinations import (
    META_FORMAT,
    Destination,
    LocalDestination,
    Stored,
    name_time,
    parse_destination,
)
from components.backup.encryption import MAGIC, MAX_HEADER_BYTES, envelope_header
from components.backup.manifest import read_manifest
from components.errors import ExitCode

__all__ = ["PruneResult", "add_prune_arguments", "prune_command", "run_prune"]


@dataclass(frozen=True)
class Candidate:
    name: str
    stack: str
    taken_at: str  # from the name: the backup's snapshot time, UTC
    bytes: int


@dataclass(frozen=True)
class Ignored:
    name: str
    reason: str


@dataclass(frozen=True)
class PruneResult:
    location: str
    keep_days: int
    cutoff: str
    dry_run: bool
    deleted: list[Candidate]  # or, in a dry run, would be
    kept: list[Candidate]
    ignored: list[Ignored]  # a generated name whose content is not a backup's


def _local_problem(destination: LocalDestination, name: str) -> str | None:
    """Why the file `name` is not one of this project's backups, or None when it is."""
    child = destination.child(name)
    with child.reader() as raw:
        head = raw.read(len(MAGIC) + 4 + MAX_HEADER_BYTES)
    if head.startswith(MAGIC):
        return None if envelope_header(head) else "an unreadable encryption header"
    try:
        with child.reader() as raw, ArchiveReader(child.location, raw) as archive:
            read_manifest(archive.manifest_bytes(), child.location)
    except RestoreRefused as exc:
        return f"not a backup ({exc})"
    return None


def _problem(destination: Destination, item: Stored) -> str | None:
    if isinstance(destination, LocalDestination):
        return _local_problem(destination, item.name)
    written = destination.metadata(item.name).get(META_FORMAT)
    return None if written == FORMAT else (
        f"its metadata {META_FORMAT} is {written!r}, not {FORMAT!r}")


def run_prune(destination: Destination, keep_days: int, dry_run: bool,
              now: datetime | None = None) -> PruneResult:
    if keep_days < 0:
        raise BackupError(f"--keep-days: {keep_days} is negative; give 0 or more days")
    if not destination.is_container:
        raise BackupError(f"--output: {destination.location} names one file or object; prune "
                          "takes the directory or the s3:// prefix (ending in /) that backup "
                          "writes generated names into")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    found: list[tuple[datetime, Candidate]] = []
    ignored = []
    for item in sorted(destination.listing(), key=lambda s: s.name):
        parsed = name_time(item.name)
        if parsed is None:
            continue  # not a generated name: never this command's to touch
        problem = _problem(destination, item)
        if problem is not None:
            ignored.append(Ignored(item.name, problem))
            continue
        stack, taken = parsed
        found.append((taken, Candidate(item.name, stack, taken.isoformat(), item.size)))
    newest: dict[str, tuple[datetime, str]] = {}
    for taken, candidate in found:
        if candidate.stack not in newest or taken > newest[candidate.stack][0]:
            newest[candidate.stack] = (taken, candidate.name)
    keep_names = {name for _, name in newest.values()}
    deleted = [c for taken, c in found if taken < cutoff and c.name not in keep_names]
    kept = [c for _, c in found if c not in deleted]
    if not dry_run:
        for candidate in deleted:
            destination.remove(candidate.name)
    return PruneResult(destination.location, keep_days, cutoff.isoformat(), dry_run, deleted,
                       kept, ignored)


def add_prune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", required=True, metavar="DEST",
                        help="the directory or s3://bucket/prefix/ that backup writes into")
    parser.add_argument("--keep-days", type=int, required=True, metavar="N",
                        help="delete backups taken more than N days ago (never the newest "
                             "of a stack)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list what would be deleted, delete nothing")
    parser.add_argument("--endpoint-url", default=None, metavar="URL",
                        help="an S3-compatible store's endpoint (default: AWS_ENDPOINT_URL, "
                             "else AWS)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def prune_text(result: PruneResult) -> str:
    verb = "would delete" if result.dry_run else "deleted"
    lines = [f"{result.location}: {verb} {len(result.deleted)} backups taken before "
             f"{result.cutoff} ({result.keep_days} days); kept {len(result.kept)}"]
    lines += [f"  {verb} {c.name} ({c.bytes} bytes)" for c in result.deleted]
    lines += [f"  kept {c.name}" for c in result.kept]
    lines += [f"  ignored {i.name}: {i.reason}" for i in result.ignored]
    return "\n".join(lines) + "\n"


def prune_command(args: argparse.Namespace) -> int:
    destination = parse_destination(args.output, args.endpoint_url)
    result = run_prune(destination, args.keep_days, args.dry_run)
    if args.json:
        json.dump(asdict(result), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(prune_text(result))
    return ExitCode.OK
