"""The audit's look at a directory of backup files: which of a stack's backups are not
encrypted, and whether its newest full backup is older than allowed.

Only the manifest (each file's first member) is read, never the rows. A file counts as
encrypted when its manifest has an `encryption` field naming a method; a manifest without
the field (every backup written before encryption existed) or with none/null/false in it is
unencrypted. A file that is not a plain backup archive is listed as not read, not flagged:
it may be another format, or encrypted whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from components.backup.archive import ArchiveReader
from components.backup.common import FORMAT, BackupError, RestoreRefused
from components.checks.core import Finding, Level
from components.checks.freshness import span

UNENCRYPTED = "backup_file_unencrypted"
STALE = "backup_file_stale"
CODES = (UNENCRYPTED, STALE)
DEFAULT_MAX_AGE = timedelta(days=2)  # without a snapshot schedule to take twice of


@dataclass(frozen=True)
class BackupFile:
    path: Path
    stack: str
    kind: str
    taken_at: datetime
    encryption: Any  # the manifest's field as written; None when it has none

    @property
    def encrypted(self) -> bool:
        method = self.encryption
        if isinstance(method, dict):
            method = method.get("method", method.get("scheme"))
        return bool(method) and str(method).lower() not in ("none", "false", "off")


@dataclass(frozen=True)
class Directory:
    """What a directory holds: the backups read, and the files that could not be."""

    path: Path
    backups: tuple[BackupFile, ...]
    unread: tuple[tuple[Path, str], ...]  # (file, why)


def _manifest(path: Path) -> dict[str, Any]:
    with ArchiveReader(path) as archive:
        document = json.loads(archive.manifest_bytes().decode("utf-8"))
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"its manifest does not say format {FORMAT!r}")
    return document


def read_directory(path: Path) -> Directory:
    """Each regular, non-hidden file of `path` (not recursive), by its manifest. Hidden
    files are skipped: the backup writes its partial files as `.NAME.partial-PID`."""
    if not path.is_dir():
        raise NotADirectoryError(f"--backups {path}: not a directory")
    backups: list[BackupFile] = []
    unread: list[tuple[Path, str]] = []
    for file in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            document = _manifest(file)
            taken = datetime.fromisoformat(str(document["taken_at"]))
            backups.append(BackupFile(file, str(document["stack"]), str(document["kind"]),
                                      taken, document.get("encryption")))
        except (BackupError, RestoreRefused, ValueError, KeyError, UnicodeDecodeError) as exc:
            unread.append((file, str(exc).splitlines()[0]))
    return Directory(path, tuple(backups), tuple(unread))


def findings(directory: Directory, stack: str, max_age: timedelta, rule: str,
             now: datetime) -> list[Finding]:
    """Unencrypted backups of `stack`, and its newest full backup when older than
    `max_age` (`rule` says where that limit comes from), or none at all."""
    mine = [b for b in directory.backups if b.stack == stack]
    found = [Finding(
        UNENCRYPTED, Level.ERROR, f"backup file {b.path}",
        f"the {b.kind} backup of stack {stack!r} taken at {b.taken_at.isoformat()} is not "
        "encrypted (its manifest has no encryption method): anyone who can read the file "
        "reads every memory in it",
        "take a new backup with an encryption key configured (docs/backup.md), then delete "
        "this file")
        for b in mine if not b.encrypted]
    full = [b for b in mine if b.kind == "full"]
    newest = max(full, key=lambda b: b.taken_at, default=None)
    if newest is None:
        found.append(Finding(
            STALE, Level.ERROR, f"backup directory {directory.path}",
            f"no full backup of stack {stack!r} in {directory.path} "
            f"({len(directory.backups)} backups of any stack read, {len(directory.unread)} "
            "files not read)",
            f"python -m components backup --stack {stack} --output {directory.path}/<file>"))
    elif now - newest.taken_at > max_age:
        found.append(Finding(
            STALE, Level.ERROR, f"backup file {newest.path}",
            f"the newest full backup of stack {stack!r}, taken at "
            f"{newest.taken_at.isoformat()}, is {span(now - newest.taken_at)} old: older "
            f"than the limit of {span(max_age)}, {rule}",
            f"python -m components backup --stack {stack} --output {directory.path}/<file>; "
            "schedule it"))
    return found
