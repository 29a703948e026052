"""What every part of backup and restore shares: the errors, the file format's names, and
the progress lines (the bench's, with this command's name in the prefix)."""

from __future__ import annotations

import time
from typing import TextIO

from components.bench.progress import Progress
from components.errors import ExitCode, Mem0InfraError

FORMAT = "mem0infra-backup"
FORMAT_VERSION = 1
MANIFEST_MEMBER = "manifest.json"
MEMBER_SUFFIX = ".pgcopy"  # a member holds one table as PostgreSQL's binary COPY
APPLICATION = "mem0infra-backup"

# Times the database keeps itself: restore never compares them (an updated row's
# updated_at is the touch trigger's now(), and it pins created_at).
DATABASE_TIMES = frozenset({"created_at", "updated_at", "added_at"})

# Ids a restore lists for each table and outcome; beyond that it gives only the count.
SHOW_IDS = 10


class BackupError(Mem0InfraError):
    """Backup or restore could not run: bad arguments or settings, no database, a role
    that cannot act as the service role, a failed query."""


class RestoreRefused(Mem0InfraError):
    """The backup failed the restore's verification: not a backup, corrupt, truncated, a
    checksum or row count that disagrees with the manifest, or a backup of another layout.
    Raised before the first write; the transaction is rolled back."""

    exit_code = ExitCode.FAILED


class CommandProgress(Progress):
    """The bench's step lines and bars, prefixed with this command's name."""

    def __init__(self, stream: TextIO | None, name: str) -> None:
        super().__init__(stream)
        self.name = name

    def prefix(self) -> str:
        return f"[{self.name} {time.monotonic() - self.started:7.1f}s]"
