"""The audit's look at a directory of backup files: which of a stack's backups are not
encrypted, and whether its newest full backup is older than allowed.

Only the manifest (each file's first member) is read, never the rows. A file in the
encryption envelope (components/backup/encryption.py) is encrypted; its manifest is read
when MEM0_BACKUP_PASSPHRASE holds the passphrase, else its stack and time come from its
generated name and its kind stays unknown ("encrypted"), which still counts as a backup
for staleness. A plain archive is unencrypted (a manifest's `encryption` field naming a
method counts too). Any other file is listed as not read, not flagged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from components.backup.archive import open_archive
from components.backup.common import FORMAT, BackupError, RestoreRefused
from components.backup.destinations import name_time
from components.backup.encryption import MAGIC, passphrase_from_env
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
    enveloped: bool = False  # the file is in the encryption envelope

    @property
    def encrypted(self) -> bool:
        if self.enveloped:
            return True
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


def _enveloped(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(MAGIC)) == MAGIC


def _manifest(path: Path) -> dict[str, Any]:
    with open_archive(path, None, passphrase_from_env(None)) as archive:
        document = json.loads(archive.manifest_bytes().decode("utf-8"))
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"its manifest does not say format {FORMAT!r}")
    return document


def _read(file: Path) -> BackupFile:
    enveloped = _enveloped(file)
    if enveloped and passphrase_from_env(None) is None:
        named = name_time(file.name)
        if named is None:
            raise ValueError("encrypted, and neither MEM0_BACKUP_PASSPHRASE nor a generated "
                             "backup name tells its stack and time")
        return BackupFile(file, named[0], "encrypted", named[1], None, enveloped=True)
    document = _manifest(file)
    taken = datetime.fromisoformat(str(document["taken_at"]))
    return BackupFile(file, str(document["stack"]), str(document["kind"]), taken,
                      document.get("encryption"), enveloped=enveloped)


def read_directory(path: Path) -> Directory:
    """Each regular, non-hidden file of `path` (not recursive), by its manifest. Hidden
    files are skipped: the backup writes its partial files as `.NAME.partial-PID`."""
    if not path.is_dir():
        raise NotADirectoryError(f"--backups {path}: not a directory")
    backups: list[BackupFile] = []
    unread: list[tuple[Path, str]] = []
    for file in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            backups.append(_read(file))
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
    # An encrypted file read without the passphrase may be full: count it rather than
    # report a stack as never backed up.
    full = [b for b in mine if b.kind in ("full", "encrypted")]
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
